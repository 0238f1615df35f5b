"""Session fixtures for tests/airflow: one Airflow home, one simulated server, one history.

See ``af_helpers`` for the market, the dates and the ``AirflowEnv`` runner.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from af_helpers import (
    BAD_DAY,
    HISTORY_END,
    KEY,
    MARKET_END,
    MARKET_START,
    ROOT,
    STOCKS,
    AirflowEnv,
    airflow_environment,
    free_port,
)


@pytest.fixture(scope="session")
def market():
    from gogooku3.market.sim import MarketConfig, simulate_market

    return simulate_market(MarketConfig(stocks=STOCKS, start=MARKET_START, end=MARKET_END,
                                        seed=11))


@pytest.fixture(scope="session")
def jquants_url(market):
    """The simulated J-Quants v2 server, serving ``negative_price`` bars on BAD_DAY."""
    from gogooku3.market.server import BadRows, serve_in_thread

    with serve_in_thread(market, KEY, bad_rows=BadRows({BAD_DAY: "negative_price"})) as (url, _):
        yield url


@pytest.fixture(scope="session")
def airflow_env(isolated_lake, jquants_url, redis_url, tmp_path_factory) -> AirflowEnv:
    home = tmp_path_factory.mktemp("airflow_home")
    port = free_port()
    env = airflow_environment({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_PORT": str(port),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        # only the runs a test asks for (no run for the latest cron tick on unpause)
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW_CONN_JQUANTS_DEFAULT": json.dumps(
            {"conn_type": "http", "host": jquants_url, "password": KEY}),
        "GOGOOKU_LAKE": os.environ["GOGOOKU_LAKE"],
        "SPARK_EVENT_LOG_DIR": os.environ["SPARK_EVENT_LOG_DIR"],
        "MLFLOW_TRACKING_URI": f"sqlite:///{home}/mlflow.db",
        # daily_inference's Feast and ClickHouse steps: a database of its own on the
        # session's Redis (tests/serving count the keys of database 0), stores under home
        "REDIS_URL": redis_url.rsplit("/", 1)[0] + "/1",
        "GOGOOKU_FEAST_DATA_DIR": str(home / "feast_data"),
        "CLICKHOUSE_URL": f"chdb://{home / 'clickhouse'}",
        "GOGOOKU_SPARK_SHUFFLE_PARTITIONS": "2",
        "GOGOOKU_SPARK_DRIVER_MEMORY": "2g",
        "PYTHONUNBUFFERED": "1",
        # a failed API call's response names its database error (CI logs keep only that)
        "AIRFLOW__API__EXPOSE_STACKTRACE": "True",
    })
    af = AirflowEnv(env, home)
    af.run("db", "migrate")
    subprocess.run(["bash", "scripts/airflow_pools.sh"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    return af


@pytest.fixture(scope="session")
def history(airflow_env) -> subprocess.CompletedProcess:
    """2025-09-01..2026-11-16 ingested by one DAG run now, the range in its conf (the
    history-load path ``make demo`` takes)."""
    return airflow_env.dags_test(
        "jquants_daily_ingest", None,
        conf={"start": MARKET_START.isoformat(), "end": HISTORY_END.isoformat()})
