"""Serving configuration from settings: Redis URLs for Feast, the registry kind, S3 conf."""

from __future__ import annotations

import pytest

from gogooku3.lake.spark import s3_conf, spark_conf, spark_packages
from gogooku3.serving.feast_store import ServingError, redis_connection_string, repo_config
from gogooku3.settings import load_settings


@pytest.mark.parametrize(("url", "expected"), [
    ("redis://127.0.0.1:6379/0", "127.0.0.1:6379,db=0"),
    ("redis://redis/2", "redis:6379,db=2"),
    ("rediss://:p%40ss@cache.example:6380/1", "cache.example:6380,db=1,password=p@ss,ssl=true"),
])
def test_redis_url_becomes_feast_connection_string(url, expected):
    assert redis_connection_string(url) == expected


def test_bad_redis_url_is_named_without_its_password():
    with pytest.raises(ServingError, match="expected redis://") as err:
        redis_connection_string("http://:hunter2@cache:6379/0")
    assert "hunter2" not in str(err.value)


def test_postgres_registry_selects_feasts_sql_registry(tmp_path):
    file_cfg = repo_config(load_settings(feast_data_dir=str(tmp_path)))
    assert file_cfg.registry.registry_type == "file"
    assert file_cfg.registry.path == str(tmp_path / "registry.db")
    url = "postgresql+psycopg://feast:pw@postgres:5432/feast"
    sql_cfg = repo_config(load_settings(feast_registry=url, redis_url="redis://redis:6379/0"))
    assert (sql_cfg.registry.registry_type, sql_cfg.registry.path) == ("sql", url)
    assert sql_cfg.online_store.connection_string == "redis:6379,db=0"


def test_s3_lake_adds_hadoop_aws_and_keeps_credentials_out_of_spark_conf(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-log-me")
    local = load_settings(lake_root="lake")
    assert s3_conf(local) == {} and not any("hadoop-aws" in p for p in spark_packages(local))
    s3 = load_settings(lake_root="s3://bucket/prefix", s3_endpoint_url="http://127.0.0.1:9000")
    conf = spark_conf(s3)
    assert any(p.startswith("org.apache.hadoop:hadoop-aws:") for p in spark_packages(s3))
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:9000"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert not any("do-not-log-me" in v for v in conf.values())


def test_the_driver_lists_lake_files_itself_only_on_local_disk():
    key = "spark.sql.sources.parallelPartitionDiscovery.threshold"
    assert int(spark_conf(load_settings(lake_root="lake"))[key]) >= 10_000
    # on object storage every file stat is a request: Spark's parallel listing stays
    assert key not in spark_conf(load_settings(lake_root="s3://bucket/prefix"))
