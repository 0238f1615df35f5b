"""spark_features_daily through ``airflow dags test``: spark-submit writes gold for a trade
date, and the Spark history server's REST API lists the application."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest
from af_helpers import ROOT, free_port, wait_until

from gogooku3.lake import deltars
from gogooku3.lake.errors import TableNotFound

DAY = dt.date(2026, 11, 20)
JOB = ROOT / "spark_jobs" / "build_features.py"


def _apps(url: str) -> list[dict]:
    try:
        with urllib.request.urlopen(f"{url}/api/v1/applications", timeout=5) as r:
            return json.loads(r.read())
    except OSError:
        return []


@pytest.fixture(scope="module")
def features_run(airflow_env, history):
    if not JOB.exists():
        pytest.fail(f"{JOB.relative_to(ROOT)} is missing: spark_features_daily submits it")
    # the day itself must be in silver: ingest it through its DAG unless a test already did
    try:
        have = deltars.read_table("silver.equities_prices_daily", DAY, DAY, columns=["code"],
                                  lake_root=airflow_env.lake).num_rows
    except TableNotFound:
        have = 0
    if not have:
        airflow_env.dags_test("jquants_daily_ingest", DAY.isoformat())
    events = Path(airflow_env.env["SPARK_EVENT_LOG_DIR"])
    before = set(os.listdir(events)) if events.exists() else set()
    # spark-submit is found by its path, not on PATH: run without the virtualenv on it
    venv_bin = os.path.realpath(ROOT / ".venv" / "bin")
    path = os.pathsep.join(p for p in airflow_env.env["PATH"].split(os.pathsep)
                           if os.path.realpath(p) != venv_bin)
    proc = airflow_env.dags_test("spark_features_daily", DAY.isoformat(), check=False,
                                 env={**airflow_env.env, "PATH": path})
    new = sorted(set(os.listdir(events)) - before)
    return proc, new


def test_features_dag_writes_that_days_gold_rows_through_spark_submit(airflow_env, features_run):
    proc, new_logs = features_run
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "state=success" in out, out[-8000:]
    assert "spark-submit" in out and "build_features.py" in out
    assert "--start 2026-11-20 --end 2026-11-20" in out
    assert new_logs, "spark-submit wrote no event log"
    lake = airflow_env.lake
    silver_codes = set(deltars.read_table("silver.equities_prices_daily", DAY, DAY,
                                          columns=["code"], lake_root=lake).column("code")
                       .to_pylist())
    for table in ("gold.features", "gold.labels"):
        got = deltars.read_table(table, DAY, DAY, columns=["date", "code"], lake_root=lake)
        assert got.num_rows > 0, table
        assert set(got.column("date").to_pylist()) == {DAY}, table
        assert set(got.column("code").to_pylist()) <= silver_codes, table
    assert "gold check" in out and "passed" in out


def test_history_server_rest_api_lists_the_feature_application(airflow_env, features_run,
                                                                tmp_path):
    _, new_logs = features_run
    # Spark 4 rolls event logs by default: one directory eventlog_v2_<app id> per application
    app_ids = {n.removeprefix("eventlog_v2_").split(".")[0] for n in new_logs}
    port = free_port()
    env = {**airflow_env.env, "HISTORY_PORT": str(port)}
    log = open(tmp_path / "history.log", "w")
    proc = subprocess.Popen(["bash", "scripts/history_server.sh"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        apps = wait_until(lambda: [a for a in _apps(url) if a["id"] in app_ids], 90,
                          "the history server to list the feature job")
        assert apps[0]["attempts"][0]["completed"] is True
        assert "feature" in apps[0]["name"].lower()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
