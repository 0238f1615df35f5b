"""End to end on the tiny lake: `gogooku3 train` (1 epoch, CPU) -> MLflow runs -> registry
-> champion gate -> `gogooku3 predict`, against a temporary MLflow store."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import io
import json
import os
from pathlib import Path
from types import SimpleNamespace

import mlflow
import numpy as np
import pytest
import torch
from mlflow import MlflowClient
from tr_lake import MARKET, SMALL_RUN

from gogooku3 import cli
from gogooku3.lake import deltars
from gogooku3.settings import get_settings
from training import pipeline
from training.data.panel import GoldCoverageError
from training.model.config import ModelConfig
from training.registry import Forecaster, register
from training.train import build_model

_SIG = MARKET.signal
ORACLE = (f"baselines.oracle_market={{stocks: {MARKET.stocks}, start: '{MARKET.start}', "
          f"end: '{MARKET.end}', seed: {MARKET.seed}, clusters: {MARKET.clusters}, "
          f"signal: {{reversal: {_SIG.reversal}, lead_lag: {_SIG.lead_lag}}}}}")


@pytest.fixture(scope="module")
def lake_env(gold_lake):
    """Point the settings' lake at the tiny gold lake for this module."""
    old = os.environ["GOGOOKU_LAKE"]
    os.environ["GOGOOKU_LAKE"] = gold_lake["root"]
    get_settings.cache_clear()
    yield gold_lake
    os.environ["GOGOOKU_LAKE"] = old
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def trained(lake_env, tracking):
    """`gogooku3 train --phase gat` with ridge/LightGBM baselines and the oracle."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = cli.main(["train", "--phase", "gat", *SMALL_RUN,
                       "baselines.models=[ridge,lightgbm]", ORACLE])
    text = out.getvalue()
    assert rc == 0, text
    run_id = next(line.split()[-1] for line in text.splitlines() if line.startswith("CV run:"))
    return {"run_id": run_id, "stdout": text}


def test_train_logs_parent_and_child_runs_with_metrics_plots_and_model(trained):
    client = MlflowClient()
    parent = client.get_run(trained["run_id"])
    assert "val/rank_ic_5d" in parent.data.metrics
    assert "oracle/rank_ic_1d" in parent.data.metrics
    assert "jquants_api_key" not in str(parent.data.params)
    children = client.search_runs([parent.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{trained['run_id']}'")
    names = sorted(c.info.run_name for c in children)
    assert names == ["baseline/lightgbm", "baseline/ridge", "gat/fold0"]
    fold = next(c for c in children if c.info.run_name == "gat/fold0")
    assert len(client.get_metric_history(fold.info.run_id, "train/total_loss")) == 1
    plots = [a.path for a in client.list_artifacts(trained["run_id"], "plots")]
    assert plots == ["plots/val_cumulative_long_short.png", "plots/val_deciles.png",
                     "plots/val_rank_ic.png"]
    # the printed table: every model's RankIC and its fraction of the oracle
    for name in ("atft_gat_fan", "ridge", "lightgbm", "oracle"):
        assert f"| {name} |" in trained["stdout"]
    model = mlflow.pyfunc.load_model(parent.data.tags["model_uri"])
    assert model.metadata.signature is not None
    local = mlflow.artifacts.download_artifacts(parent.data.tags["model_uri"])
    example = model.metadata.load_input_example(local)
    assert model.predict(example).shape[1] == 5


def test_logged_model_config_holds_every_field_and_an_older_one_loads_as_trained(trained,
                                                                              tmp_path):
    """The logged meta stores the resolved ModelConfig, so a later default cannot change a
    registered model; a meta from before that (no ``graph_input_skip``, no
    ``graph_two_hop``) loads without either."""
    parent = MlflowClient().get_run(trained["run_id"])
    local = mlflow.artifacts.download_artifacts(parent.data.tags["model_uri"])
    meta_path = next(Path(local).rglob("meta.json"))
    weights_path = next(Path(local).rglob("weights.pt"))
    meta = json.loads(meta_path.read_text())
    assert set(meta["model"]) == {f.name for f in dataclasses.fields(ModelConfig)}
    assert meta["model"]["hidden"] == 16 and meta["model"]["graph_input_skip"] is True
    assert meta["model"]["graph_two_hop"] is True

    switches = {"graph_input_skip": False, "graph_two_hop": False}
    old_cfg = {k: v for k, v in meta["model"].items() if k not in switches}
    old_model = build_model({**old_cfg, **switches}, meta["n_inputs"], meta["window"])
    torch.save(old_model.state_dict(), tmp_path / "weights.pt")
    (tmp_path / "meta.json").write_text(json.dumps({**meta, "model": old_cfg}))
    forecaster = Forecaster()
    forecaster.load_context(SimpleNamespace(artifacts={
        "meta": str(tmp_path / "meta.json"), "weights": str(tmp_path / "weights.pt")}))
    assert not forecaster.model.cfg.graph_input_skip and not forecaster.model.cfg.graph_two_hop
    # the current meta rebuilds both; its weights load strictly
    forecaster.load_context(SimpleNamespace(artifacts={
        "meta": str(meta_path), "weights": str(weights_path)}))
    assert forecaster.model.cfg.graph_input_skip and forecaster.model.cfg.graph_two_hop


def test_worse_challenger_is_not_promoted(trained):
    client = MlflowClient()
    parent = client.get_run(trained["run_id"])
    champion = client.get_model_version_by_alias("atft_gat_fan", "champion")
    best = parent.data.metrics["val/rank_ic_5d"]

    def challenger(value: float) -> str:
        with mlflow.start_run(run_name="challenger") as run:
            mlflow.log_metric("val/rank_ic_5d", value)
        return register(parent.data.tags["model_uri"], run.info.run_id)

    worse = challenger(best - 0.01)
    decision = pipeline.promote(worse)
    assert decision["promoted"] is False
    assert decision["challenger_rank_ic"] == pytest.approx(best - 0.01)
    assert decision["champion_rank_ic"] == pytest.approx(best)
    assert client.get_model_version_by_alias("atft_gat_fan", "champion").version == champion.version
    within_margin = challenger(best + 0.001)  # margin 0.002
    assert pipeline.promote(within_margin)["promoted"] is False
    better = challenger(best + 0.05)
    assert pipeline.promote(better)["promoted"] is True
    assert str(client.get_model_version_by_alias("atft_gat_fan", "champion").version) == better


def test_predictions_replace_exactly_their_date(trained, lake_env):
    d1, d2 = lake_env["days"][-1], lake_env["days"][-5]
    assert cli.main(["predict", "--date", d1.isoformat()]) == 0
    assert cli.main(["predict", "--date", d2.isoformat()]) == 0
    before = deltars.read_table("gold.predictions").to_pandas()
    assert cli.main(["predict", "--date", d1.isoformat()]) == 0
    after = deltars.read_table("gold.predictions").to_pandas()
    assert sorted(after["date"].unique()) == sorted([d1, d2])
    listed = deltars.read_table("gold.features", d1, d1, ["code"])
    assert (after["date"] == d1).sum() == listed.num_rows
    assert not after.duplicated(["date", "code"]).any()
    old2 = before[before["date"] == d2].sort_values("code").reset_index(drop=True)
    new2 = after[after["date"] == d2].sort_values("code").reset_index(drop=True)
    assert old2.equals(new2)
    assert np.isfinite(after["pred_5d"]).all()
    q = after[[f"pred_5d_q{k}" for k in (10, 25, 50, 75, 90)]].to_numpy()
    assert (np.diff(q, axis=1) >= -1e-9).all()


def test_date_without_features_fails_naming_it(trained, lake_env):
    sunday = dt.date(2024, 11, 24)
    with pytest.raises(GoldCoverageError, match="2024-11-24"):
        pipeline.predict(sunday.isoformat())


@contextlib.contextmanager
def _empty_tracking_store(tmp_path):
    """MLFLOW_TRACKING_URI on an empty SQLite store for the block, then back."""
    old = os.environ["MLFLOW_TRACKING_URI"]
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path}/empty.db"
    get_settings.cache_clear()
    try:
        yield
    finally:
        os.environ["MLFLOW_TRACKING_URI"] = old
        get_settings.cache_clear()
        mlflow.set_tracking_uri(old)


def test_predict_without_champion_exits_3(lake_env, tmp_path, capsys):
    with _empty_tracking_store(tmp_path):
        rc = cli.main(["predict", "--date", lake_env["days"][-1].isoformat()])
    assert rc == 3
    assert "no champion registered for atft_gat_fan: train first" in capsys.readouterr().err


def test_baselines_command_prints_the_table_train_printed(trained, capsys):
    capsys.readouterr()
    assert cli.main(["baselines", "--run", trained["run_id"]]) == 0
    table = capsys.readouterr().out.strip()
    assert table.startswith("| model |") and "| oracle |" in table
    assert table in trained["stdout"]
    assert cli.main(["baselines"]) == 0  # the latest run with a table
    assert capsys.readouterr().out.strip().startswith("| model |")


def test_baselines_command_without_a_table_fails_naming_the_experiment(tmp_path, capsys):
    with _empty_tracking_store(tmp_path):
        rc = cli.main(["baselines"])
    assert rc == 2
    assert "no CV run with a baselines table" in capsys.readouterr().err
