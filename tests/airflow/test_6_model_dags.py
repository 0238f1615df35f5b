"""The model DAGs run by ``airflow dags test`` / ``tasks test`` on the session's lake:
training at tiny size registers a model (local backend), inference predicts a date and
materializes it. They need ``training.pipeline`` and the ``predict``/``serve`` CLIs."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import time

import podman_host
import pytest
from af_helpers import HISTORY_END

from gogooku3.lake import deltars

pytestmark = pytest.mark.skipif(importlib.util.find_spec("training.pipeline") is None,
                                reason="needs training/ from the training branch")

GOLD = (dt.date(2026, 3, 2), HISTORY_END)  # ~175 trading days: folds, embargo, window
TINY = {"train.epochs": 1, "cv.n_folds": 1, "model.hidden": 16}
DAY = dt.date(2026, 11, 16)


@pytest.fixture(scope="module")
def gold(airflow_env, history):
    """gold.features/labels over GOLD, built by one feature run now (the demo's path)."""
    airflow_env.dags_test("spark_features_daily", None,
                          conf={"start": GOLD[0].isoformat(), "end": GOLD[1].isoformat()})
    return GOLD


@pytest.fixture(scope="module")
def trained(airflow_env, gold):
    return airflow_env.dags_test("atft_training_weekly", None, conf={
        "phase": "baseline", "overrides": TINY,
        "start": gold[0].isoformat(), "end": gold[1].isoformat()})


def test_training_dag_at_tiny_size_registers_and_promotes_a_model(airflow_env, trained):
    out = trained.stdout + trained.stderr
    assert "state=success" in out
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=airflow_env.env.get("MLFLOW_TRACKING_URI"))
    versions = client.search_model_versions("name='atft_gat_fan'")
    assert versions, "register made a registry version"


def test_train_task_alone_with_tasks_test_returns_an_mlflow_run_id(airflow_env, gold):
    proc = airflow_env.run("tasks", "test", "atft_training_weekly", "train",
                           HISTORY_END.isoformat(), "-t", json_params(gold), timeout=900)
    out = proc.stdout + proc.stderr
    assert "new_state=success" in out and "train (local)" in out


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    """Debian's podman serving the Docker API, and the locally built trainer image."""
    why = podman_host.unavailable()
    if why:
        pytest.skip(why)
    service = podman_host.PodmanService(tmp_path_factory.mktemp("podman"))
    image = service.build_image()
    service.start()
    yield service, image
    service.stop()


def test_train_task_runs_in_a_podman_container_through_dockeroperator(airflow_env, gold,
                                                                      podman):
    import mlflow

    service, image = podman
    env = {**airflow_env.env, "GOGOOKU_TRAINING_BACKEND": "docker",
           "GOGOOKU_TRAINER_IMAGE": image,
           "AIRFLOW_CONN_DOCKER_DEFAULT": json.dumps(
               {"conn_type": "docker", "extra": {"docker_url": service.url}})}
    started_ms = time.time() * 1000
    proc = airflow_env.run("tasks", "test", "atft_training_weekly", "train",
                           HISTORY_END.isoformat(), "-t", json_params(gold), env=env,
                           timeout=900)
    out = proc.stdout + proc.stderr
    assert "new_state=success" in out and f"train (docker {image} at {service.url})" in out
    client = mlflow.MlflowClient(tracking_uri=airflow_env.env["MLFLOW_TRACKING_URI"])
    runs = [r for e in client.search_experiments()
            for r in client.search_runs([e.experiment_id],
                                        filter_string="tags.mlflow.parentRunId IS NULL")
            if r.info.start_time >= started_ms]
    assert [r.info.status for r in runs] == ["FINISHED"], "the container's CV run is in MLflow"
    assert runs[0].info.run_id in out, "the task returns the run id the container printed"


def test_inference_dag_predicts_the_day_and_materializes_it(airflow_env, trained):
    proc = airflow_env.dags_test("daily_inference", DAY.isoformat())
    out = proc.stdout + proc.stderr
    assert "state=success" in out and "materialize Feast" in out
    preds = deltars.read_table("gold.predictions", DAY, DAY, lake_root=airflow_env.lake)
    assert preds.num_rows > 0
    assert set(preds.column("date").to_pylist()) == {DAY}


def json_params(gold) -> str:
    import json

    return json.dumps({"phase": "baseline", "overrides": TINY, "start": gold[0].isoformat(),
                       "end": gold[1].isoformat()})
