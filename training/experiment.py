"""One cross-validated training run: gold panel -> walk-forward folds -> phases -> MLflow.

A parent MLflow run holds the whole CV; each (phase, fold) is a child run with its
params, per-epoch metrics, validation metrics and plots. The parent gets the validation
metrics of the last phase pooled over every fold's validation days (``val/rank_ic_5d``
is the champion gate's number), the daily metrics frame, the plots, and the model
trained on the last fold (the most history) packaged for the registry. Everything a
baseline needs to rebuild the same folds is stored as parent params.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import torch

from training.config import PHASES, compose, flatten
from training.cv import Split, walk_forward_folds
from training.data.batches import DaySampler, DevicePanel, FoldScaler
from training.data.graph import PeerGraphs, load_peer_graphs
from training.data.panel import HORIZONS, Panel, default_feature_columns, load_panel
from training.inference import label_frame, predict_days
from training.metrics import evaluate_predictions
from training.plots import plot_metrics
from training.registry import log_forecaster, setup_tracking
from training.train import (
    FitResult,
    Trainer,
    build_model,
    resolve_device,
    seed_everything,
)

log = logging.getLogger(__name__)


@dataclass
class Data:
    """The panel, its day graphs and the folds of one experiment."""

    panel: Panel
    graphs: PeerGraphs
    split: Split


def apply_threads(cfg: dict) -> None:
    """Set torch's CPU threads to ``train.threads`` when it is > 0 (0: torch's default)."""
    if int(cfg["train"].get("threads") or 0) > 0:
        torch.set_num_threads(int(cfg["train"]["threads"]))


def load_data(cfg: dict, start: dt.date | None, end: dt.date | None,
              lake_root: str | None = None) -> Data:
    """Read the gold panel for ``[start, end]`` and cut the walk-forward folds."""
    feats = cfg["data"]["features"]
    cols = default_feature_columns() if feats in (None, "all") else list(feats)
    panel = load_panel(start, end, cols, lake_root)
    graphs = load_peer_graphs(panel.days, panel.codes, lake_root)
    c = cfg["cv"]
    split = walk_forward_folds(len(panel.days), int(c["n_folds"]), int(c["val_days"]),
                               int(c["test_days"]), int(c["embargo"]),
                               int(c["min_train_days"]), max(HORIZONS),
                               None if c.get("max_train_days") is None
                               else int(c["max_train_days"]))
    return Data(panel, graphs, split)


def samplers(cfg: dict, panel: Panel, train_days: Sequence[int],
             val_days: Sequence[int]) -> tuple[DaySampler, DaySampler]:
    """Shuffled day batches over ``train_days``, ordered ones over ``val_days``."""
    d, seed = cfg["data"], int(cfg["train"]["seed"])
    kw = {"max_stocks": int(d["max_stocks"]), "min_stocks": int(d["min_stocks"])}
    return (DaySampler(panel, train_days, shuffle=True, seed=seed, **kw),
            DaySampler(panel, val_days, shuffle=False, **kw))


def device_panel(cfg: dict, data: Data, train_days: Sequence[int],
                 use_graph: bool = True) -> DevicePanel:
    """The panel scaled with statistics of ``train_days`` only, on the configured device."""
    scaler = FoldScaler.fit(data.panel, train_days, seed=int(cfg["train"]["seed"]))
    return DevicePanel(data.panel, scaler, data.graphs if use_graph else None,
                       resolve_device(cfg["train"]["device"]), int(cfg["data"]["window"]),
                       bool(cfg["data"]["mask_channels"]))


def fit_fold(cfg: dict, dp: DevicePanel, train: DaySampler, val: DaySampler,
             init_state: dict | None = None, on_epoch=None) -> tuple[torch.nn.Module, FitResult]:
    """Build the configured model, warm-start it from ``init_state`` where parameter
    names and shapes match, and fit it."""
    seed_everything(int(cfg["train"]["seed"]))
    model = build_model(cfg["model"], dp.n_inputs, int(cfg["data"]["window"]))
    if init_state is not None:
        own = model.state_dict()
        same = {k: v for k, v in init_state.items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(same, strict=False)
    use_graph = bool(cfg["model"].get("use_gat", True))
    trainer = Trainer(model, dp, cfg["train"], cfg["loss"], use_graph=use_graph)
    return model, trainer.fit(train, val, on_epoch)


def _log_epoch(epoch: int, row: dict) -> None:
    mlflow.log_metrics({k: float(v) for k, v in row.items() if k != "epoch"}, step=epoch)


def log_evaluation(name: str, pred: pd.DataFrame, labels: pd.DataFrame, prefix: str) -> dict:
    """Score ``pred`` against ``labels`` on every horizon and log to the active run:
    ``<prefix>/<metric>_<h>d`` metrics, the daily metrics CSV and the plots; return the
    metrics."""
    daily, summary, deciles = evaluate_predictions(pred, labels, name)
    metrics = {f"{prefix}/{k}_{h}d": v for h, s in summary.items() for k, v in s.items()}
    mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)})
    with tempfile.TemporaryDirectory() as tmp:
        daily.to_csv(Path(tmp) / f"{prefix}_daily_metrics.csv", index=False)
        mlflow.log_artifact(str(Path(tmp) / f"{prefix}_daily_metrics.csv"))
        for path in plot_metrics(daily, deciles, tmp, prefix=f"{prefix}_"):
            mlflow.log_artifact(str(path), artifact_path="plots")
    return metrics


def _example(dp: DevicePanel, train_days: Sequence[int]) -> dict[str, np.ndarray]:
    day = int(train_days[-1])
    stocks = np.flatnonzero(dp.panel.listed[day])[:32]
    b = dp.batch(day, stocks)
    return {"x": b.x.cpu().numpy(), "edge_index": b.edge_index.cpu().numpy(),
            "edge_attr": b.edge_attr.cpu().numpy()}


def _config_date(value) -> dt.date | None:
    return value if value is None or isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def run_cv(overrides: Sequence[str] = (), phase: str = "all", start: dt.date | None = None,
           end: dt.date | None = None, lake_root: str | None = None,
           tracking_uri: str | None = None) -> str:
    """Train every phase of ``phase`` (``all`` = ``PHASES`` in order, each warm-started
    from the previous one) on every fold; return the parent MLflow run id."""
    phases = list(PHASES) if phase == "all" else [phase]
    cfgs = {p: compose(overrides, phase=p) for p in phases}
    cfg = cfgs[phases[-1]]
    apply_threads(cfg)
    setup_tracking(tracking_uri)
    start = start or _config_date(cfg["data"]["start"])
    end = end or _config_date(cfg["data"]["end"])
    data = load_data(cfg, start, end, lake_root)
    days = data.panel.days
    with mlflow.start_run(run_name=f"cv-{phase}") as parent:
        mlflow.log_params({**{k: v for k, v in flatten(cfg).items()},
                           "run.phase": phase, "run.overrides": json.dumps(list(overrides)),
                           "run.start": str(start or days[0]), "run.end": str(end or days[-1]),
                           "data.n_features": len(data.panel.feature_names),
                           "data.days": len(days), "data.stocks": len(data.panel.codes)})
        mlflow.log_dict(cfg, "config.json")
        mlflow.log_dict({"folds": [f.describe(days) for f in data.split.folds]}, "folds.json")
        preds, labels = [], []
        for fold in data.split.folds:
            dp = device_panel(cfg, data, fold.train)
            train_s, val_s = samplers(cfg, data.panel, fold.train, fold.val)
            state = None
            for p in phases:
                pc = cfgs[p]
                with mlflow.start_run(run_name=f"{p}/fold{fold.index}", nested=True):
                    mlflow.log_params({**flatten(pc), **fold.describe(days), "phase": p})
                    model, res = fit_fold(pc, dp, train_s, val_s,
                                          state if pc["train"]["warm_start"] else None,
                                          _log_epoch)
                    mlflow.log_metrics({"best_epoch": res.best_epoch,
                                        "best_val_total_loss": res.best_val_loss})
                    use_graph = bool(pc["model"].get("use_gat", True))
                    pred = predict_days(model, dp, val_s, use_graph)
                    lab = label_frame(dp, val_s.days)
                    log_evaluation("atft_gat_fan", pred, lab, "val")
                    state = res.best_state
            preds.append(pred)
            labels.append(lab)
        pooled = log_evaluation("atft_gat_fan", pd.concat(preds), pd.concat(labels), "val")
        last = data.split.folds[-1]
        if len(data.split.test):
            test_s = DaySampler(data.panel, data.split.test, int(cfg["data"]["max_stocks"]),
                                int(cfg["data"]["min_stocks"]))
            log_evaluation("atft_gat_fan", predict_days(model, dp, test_s, use_graph),
                            label_frame(dp, test_s.days), "test")
        # every field resolved, so a later change of a default cannot change this model
        meta = {"model": model.cfg.to_dict(),
                "n_inputs": dp.n_inputs, "window": int(cfg["data"]["window"]),
                "mask_channels": bool(cfg["data"]["mask_channels"]),
                "features": data.panel.feature_names, "use_graph": use_graph,
                "scaler": dp.scaler.to_dict(),
                "trained_through": str(days[last.train.stop - 1])}
        uri = log_forecaster(model.cpu(), meta, _example(dp, last.train))
        mlflow.set_tag("model_uri", uri)
        log.info("CV run %s: val RankIC 1d %.4f, 5d %.4f", parent.info.run_id,
                 pooled.get("val/rank_ic_1d", float("nan")),
                 pooled.get("val/rank_ic_5d", float("nan")))
        return parent.info.run_id
