"""The train task's two backends: the container spec DockerOperator sends to the Docker
API (GPU request, mounts, environment without secrets, command) equals the local command.
"""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import pytest
from docker_stub import API, DockerStub

from gogooku3.settings import get_settings

SECRET = "s3cr3t-never-in-a-container"


class _TI:
    def xcom_pull(self, task_ids):
        assert task_ids == "check_gold_range"
        return {"start": "2025-07-01", "end": "2025-12-30", "days": 124}


CONTEXT = {"params": {"phase": "gat", "overrides": {"train.max_epochs": 1, "model.hidden": 16}},
           "ti": _TI()}


@pytest.fixture
def backend(monkeypatch, tmp_path):
    """Settings for one backend; secrets set on the worker that must not travel."""
    store = tmp_path / "mlflow"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}/mlflow.db")
    monkeypatch.setenv("JQUANTS_API_KEY", SECRET)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("GOGOOKU_TRAINER_IMAGE", "registry.local/gogooku3-trainer:7")

    def use(name: str):
        monkeypatch.setenv("GOGOOKU_TRAINING_BACKEND", name)
        get_settings.cache_clear()
        return get_settings()

    yield use, store
    get_settings.cache_clear()


def _operator():
    from gogooku3.airflow.trainer import TrainOperator

    return TrainOperator(task_id="train", window_task="check_gold_range")


def test_local_backend_runs_the_train_step_with_this_interpreter(backend, monkeypatch):
    use, _ = backend
    use("local")
    ran = []

    def fake_run(argv, what):
        ran.append(argv)
        return SimpleNamespace(returncode=0, last_line="run-42")

    monkeypatch.setattr("gogooku3.airflow.processes.run_checked", fake_run)
    assert _operator().execute(CONTEXT) == "run-42"
    assert ran == [[sys.executable, "-m", "gogooku3.cli", "train", "--cv-only", "--phase", "gat",
                    "--start", "2025-07-01", "--end", "2025-12-30",
                    "model.hidden=16", "train.max_epochs=1"]]


def test_docker_backend_sends_gpu_request_mounts_safe_env_and_the_local_command(
        backend, monkeypatch, tmp_path):
    use, store = backend
    settings = use("docker")
    lake = settings.lake_uri
    with DockerStub(tmp_path / "docker.sock", logs=["epoch 1/1 loss 0.1", "run-42"]) as stub:
        monkeypatch.setenv("AIRFLOW_CONN_DOCKER_DEFAULT", json.dumps(
            {"conn_type": "docker", "extra": {"docker_url": stub.url}}))
        assert _operator().execute(CONTEXT) == "run-42"  # the last output line: the run id
    spec = stub.created()
    assert spec["Image"] == "registry.local/gogooku3-trainer:7"
    assert spec["Cmd"] == ["python", "-m", "gogooku3.cli", "train", "--cv-only", "--phase", "gat",
                           "--start", "2025-07-01", "--end", "2025-12-30",
                           "model.hidden=16", "train.max_epochs=1"]
    host = spec["HostConfig"]
    assert host["DeviceRequests"] == [{"Driver": "", "Count": -1, "DeviceIDs": [],
                                       "Capabilities": [["gpu"]], "Options": {}}]
    mounts = {(m["Source"], m["Target"], m["Type"]) for m in host["Mounts"]}
    assert mounts == {(lake, lake, "bind"), (str(store), str(store), "bind")}
    env = dict(e.split("=", 1) for e in spec["Env"])
    assert env["GOGOOKU_LAKE"] == lake
    assert env["MLFLOW_TRACKING_URI"] == f"sqlite:///{store}/mlflow.db"
    assert SECRET not in json.dumps(spec)
    calls = [(m, p.split("?")[0].split("/", 2)[-1]) for m, p, _ in stub.requests]
    assert ("POST", "containers/c0ffee/start") in calls
    assert ("DELETE", "containers/c0ffee") in calls  # auto_remove


def test_a_failing_container_fails_the_task_with_its_output_and_is_removed(
        backend, monkeypatch, tmp_path):
    from airflow.providers.docker.exceptions import DockerContainerFailedException

    use, _ = backend
    use("docker")
    with DockerStub(tmp_path / "docker.sock", logs=["CUDA error"], exit_code=1) as stub:
        monkeypatch.setenv("AIRFLOW_CONN_DOCKER_DEFAULT", json.dumps(
            {"conn_type": "docker", "extra": {"docker_url": stub.url}}))
        with pytest.raises(DockerContainerFailedException) as err:
            _operator().execute(CONTEXT)
    assert err.value.logs == ["CUDA error"]
    assert [p.split("?")[0] for m, p, _ in stub.requests if m == "DELETE"] == [
        f"/v{API}/containers/c0ffee"]
