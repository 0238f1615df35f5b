"""MLflow: tracking set-up, the packaged forecaster, registration and the champion gate.

The tracking URI comes from gogooku3 settings (``mlflow_tracking_uri``, default
``sqlite:///mlflow.db``). A trained model is logged as an MLflow pyfunc that bundles its
weights, model config, fold scaler and feature list (``Forecaster``), with a signature
and an input example; it is registered as ``atft_gat_fan`` with alias ``challenger``.
``promote`` moves alias ``champion`` only when the challenger's mean validation RankIC
at the gate horizon beats the champion's by more than the configured margin, and logs
the decision with both numbers on the challenger's run.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import torch
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from gogooku3.settings import get_settings

log = logging.getLogger(__name__)

GATE_METRIC = "val/rank_ic_{h}d"
PIP_REQUIREMENTS = ["torch", "torch-geometric", "numpy", "mlflow"]


class NoChampionError(LookupError):
    """The registered model has no ``champion`` alias yet."""


def artifact_root(uri: str) -> str | None:
    """Where a ``sqlite:///`` store keeps its artifacts: ``mlartifacts/`` beside the
    database (a relative path is relative to the working directory, as MLflow reads it),
    so the store's directory holds the whole store — what the trainer container mounts.
    ``None`` for other stores (a tracking server decides)."""
    if not uri.startswith("sqlite:///"):
        return None
    db = os.path.abspath(uri.removeprefix("sqlite:///"))
    return Path(os.path.dirname(db), "mlartifacts").as_uri()


def setup_tracking(uri: str | None = None, experiment: str = "atft_gat_fan") -> str:
    """Point MLflow at ``uri`` (default: settings' ``mlflow_tracking_uri``) and select
    ``experiment``, creating it with its artifacts under ``artifact_root(uri)``; return
    the URI. The registry uses the same store."""
    uri = uri or get_settings().mlflow_tracking_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    root = artifact_root(uri)
    if root and mlflow.get_experiment_by_name(experiment) is None:
        try:
            mlflow.create_experiment(experiment, artifact_location=f"{root}/{experiment}")
        except MlflowException:  # another process created it first
            pass
    mlflow.set_experiment(experiment)
    return uri


class Forecaster(mlflow.pyfunc.PythonModel):
    """A trained ATFT-GAT-FAN with what it needs to forecast from raw panel windows.

    ``predict`` input: ``{"x": float32 [N, L, F'] (scaled windows), "edge_index": int64
    [2, E], "edge_attr": float32 [E, 1]}``; output: float32 ``[N, H]`` point forecasts
    in return units. ``bundle`` exposes the torch model and its metadata to
    ``training.predict``.
    """

    def load_context(self, context) -> None:
        self.meta = json.loads(Path(context.artifacts["meta"]).read_text())
        from training.train import build_model

        # a meta logged before a switch existed lacks it: such a model was trained without
        model_cfg = {"graph_input_skip": False, "graph_two_hop": False, **self.meta["model"]}
        self.model = build_model(model_cfg, self.meta["n_inputs"], self.meta["window"])
        self.model.load_state_dict(torch.load(context.artifacts["weights"], map_location="cpu"))
        self.model.eval()

    def predict(self, context, model_input, params=None):
        x = torch.as_tensor(np.asarray(model_input["x"], dtype=np.float32))
        ei = torch.as_tensor(np.asarray(model_input["edge_index"], dtype=np.int64))
        ea = torch.as_tensor(np.asarray(model_input["edge_attr"], dtype=np.float32))
        use_graph = self.meta.get("use_graph", True)
        with torch.no_grad():
            out = self.model(x, ei if use_graph else None, ea if use_graph else None)
        std = np.asarray(self.meta["scaler"]["label_std"], dtype=np.float32)
        return out.point.numpy() * std


def log_forecaster(model: torch.nn.Module, meta: dict, example: dict[str, np.ndarray],
                   name: str = "model") -> str:
    """Log ``model`` + ``meta`` (model config, n_inputs, window, scaler, features,
    use_graph) as a pyfunc in the active run, with signature and input example; return
    the logged model's URI."""
    from mlflow.models import infer_signature

    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "weights.pt"
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, weights)
        meta_path = Path(tmp) / "meta.json"
        meta_path.write_text(json.dumps(meta))
        model.eval()
        with torch.no_grad():
            out = model(torch.as_tensor(example["x"]), torch.as_tensor(example["edge_index"]),
                        torch.as_tensor(example["edge_attr"]))
        signature = infer_signature(example, out.point.numpy())
        info = mlflow.pyfunc.log_model(
            name=name, python_model=Forecaster(),
            artifacts={"weights": str(weights), "meta": str(meta_path)},
            signature=signature, input_example=example, pip_requirements=PIP_REQUIREMENTS)
    return info.model_uri


def register(model_uri: str, run_id: str, model_name: str = "atft_gat_fan") -> str:
    """Register ``model_uri`` as a new version of ``model_name`` (tagged with the CV parent
    ``run_id``), set alias ``challenger``; return the version string."""
    client = MlflowClient()
    try:
        client.create_registered_model(model_name)
    except MlflowException:
        pass  # already registered
    mv = client.create_model_version(model_name, model_uri, run_id=run_id)
    client.set_registered_model_alias(model_name, "challenger", mv.version)
    log.info("registered %s version %s (challenger)", model_name, mv.version)
    return str(mv.version)


def _gate_value(client: MlflowClient, run_id: str, metric: str) -> float:
    run = client.get_run(run_id)
    if metric not in run.data.metrics:
        raise LookupError(f"run {run_id} has no metric {metric!r} for the champion gate")
    return float(run.data.metrics[metric])


def champion_version(model_name: str = "atft_gat_fan"):
    """The model version with alias ``champion``; ``NoChampionError`` when none."""
    client = MlflowClient()
    try:
        return client.get_model_version_by_alias(model_name, "champion")
    except MlflowException as exc:
        raise NoChampionError(f"no champion registered for {model_name}: train first") from exc


def promote(version: str, model_name: str = "atft_gat_fan", horizon: int = 5,
            margin: float = 0.002) -> dict:
    """Make ``version`` the champion iff its parent run's mean validation RankIC at
    ``horizon`` exceeds the champion's by more than ``margin`` (or no champion exists).

    Returns and logs (params/metrics on the challenger's run, plus ``decision.json``)
    ``{"promoted", "challenger_version", "challenger_rank_ic", "champion_version",
    "champion_rank_ic", "margin", "metric"}``.
    """
    client = MlflowClient()
    metric = GATE_METRIC.format(h=horizon)
    challenger = client.get_model_version(model_name, version)
    ch_value = _gate_value(client, challenger.run_id, metric)
    try:
        champ = champion_version(model_name)
    except NoChampionError:
        champ = None
    champ_value = _gate_value(client, champ.run_id, metric) if champ is not None else None
    promoted = champ_value is None or ch_value > champ_value + margin
    if champ is not None and str(champ.version) == str(version):
        promoted = False
    decision = {
        "promoted": bool(promoted), "metric": metric, "margin": float(margin),
        "challenger_version": str(version), "challenger_rank_ic": ch_value,
        "champion_version": None if champ is None else str(champ.version),
        "champion_rank_ic": champ_value,
    }
    if promoted:
        client.set_registered_model_alias(model_name, "champion", version)
    with mlflow.start_run(run_id=challenger.run_id):
        mlflow.log_dict(decision, f"promotion/decision_v{version}.json")
        mlflow.set_tag("promotion", "champion" if promoted else "kept challenger")
        mlflow.log_metric("promotion/challenger_rank_ic", ch_value)
        if champ_value is not None:
            mlflow.log_metric("promotion/champion_rank_ic", champ_value)
    log.info("promotion of %s v%s: %s (challenger %.4f vs champion %s, margin %.4f)",
             model_name, version, "promoted" if promoted else "not promoted", ch_value,
             "none" if champ_value is None else f"{champ_value:.4f}", margin)
    return decision
