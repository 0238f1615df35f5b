"""A standalone Spark cluster (master + 1 worker, started here with scripts/spark_cluster.sh)
computes the same features as local[*] through spark-submit, and the history server's REST
API lists the cluster application afterwards.

Everything runs in subprocesses on free ports under the test's own directory; the cluster
and the history server are stopped in teardown even when the test fails.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
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

from gogooku3.settings import PROJECT_ROOT

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SCRIPTS = PROJECT_ROOT / "scripts"
START, END = dt.date(2023, 9, 1), dt.date(2024, 3, 29)
BUILD_FROM = dt.date(2024, 3, 1)

# Until spark_jobs/build_features.py runs, this job stands in for it: read silver, add a
# representative part of the context groups — windows by code (market), the as-of union
# (statements) and the pandas UDFs (peer graph and peer features, run by the cluster's own
# Python workers) — and write Parquet. Same session factory, conf and transforms as the job.
_CONTEXT_JOB = '''
import sys
from gogooku3.lake import spark_io
from gogooku3.lake.spark import get_spark
from spark_jobs.features import fundamentals, market, peers


def build(spark, lake_root, since):
    def read(name):
        return spark_io.read_table(spark, name, lake_root=lake_root)

    df = read("silver.equities_prices_daily")
    out = market.add_market_features(df, read("silver.indices_topix_daily"))
    out = fundamentals.add_statement_features(out, read("silver.fins_statements"))
    out = peers.add_peer_features(out, peers.build_peer_graph(df, k=5, window=40, cadence=10))
    return out.filter(out.date >= since)


if __name__ == "__main__":
    out_dir, app, lake_root, since = sys.argv[1:5]
    spark = get_spark(app)
    build(spark, lake_root, since).write.mode("overwrite").parquet(out_dir)
    spark.stop()
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_features", PROJECT_ROOT / "benchmarks" / "features.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def sim_lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster_lake")
    _bench_module().build_sim_lake(str(root / "lake"), stocks=25, start=START, end=END)
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


def _submit(env: dict, master: str, out: Path, app: str, job: Path) -> None:
    from gogooku3.lake.spark import spark_conf
    from gogooku3.settings import load_settings

    settings = load_settings(spark_event_log_dir=env["SPARK_EVENT_LOG_DIR"],
                             spark_shuffle_partitions=2, spark_driver_memory="1g")
    conf = {**spark_conf(settings), "spark.ui.enabled": "false",
            "spark.executor.memory": "768m", "spark.default.parallelism": "2"}
    cmd = [str(Path(sys.executable).parent / "spark-submit"), "--master", master,
           "--name", app]
    for k, v in conf.items():
        cmd += ["--conf", f"{k}={v}"]
    cmd += [str(job), str(out), app, env["GOGOOKU_LAKE"], BUILD_FROM.isoformat()]
    # get_spark takes the master from settings, so the environment must name it too
    run = subprocess.run(cmd, env={**env, "SPARK_MASTER": master}, capture_output=True,
                         text=True, timeout=400, cwd=PROJECT_ROOT)
    assert run.returncode == 0, run.stderr[-4000:]


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["date", "code"]).reset_index(drop=True)


def _in_process(spark, job: Path, lake_root: str) -> pd.DataFrame:
    """The same job's transforms on the test session (local[2]), without a second JVM."""
    spec = importlib.util.spec_from_file_location("context_job", job)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.build(spark, lake_root, BUILD_FROM.isoformat()).toPandas()


def test_standalone_cluster_matches_local_and_history_server_lists_it(
        spark, tmp_path, env, cluster, history_server):
    job = tmp_path / "context_job.py"
    job.write_text(_CONTEXT_JOB)
    _submit(env, cluster, tmp_path / "cluster", "gogooku3-features-cluster", job)
    remote = _sorted(pd.read_parquet(tmp_path / "cluster"))
    local = _sorted(_in_process(spark, job, env["GOGOOKU_LAKE"]))[list(remote.columns)]
    assert len(local) > 0 and local.shape == remote.shape
    assert local["date"].min() >= BUILD_FROM
    pd.testing.assert_frame_equal(local[["date", "code"]], remote[["date", "code"]])
    num = local.select_dtypes("number").columns
    a, b = local[num].to_numpy(float), remote[num].to_numpy(float)
    assert np.array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)

    # the history server replays the cluster run's event log
    deadline, apps = time.monotonic() + 120, []
    while time.monotonic() < deadline:
        try:
            apps = _get_json(f"{history_server}/api/v1/applications")
        except OSError:
            apps = []
        names = {a["name"]: a["id"] for a in apps}
        if "gogooku3-features-cluster" in names:
            break
        time.sleep(1)
    names = {a["name"]: a["id"] for a in apps}
    assert "gogooku3-features-cluster" in names, apps
    assert names["gogooku3-features-cluster"].startswith("app-")  # a standalone-master app id
