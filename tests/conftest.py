"""Shared fixtures: an isolated lake per test session and one Spark session per run.

The lake, event logs and calendar cache live under pytest's temporary directory so
tests never touch ./lake. Delta jars come from the project's Ivy cache
(``.cache/ivy``), resolved once by ``make setup`` and reused offline.
"""

from __future__ import annotations

import pytest

from gogooku3.settings import get_settings


@pytest.fixture(scope="session", autouse=True)
def isolated_lake(tmp_path_factory):
    """Point GOGOOKU_LAKE and the Spark event log at a per-session temporary directory."""
    root = tmp_path_factory.mktemp("gogooku3")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GOGOOKU_LAKE", str(root / "lake"))
        patch.setenv("SPARK_EVENT_LOG_DIR", str(root / "spark-events"))
        get_settings.cache_clear()
        yield root
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def spark(isolated_lake):
    """The one SparkSession of the test run: local[2], 2 shuffle partitions, no UI."""
    from gogooku3.lake.spark import get_spark
    from gogooku3.settings import load_settings

    settings = load_settings(spark_master="local[2]", spark_shuffle_partitions=2)
    session = get_spark(
        "gogooku3-tests",
        settings=settings,
        **{
            "spark.ui.enabled": "false",
            "spark.default.parallelism": "2",
            "spark.sql.adaptive.coalescePartitions.enabled": "true",
            "spark.databricks.delta.snapshotPartitions": "2",
        },
    )
    yield session
    session.stop()


@pytest.fixture
def lake_root(isolated_lake, request):
    """A fresh lake root for one test (tables written here start empty)."""
    path = isolated_lake / "lakes" / request.node.name
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A redis-server of this test session on a free loopback port, stopped at the end."""
    from gogooku3.serving.redis_server import RedisServer, free_port

    server = RedisServer(free_port(), tmp_path_factory.mktemp("redis")).start()
    yield server.url
    server.stop()
