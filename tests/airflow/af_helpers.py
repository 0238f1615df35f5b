"""Helpers for the Airflow tests (imported by conftest and the test modules).

Real Airflow for the DAG tests: one AIRFLOW_HOME (SQLite) and one simulated J-Quants
server per test session, shared by every test under tests/airflow.

The Airflow environment is exactly what ``make airflow`` uses (``scripts/airflow_env.sh``
sourced with this session's AIRFLOW_HOME, port and lake), connections come from
``AIRFLOW_CONN_*``. The simulated market is small (40 stocks, 2025-09-01..2026-12-04)
with one planted bad day, ``BAD_DAY``; ``history`` loads 2025-09-01..2026-11-16 through
the DAG in one run (``params.start``/``end``) so the feature build has its look-back.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(ROOT / ".venv" / "bin" / "airflow")
KEY = "airflow-test-key"
MARKET_START, MARKET_END = dt.date(2025, 9, 1), dt.date(2026, 12, 4)
HISTORY_END = dt.date(2026, 11, 16)
BAD_DAY = dt.date(2026, 11, 24)
STOCKS = 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AirflowEnv:
    """Runs ``airflow`` commands in this session's environment."""

    def __init__(self, env: dict[str, str], home: Path):
        self.env = env
        self.home = home

    @property
    def lake(self) -> str:
        return self.env["GOGOOKU_LAKE"]

    def run(self, *args: str, timeout: float = 300, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([AIRFLOW, *args], env=env or self.env, cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"airflow {' '.join(args)} exited {proc.returncode}:\n"
                                 f"{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}")
        return proc

    def dags_test(self, dag_id: str, day: str | None, conf: dict | None = None,
                  check: bool = True, env: dict[str, str] | None = None
                  ) -> subprocess.CompletedProcess:
        """``airflow dags test`` of ``day`` (``None``: a run now, as ``make demo`` runs)."""
        args = ["dags", "test", dag_id, *([day] if day else [])]
        if conf:
            args += ["--conf", json.dumps(conf)]
        return self.run(*args, check=check, timeout=600, env=env)

    def runs(self, dag_id: str) -> list[dict]:
        out = self.run("dags", "list-runs", dag_id, "-o", "json").stdout
        for line in reversed(out.splitlines()):
            if line.startswith("[{") or line.strip() == "[]":
                return json.loads(line)
        raise AssertionError(f"no JSON in `airflow dags list-runs`:\n{out[-2000:]}")


def airflow_environment(overrides: dict[str, str]) -> dict[str, str]:
    """``os.environ`` + ``overrides`` after sourcing scripts/airflow_env.sh (as make does)."""
    env = {**os.environ, **overrides}
    dump = subprocess.run(
        ["bash", "-c", ". scripts/airflow_env.sh && "
         "python -c 'import json, os; print(json.dumps(dict(os.environ)))'"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads(dump.stdout.strip().splitlines()[-1])


def wait_until(predicate, timeout: float, what: str, interval: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class AirflowAPI:
    """The running API server's REST API (``/api/v2``) with a SimpleAuthManager token."""

    def __init__(self, url: str, username: str, password: str):
        self.url = url
        body = json.dumps({"username": username, "password": password}).encode()
        req = urllib.request.Request(f"{url}/auth/token", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            self.token = json.loads(r.read())["access_token"]

    def get(self, path: str) -> dict:
        return self._call("GET", path)

    def patch(self, path: str, body: dict) -> dict:
        return self._call("PATCH", path, body)

    def post(self, path: str, body: dict) -> dict:
        return self._call("POST", path, body)

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/api/v2{path}", data=data, method=method,
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def runs(self, dag_id: str) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns?limit=100")["dag_runs"]
