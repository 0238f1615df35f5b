"""Baselines on the same folds and features as a CV run, and the simulator's oracle.

* ``ridge`` (scikit-learn) and ``lightgbm``: one model per horizon on the day's scaled
  features (the last step of each window; peer features included), trained on the
  fold's train days (a seeded subsample above ``baselines.max_train_rows``);
* ``no_graph``: ATFT-GAT-FAN of the run's last phase without the graph block (ablation);
* ``oracle``: the simulated market's own daily RankIC of its planted expected returns
  (``SimulatedMarket.oracle_daily``), on the same validation dates — only when
  ``baselines.oracle_market`` names the market that built the lake.

Each baseline is a child run of the CV parent run; the table (RankIC per horizon per
model and as a fraction of the oracle) is printed by the CLI and logged as
``baselines.md`` / ``baselines.json`` on the parent run.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from training.config import compose
from training.data.batches import DevicePanel
from training.data.panel import HORIZONS
from training.experiment import (
    Data,
    apply_threads,
    device_panel,
    fit_fold,
    load_data,
    log_evaluation,
    samplers,
)
from training.inference import label_frame, predict_days, prediction_columns

log = logging.getLogger(__name__)

TABLE_ARTIFACT = "baselines.md"
_TABLE_TAG = "baselines_table"


def _tabular(dp: DevicePanel, days, require_label: bool):
    """Rows (day, stock) of ``days``: scaled features of that day, labels, label mask."""
    p = dp.panel
    x = dp.x.cpu().numpy()  # [S, D, F]
    ok = p.listed[days] & (p.label_ok[days].any(axis=2) if require_label else True)
    d_idx, s_idx = np.nonzero(ok)
    d_idx = np.asarray(days)[d_idx]
    return (d_idx, s_idx, x[s_idx, d_idx], p.labels[d_idx, s_idx] / dp.label_std,
            p.label_ok[d_idx, s_idx])


def _fit_predict_tabular(kind: str, cfg: dict, dp: DevicePanel, train_days, val_days):
    b = cfg["baselines"]
    rng = np.random.default_rng(int(cfg["train"]["seed"]))
    _, _, xtr, ytr, oktr = _tabular(dp, train_days, True)
    if len(xtr) > int(b["max_train_rows"]):
        keep = rng.choice(len(xtr), int(b["max_train_rows"]), replace=False)
        xtr, ytr, oktr = xtr[keep], ytr[keep], oktr[keep]
    d_idx, s_idx, xva, _, _ = _tabular(dp, val_days, True)
    out = np.zeros((len(xva), len(HORIZONS)))
    for h in range(len(HORIZONS)):
        rows = oktr[:, h]
        if kind == "ridge":
            from sklearn.linear_model import Ridge

            model = Ridge(alpha=float(b["ridge_alpha"])).fit(xtr[rows], ytr[rows, h])
        else:
            import lightgbm as lgb

            model = lgb.LGBMRegressor(
                n_estimators=int(b["lgbm_rounds"]), num_leaves=int(b["lgbm_leaves"]),
                learning_rate=0.05, subsample=0.8, subsample_freq=1, colsample_bytree=0.8,
                random_state=int(cfg["train"]["seed"]), n_jobs=max(1, int(cfg["train"].get("threads") or 0) or 2),
                verbose=-1).fit(xtr[rows], ytr[rows, h])
        out[:, h] = model.predict(xva) * dp.label_std[h]
    frame = pd.DataFrame({"date": np.asarray(dp.panel.days, dtype=object)[d_idx],
                          "code": np.asarray(dp.panel.codes, dtype=object)[s_idx]})
    for h, hz in enumerate(HORIZONS):
        frame[f"pred_{hz}d"] = out[:, h]
    return frame


def oracle_rank_ic(market_cfg: dict, dates: list[dt.date]) -> dict[int, float]:
    """Mean of the simulator's daily oracle RankIC over ``dates``, per horizon, for the
    market ``market_cfg`` (``MarketConfig`` fields; ``signal`` a ``PlantedSignal`` dict)."""
    from gogooku3.market.sim import MarketConfig, PlantedSignal, simulate_market

    kw = dict(market_cfg)
    for key in ("start", "end"):
        if isinstance(kw.get(key), str):
            kw[key] = dt.date.fromisoformat(kw[key])
    if isinstance(kw.get("signal"), dict):
        kw["signal"] = PlantedSignal(**kw["signal"])
    market = simulate_market(MarketConfig(**kw))
    daily = market.oracle_daily.set_index("Date")
    wanted = [d.isoformat() for d in dates if d.isoformat() in daily.index]
    return {h: float(daily.loc[wanted, f"{h}d"].mean()) for h in HORIZONS}


def baseline_table(rank_ic: dict[str, dict[int, float]], oracle: dict[int, float] | None) -> str:
    """Markdown table: RankIC per horizon per model, and its fraction of the oracle."""
    head = "| model | " + " | ".join(f"RankIC {h}d" for h in HORIZONS)
    if oracle:
        head += " | " + " | ".join(f"x oracle {h}d" for h in HORIZONS)
    lines = [head + " |", "|" + " --- |" * (1 + len(HORIZONS) * (2 if oracle else 1))]
    for name, vals in rank_ic.items():
        row = f"| {name} | " + " | ".join(f"{vals[h]:.4f}" for h in HORIZONS)
        if oracle:
            row += " | " + " | ".join(f"{vals[h] / oracle[h]:.2f}" if oracle[h] else "-"
                                      for h in HORIZONS)
        lines.append(row + " |")
    if oracle:
        lines.append("| oracle | " + " | ".join(f"{oracle[h]:.4f}" for h in HORIZONS) + " | "
                     + " | ".join("1.00" for _ in HORIZONS) + " |")
    return "\n".join(lines)


def latest_run_with_table(experiment: str = "atft_gat_fan") -> str:
    """The id of the most recent CV run on which ``evaluate_baselines`` logged its table
    (active tracking store); LookupError when there is none."""
    client = mlflow.tracking.MlflowClient()
    exp = client.get_experiment_by_name(experiment)
    runs = [] if exp is None else client.search_runs(
        [exp.experiment_id], f"tags.{_TABLE_TAG} = '{TABLE_ARTIFACT}'",
        order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        raise LookupError(f"no CV run with a baselines table in MLflow experiment {experiment!r}")
    return runs[0].info.run_id


def evaluate_baselines(run_id: str, lake_root: str | None = None) -> dict:
    """Train and score every configured baseline on the folds of CV run ``run_id`` and log
    them as its child runs; return ``{"rank_ic": {model: {h: value}}, "oracle": {h: v} |
    None, "table": markdown}``."""
    client = mlflow.tracking.MlflowClient()
    parent = client.get_run(run_id)
    params = parent.data.params
    overrides = json.loads(params["run.overrides"])
    phase = params["run.phase"]
    cfg = compose(overrides, phase="augmentation" if phase == "all" else phase)
    apply_threads(cfg)  # the no-graph ablation trains with the run's thread setting
    start = dt.date.fromisoformat(params["run.start"])
    end = dt.date.fromisoformat(params["run.end"])
    data: Data = load_data(cfg, start, end, lake_root)
    ric: dict[str, dict[int, float]] = {
        "atft_gat_fan": {h: float(parent.data.metrics.get(f"val/rank_ic_{h}d", np.nan))
                         for h in HORIZONS}}
    val_dates: list[dt.date] = []
    with mlflow.start_run(run_id=run_id):
        for name in cfg["baselines"]["models"]:
            preds, labels = [], []
            with mlflow.start_run(run_name=f"baseline/{name}", nested=True):
                mlflow.log_param("baseline", name)
                for fold in data.split.folds:
                    dp = device_panel(cfg, data, fold.train, use_graph=name != "no_graph")
                    if name == "no_graph":
                        ng = {**cfg, "model": {**cfg["model"], "use_gat": False}}
                        train_s, val_s = samplers(ng, data.panel, fold.train, fold.val)
                        model, _ = fit_fold(ng, dp, train_s, val_s)
                        pred = predict_days(model, dp, val_s, use_graph=False)
                        pred = pred[["date", "code", *[c for c in prediction_columns()
                                                       if c.count("_") == 1]]]
                    elif name in ("ridge", "lightgbm"):
                        pred = _fit_predict_tabular(name, cfg, dp, fold.train, fold.val)
                    else:
                        raise ValueError(f"baselines.models: unknown baseline {name!r} "
                                         "(known: ridge, lightgbm, no_graph)")
                    preds.append(pred)
                    labels.append(label_frame(dp, list(fold.val)))
                metrics = log_evaluation(name, pd.concat(preds), pd.concat(labels), "val")
                ric[name] = {h: metrics.get(f"val/rank_ic_{h}d", np.nan) for h in HORIZONS}
        val_dates = sorted({d for f in data.split.folds for d in
                            (data.panel.days[i] for i in f.val)})
        market = cfg["baselines"].get("oracle_market")
        oracle = oracle_rank_ic(market, val_dates) if market else None
        table = baseline_table(ric, oracle)
        result = {"rank_ic": {k: {str(h): v for h, v in d.items()} for k, d in ric.items()},
                  "oracle": None if oracle is None else {str(h): v for h, v in oracle.items()},
                  "table": table}
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / TABLE_ARTIFACT).write_text(table + "\n")
            mlflow.log_artifact(str(Path(tmp) / TABLE_ARTIFACT))
        mlflow.log_dict(result, "baselines.json")
        mlflow.set_tag(_TABLE_TAG, TABLE_ARTIFACT)
        if oracle:
            mlflow.log_metrics({f"oracle/rank_ic_{h}d": v for h, v in oracle.items()})
    return result
