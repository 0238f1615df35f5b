"""The training task: one command, run locally or in the trainer container.

``TrainOperator`` is a ``DockerOperator`` whose backend is chosen at *execution* time by
the setting ``training_backend`` (``GOGOOKU_TRAINING_BACKEND``):

* ``local`` (the embedded default): ``python -m gogooku3.cli train --cv-only ...`` as a
  child process of the task, with this interpreter;
* ``docker``: the same arguments after ``python`` in the image ``trainer_image``
  (``docker/trainer.Dockerfile``), all GPUs requested, the lake and a file-based MLflow
  store bind-mounted at their host paths and named by environment, removed when it
  exits (its output is in the task log).
  The Docker daemon URL comes from connection ``docker_default`` (extra ``docker_url``;
  default ``unix://var/run/docker.sock``); its login, when set, is the registry's.

Secrets never enter the container's environment: only the settings below are passed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from airflow.providers.docker.operators.docker import DockerOperator
from docker.types import DeviceRequest, Mount

from gogooku3.airflow.train_step import train_args

DOCKER_CONN_ID = "docker_default"
DEFAULT_DOCKER_URL = "unix://var/run/docker.sock"
#: non-secret environment passed to the container when set on the worker
PASSED_ENV = ("MLFLOW_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION",
              "CUDA_VISIBLE_DEVICES")


def _local_path(uri: str) -> str | None:
    """Absolute local path of a lake or file-store URI (``None`` for a remote store)."""
    if uri.startswith("file://"):
        return uri.removeprefix("file://")
    return None if "://" in uri else os.path.abspath(uri)


def container_spec(settings, environ: Mapping[str, str] = os.environ
                   ) -> tuple[dict[str, str], list[Mount]]:
    """Environment and bind mounts that give the container this worker's lake and MLflow
    store at the same paths. A ``sqlite:///`` tracking store mounts its directory (the
    MLflow artifacts must live under it); remote stores (``s3://``, ``http://``) are named
    only."""
    from gogooku3.settings import PROJECT_ROOT

    env = {"GOGOOKU_LAKE": settings.lake_uri}
    mounts: list[Mount] = []
    lake = _local_path(settings.lake_uri)
    if lake:
        mounts.append(Mount(target=lake, source=lake, type="bind"))
    tracking = settings.mlflow_tracking_uri
    store = None
    if tracking.startswith("sqlite:///"):
        db = tracking.removeprefix("sqlite:///")
        db = db if os.path.isabs(db) else str(PROJECT_ROOT / db)
        tracking, store = f"sqlite:///{db}", os.path.dirname(db)
    else:
        store = _local_path(tracking)
    if store and store != lake:
        mounts.append(Mount(target=store, source=store, type="bind"))
    env["MLFLOW_TRACKING_URI"] = tracking
    env.update({k: environ[k] for k in PASSED_ENV if environ.get(k)})
    return env, mounts


def docker_endpoint(conn_id: str = DOCKER_CONN_ID) -> tuple[str, str | None]:
    """``(daemon URL, registry connection id or None)`` from connection ``conn_id``."""
    from airflow.exceptions import AirflowNotFoundException
    from airflow.sdk.bases.hook import BaseHook

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return DEFAULT_DOCKER_URL, None
    url = (conn.extra_dejson or {}).get("docker_url") or DEFAULT_DOCKER_URL
    return url, (conn_id if conn.login else None)


class TrainOperator(DockerOperator):
    """Train (see the module docstring); returns the parent MLflow run id (XCom).

    ``window_task`` names the task whose XCom holds the checked ``{"start", "end"}``
    (run alone, e.g. ``airflow tasks test``: ``params.start``/``end``); ``params.phase``
    and ``params.overrides`` complete the command.
    """

    def __init__(self, *, window_task: str, **kwargs: Any):
        kwargs.setdefault("image", "gogooku3-trainer:latest")  # replaced from settings
        kwargs.setdefault("auto_remove", "force")  # its output is in the task log
        kwargs.setdefault("mount_tmp_dir", False)  # a remote daemon cannot bind our /tmp
        kwargs.setdefault("device_requests", [DeviceRequest(count=-1, capabilities=[["gpu"]])])
        super().__init__(**kwargs)
        self.window_task = window_task

    def train_args(self, context: Mapping[str, Any]) -> list[str]:
        params = context.get("params") or {}
        window = context["ti"].xcom_pull(task_ids=self.window_task) or params
        return train_args(params.get("phase", "all"), params.get("overrides") or {},
                          window.get("start"), window.get("end"))

    def execute(self, context):
        import sys

        from gogooku3.airflow.processes import run_checked
        from gogooku3.settings import get_settings

        settings = get_settings()
        args = self.train_args(context)
        if settings.training_backend == "local":
            return run_checked([sys.executable, *args], "train (local)").last_line
        self.image = settings.trainer_image
        self.command = ["python", *args]
        self.environment, self.mounts = container_spec(settings)
        self.docker_url, self.docker_conn_id = docker_endpoint()
        self.log.info("train (docker %s at %s): %s", self.image, self.docker_url,
                      " ".join(self.command))
        return super().execute(context)
