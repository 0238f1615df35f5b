"""A standalone Spark cluster (master + 1 worker, started here with scripts/spark_cluster.sh)
runs ``spark-submit spark_jobs/build_features.py`` and writes the same gold tables as the
same job on local[*], and the history server's REST API lists the cluster application.

Everything runs in subprocesses on free ports under the test's own directory; the cluster
and the history server are stopped in teardown even when the test fails.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sj_helpers import bench_module, read_gold

from gogooku3.settings import PROJECT_ROOT

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SCRIPTS = PROJECT_ROOT / "scripts"
START, END = dt.date(2023, 8, 1), dt.date(2024, 3, 29)  # 120-day peer window + a snapshot
BUILD_FROM = dt.date(2024, 3, 1)

JOB = PROJECT_ROOT / "spark_jobs" / "build_features.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sim_lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster_lake")
    bench_module().build_sim_lake(str(root / "lake"), stocks=16, start=START, end=END)
    return root


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)


@pytest.fixture
def env(sim_lake):
    e = dict(os.environ)
    e.update({
        "GOGOOKU_LAKE": str(sim_lake / "lake"),
        "SPARK_EVENT_LOG_DIR": str(sim_lake / "events"),
        "SPARK_CLUSTER_DIR": str(sim_lake / "cluster"),
        "SPARK_MASTER_PORT": str(free_port()),
        "SPARK_MASTER_WEBUI_PORT": str(free_port()),
        "SPARK_WORKER_WEBUI_PORT": str(free_port()),
        "SPARK_WORKER_CORES": "2",
        "SPARK_WORKER_MEMORY": "1g",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
    })
    (sim_lake / "events").mkdir(exist_ok=True)
    return e


@pytest.fixture
def cluster(env):
    """Start master + worker; yield the master URL; always stop both."""
    script = str(SCRIPTS / "spark_cluster.sh")
    try:
        started = subprocess.run([script, "start"], env=env, capture_output=True, text=True,
                                 timeout=180)
        assert started.returncode == 0, started.stderr
        url = started.stdout.strip().splitlines()[-1]
        assert url.startswith("spark://127.0.0.1:")
        ui = f"http://127.0.0.1:{env['SPARK_MASTER_WEBUI_PORT']}/json/"
        assert _get_json(ui)["aliveworkers"] == 1
        yield url
    finally:
        subprocess.run([script, "stop"], env=env, capture_output=True, timeout=120)


@pytest.fixture
def history_server(env):
    """The project's history server script on the test's event-log dir; killed in teardown."""
    port = free_port()
    proc = subprocess.Popen(
        [str(SCRIPTS / "history_server.sh")],
        env={**env, "HISTORY_PORT": str(port),
             "SPARK_LOG_DIR": str(Path(env["SPARK_CLUSTER_DIR"]) / "history-logs")},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _submit(env: dict, master: str, lake_root: str) -> None:
    """spark-submit the feature job to ``master`` for BUILD_FROM..END into ``lake_root``."""
    from gogooku3.lake.spark import spark_conf
    from gogooku3.settings import load_settings

    settings = load_settings(spark_event_log_dir=env["SPARK_EVENT_LOG_DIR"],
                             spark_shuffle_partitions=2, spark_driver_memory="1g")
    conf = {**spark_conf(settings), "spark.ui.enabled": "false",
            "spark.executor.memory": "768m", "spark.default.parallelism": "2"}
    cmd = [str(Path(sys.executable).parent / "spark-submit"), "--master", master]
    for k, v in conf.items():
        cmd += ["--conf", f"{k}={v}"]
    cmd += [str(JOB), "--start", BUILD_FROM.isoformat(), "--end", END.isoformat(),
            "--lake", lake_root]
    # get_spark takes the master from settings, so the environment must name it too
    run = subprocess.run(cmd, env={**env, "SPARK_MASTER": master}, capture_output=True,
                         text=True, timeout=600, cwd=PROJECT_ROOT)
    assert run.returncode == 0, run.stderr[-4000:]


def test_standalone_cluster_matches_local_and_history_server_lists_it(
        spark, sim_lake, env, cluster, history_server):
    from spark_jobs import build_features

    remote_lake, local_lake = sim_lake / "remote", sim_lake / "local"
    for root in (remote_lake, local_lake):
        shutil.copytree(sim_lake / "lake" / "silver", root / "silver", dirs_exist_ok=True)
    _submit(env, cluster, str(remote_lake))
    build_features.run(spark, BUILD_FROM, END, lake_root=str(local_lake))
    for table in ("gold.features", "gold.labels", "gold.peer_graph"):
        local, remote = read_gold(str(local_lake), table), read_gold(str(remote_lake), table)
        assert len(local) > 0 and local.shape == remote.shape, table
        assert local["date"].min() >= BUILD_FROM
        pd.testing.assert_frame_equal(local.select_dtypes(exclude="number"),
                                      remote.select_dtypes(exclude="number"))
        num = local.select_dtypes("number").columns
        a, b = local[num].to_numpy(float), remote[num].to_numpy(float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), table
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15, err_msg=table)

    # the history server replays the cluster run's event log
    deadline, apps = time.monotonic() + 120, []
    while time.monotonic() < deadline:
        try:
            apps = _get_json(f"{history_server}/api/v1/applications")
        except OSError:
            apps = []
        cluster_apps = [a for a in apps if a["id"].startswith("app-")]  # standalone app ids
        # a scan may list the run from its in-progress log first: wait for the finished one
        if cluster_apps and cluster_apps[0]["attempts"][0]["completed"]:
            break
        time.sleep(1)
    assert cluster_apps, apps
    assert "build-features" in cluster_apps[0]["name"]
    assert cluster_apps[0]["attempts"][0]["completed"] is True
