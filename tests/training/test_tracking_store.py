"""A SQLite MLflow store keeps its artifacts beside the database, so the store's directory
is the whole store (the trainer container mounts only that directory)."""

from __future__ import annotations

from pathlib import Path

import mlflow

from training.registry import artifact_root, setup_tracking


def test_a_new_experiment_of_a_sqlite_store_keeps_artifacts_beside_the_database(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    before = mlflow.get_tracking_uri()
    try:
        setup_tracking(f"sqlite:///{store}/mlflow.db", experiment="beside")
        location = mlflow.get_experiment_by_name("beside").artifact_location
    finally:
        mlflow.set_tracking_uri(before)
        mlflow.set_registry_uri(before)
    assert location == (store / "mlartifacts" / "beside").as_uri()


def test_artifact_root_resolves_relative_stores_like_mlflow_and_leaves_servers_alone():
    assert artifact_root("sqlite:///mlflow.db") == (Path.cwd() / "mlartifacts").as_uri()
    assert artifact_root("http://mlflow:5000") is None
