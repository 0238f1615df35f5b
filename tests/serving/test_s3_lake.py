"""The lake on S3: one trade day ingested, its features built by Spark (hadoop-aws) and
read back with delta-rs, all on ``s3://`` of an S3-compatible server (moto, in server mode
on a free loopback port); MLflow artifacts on the same store."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest

from gogooku3.settings import PROJECT_ROOT, get_settings

pytestmark = [pytest.mark.spark, pytest.mark.slow]

BUCKET = "gogooku3-lake"
KEY = "s3-test-key"


@pytest.fixture(scope="module")
def s3_env(tmp_path_factory):
    """A moto S3 server with one bucket; env pointing the lake and AWS clients at it."""
    import boto3
    from moto.server import ThreadedMotoServer

    from gogooku3.serving.redis_server import free_port

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{server._port}"
    env = {
        "AWS_ACCESS_KEY_ID": "moto-key", "AWS_SECRET_ACCESS_KEY": "moto-secret",
        "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
        "MLFLOW_S3_ENDPOINT_URL": endpoint, "GOGOOKU_LAKE": f"s3://{BUCKET}/lake",
        "SPARK_EVENT_LOG_DIR": str(tmp_path_factory.mktemp("s3-events")),
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        get_settings.cache_clear()
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
        yield env
    get_settings.cache_clear()
    server.stop()


def _keys(env, prefix: str) -> list[str]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"])
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_one_day_ingest_features_and_read_back_on_s3(s3_env):
    from gogooku3.ingest.driver import ingest_range
    from gogooku3.jquants.client import JQuantsClient
    from gogooku3.lake import deltars
    from gogooku3.market.server import serve_in_thread
    from gogooku3.market.sim import MarketConfig, simulate_market

    market = simulate_market(MarketConfig(stocks=12, start=dt.date(2024, 9, 2),
                                          end=dt.date(2024, 12, 27), seed=3))
    day = market.days[-1]
    with serve_in_thread(market, KEY) as (url, _):
        summary = ingest_range(day, day, client=JQuantsClient(url, KEY, max_concurrent=4))
    assert summary.ok, summary.failed
    silver = deltars.read_table("silver.equities_prices_daily", day, day)
    assert silver.num_rows == len(market.bars_for_date(day)) > 0

    env = {**os.environ, "SPARK_MASTER": "local[2]", "GOGOOKU_SPARK_DRIVER_MEMORY": "1g",
           "GOGOOKU_SPARK_SHUFFLE_PARTITIONS": "2", "PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.run(
        [sys.executable, "-m", "gogooku3.cli", "features", "--start", str(day), "--end", str(day)],
        env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]

    gold = deltars.read_table("gold.features", day, day, columns=["date", "code", "ret_1d_cs_z"])
    assert sorted(gold.column("code").to_pylist()) == sorted(silver.column("code").to_pylist())
    assert set(gold.column("date").to_pylist()) == {day}
    assert any(k.startswith("lake/gold/features/_delta_log/") for k in _keys(s3_env, "lake/gold/"))
    assert not (PROJECT_ROOT / "s3:").exists()


def test_mlflow_artifacts_land_on_the_same_store(s3_env, tmp_path):
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = mlflow.create_experiment("s3-artifacts", artifact_location=f"s3://{BUCKET}/mlflow")
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_text("hello", "notes/readme.txt")
    assert f"mlflow/{run.info.run_id}/artifacts/notes/readme.txt" in _keys(s3_env, "mlflow/")


def test_worker_files_are_written_and_committed_on_s3(s3_env):
    """The wide table's write path of a long build (``worker_files``) on ``s3://``: the
    function a Spark worker runs, then the driver's commit replacing one of two dates."""
    import pandas as pd

    from gogooku3.lake import deltars
    from gogooku3.lake.spec import CLUSTERED, TableSpec
    from gogooku3.lake.worker_files import WorkerFiles

    spec = TableSpec(name="gold.test_s3_panel", primary_key=("date", "code"), storage=CLUSTERED,
                     columns=(("date", "date"), ("code", "string"), ("x", "float")))
    days = [dt.date(2024, 12, 2), dt.date(2024, 12, 3)]

    def write(owned, level):
        sink = WorkerFiles.start(spec)
        rows = pd.DataFrame({"date": [d for d in owned for _ in range(2)],
                             "code": ["13010", "72030"] * len(owned), "x": level})
        files = sink.wrap(lambda left, right: left)(rows, rows.iloc[:0])
        return sink.commit(list(files.itertuples(index=False)), owned)

    write(days, 1.0)
    assert write(days[1:], 2.0).rows == 2
    got = sorted(tuple(r.values()) for r in deltars.read_table(spec).to_pylist())
    assert got == [(days[0], "13010", 1.0), (days[0], "72030", 1.0),
                   (days[1], "13010", 2.0), (days[1], "72030", 2.0)]
    listed = {u.rsplit("/", 1)[-1] for u in deltars.open_table(spec, None).file_uris()}
    stored = {k.rsplit("/", 1)[-1] for k in _keys(s3_env, "lake/gold/test_s3_panel/")
              if k.endswith(".parquet")}
    # the kept day rewritten plus the new file; the first file is removed from the log only
    # (time travel keeps it until a vacuum), and no file of a write is left unlisted
    assert len(listed) == 2 and listed <= stored and len(stored - listed) == 1


def test_handoff_files_are_written_read_and_removed_on_s3(s3_env):
    """The per-code pass's handoff on ``s3://`` under the lake root: a bucket's rows filed
    by period (a rewrite replaces the file), read back by period, removed whole."""
    import numpy as np
    import pyarrow as pa

    from spark_jobs.features.handoff import Handoff

    days = [dt.date(2024, 12, 2), dt.date(2024, 12, 3)]
    handoff = Handoff.start()
    assert handoff.uri.startswith(f"s3://{BUCKET}/lake/_scratch/")
    rows = pa.table({"date": pa.array(days, pa.date32()), "code": ["13010", "13010"],
                     "x": [1.0, 2.0]})
    for _ in range(2):  # a retried task writes the same name again
        handoff.write(3, np.array(days, dtype=object), rows)
    assert handoff.read(days[1]).to_pylist() == [{"date": days[1], "code": "13010", "x": 2.0}]
    scratch = [k for k in _keys(s3_env, "lake/_scratch/") if k.endswith(".arrow")]
    assert len(scratch) == 2
    handoff.remove()
    assert not _keys(s3_env, handoff.uri.split(f"{BUCKET}/", 1)[1])
