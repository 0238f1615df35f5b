"""Spark session factory with Delta Lake and event logging configured.

Delta's jars are resolved from Maven Central through Ivy (``spark.jars.packages``)
into ``<cache_dir>/ivy`` with the project's own ``configs/ivysettings.xml``, which
skips ``~/.m2`` (a ``.pom`` there without its ``.jar`` makes Ivy fail and cache the
failure). Later sessions pass the jars Ivy chose as ``spark.jars`` and start the driver
JVM from a class-data archive when ``make setup`` wrote one (``spark_startup``).

A lake root on object storage (``s3://bucket/prefix``) adds hadoop-aws (the version of
the Hadoop client jars pyspark ships) to the same resolution and routes ``s3://`` and
``s3a://`` through S3A. Credentials never enter the Spark conf: S3A reads
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` from the environment itself; only the
endpoint and region (``AWS_ENDPOINT_URL``, ``AWS_REGION``) are set here.

Every session writes an event log to ``spark_event_log_dir`` so ``make
history-server`` shows every job.
"""

from __future__ import annotations

import logging
import os
from importlib import metadata
from pathlib import Path

from gogooku3.lake import spark_startup
from gogooku3.settings import PROJECT_ROOT, Settings, get_settings

log = logging.getLogger(__name__)

SCALA_VERSION = "2.13"
IVY_SETTINGS = PROJECT_ROOT / "configs" / "ivysettings.xml"


def delta_package() -> str:
    """Maven coordinate of the Delta jar matching the installed delta-spark and pyspark.

    delta-spark 4.x publishes one artifact per Spark minor version
    (``io.delta:delta-spark_4.2_2.13:4.4.0``).
    """
    delta_version = metadata.version("delta-spark")
    spark_minor = ".".join(metadata.version("pyspark").split(".")[:2])
    return f"io.delta:delta-spark_{spark_minor}_{SCALA_VERSION}:{delta_version}"


def hadoop_aws_package() -> str:
    """Maven coordinate of hadoop-aws matching pyspark's bundled ``hadoop-client-api`` jar."""
    import pyspark

    jars = sorted((Path(pyspark.__file__).parent / "jars").glob("hadoop-client-api-*.jar"))
    if not jars:
        raise RuntimeError("pyspark ships no hadoop-client-api jar: cannot pick hadoop-aws")
    version = jars[-1].name.removeprefix("hadoop-client-api-").removesuffix(".jar")
    return f"org.apache.hadoop:hadoop-aws:{version}"


def s3_conf(settings: Settings) -> dict[str, str]:
    """S3A settings for a lake on object storage; empty for a local lake."""
    if not settings.lake_on_s3:
        return {}
    conf = {
        "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.endpoint.region": settings.s3_region,
    }
    endpoint = settings.s3_endpoint_url
    if endpoint:  # an S3-compatible server (MinIO, moto): path-style bucket addressing
        conf["spark.hadoop.fs.s3a.endpoint"] = endpoint
        conf["spark.hadoop.fs.s3a.path.style.access"] = "true"
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(endpoint.startswith("https")).lower()
    return conf


def ivy_dir(settings: Settings) -> Path:
    return settings.resolved_path("cache_dir") / "ivy"


def spark_packages(settings: Settings) -> list[str]:
    """Maven coordinates a session needs: Delta, plus hadoop-aws for a lake on S3."""
    return [delta_package(), *([hadoop_aws_package()] if settings.lake_on_s3 else [])]


def spark_conf(settings: Settings) -> dict[str, str]:
    """Spark configuration shared by in-process sessions and ``spark-submit``.

    The same dict feeds ``SparkSession.builder`` and SparkSubmitOperator's ``conf``
    so a DAG task and a test run the job with identical Delta and logging setup.
    """
    event_dir = settings.resolved_path("spark_event_log_dir")
    event_dir.mkdir(parents=True, exist_ok=True)
    ivy = ivy_dir(settings)
    ivy.mkdir(parents=True, exist_ok=True)
    conf_s3 = s3_conf(settings)
    packages = spark_packages(settings)
    jars = spark_startup.resolved_jars(ivy, packages)
    artifacts = {"spark.jars": ",".join(jars)} if jars else {
        "spark.jars.packages": ",".join(packages),
        "spark.jars.ivy": str(ivy),
        "spark.jars.ivySettings": str(IVY_SETTINGS),
    }
    archive = spark_startup.class_archive(settings.resolved_path("cache_dir"), packages)
    if archive.exists():
        artifacts["spark.driver.extraJavaOptions"] = f"-XX:SharedArchiveFile={archive}"
    # lake reads pass the files the Delta log lists (``spark_io.read_table``): on local
    # disk the driver stats them itself instead of a listing job of one task per file;
    # on object storage each stat is a request, so Spark's parallel listing stays
    listing = {} if conf_s3 else {"spark.sql.sources.parallelPartitionDiscovery.threshold": "100000"}
    return {
        **conf_s3,
        **listing,
        **artifacts,
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": event_dir.as_uri(),
        "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
        # Delta replays a table's log with 50 tasks by default; the lake's logs hold one
        # file per trade date, and on a small machine those 50 tasks per table read took
        # 40 % of a daily feature build's executor time.
        "spark.databricks.delta.snapshotPartitions": str(settings.spark_shuffle_partitions),
        # AQE merged the feature build's code-hashed shuffle partitions into 2-3 uneven
        # ones (e.g. 500k/377k/127k rows), so one core idled while the other finished the
        # big one; the configured partitions are already few and balanced.
        "spark.sql.adaptive.coalescePartitions.enabled": "false",
        # Parquet's dictionary encoding hashes every value of every column and then, for
        # doubles that rarely repeat, throws the dictionary away. Spark writes the gold
        # panels, whose files hold one trade date (each code once) and hundreds of double
        # columns: writing 4,000 rows x 318 doubles per file took 2-4x as long with it
        # (benchmarks/results/spark_floor.md). Readers see no difference.
        "spark.hadoop.parquet.enable.dictionary": "false",
        # the feature build shuffles and caches wide rows of doubles, which lz4 barely
        # shrinks: compressing them cost more CPU than the bytes saved on local disk (one
        # A/B at 4,000 x 2 y, with the bigger Arrow batches below: 126.4 -> 119.8 s)
        "spark.shuffle.compress": "false",
        "spark.shuffle.spill.compress": "false",
        "spark.sql.inMemoryColumnarStorage.compressed": "false",
        # rows per Arrow batch to and from pandas UDFs (default 10,000): fewer, larger
        # batches for the grouped passes' groups of 100,000+ rows
        "spark.sql.execution.arrow.maxRecordsPerBatch": "100000",
        # the Python workers' numpy kernels allocate and free temporaries of a few MB by the
        # hundred per task; glibc handed each back to the OS and faulted it in again on
        # first touch: 40 % of the normalization's time (55 -> 32 ms per 4,000 x 106
        # date). Blocks under 64 MB come from the heap, which keeps up to 256 MB free.
        "spark.executorEnv.MALLOC_MMAP_THRESHOLD_": str(64 << 20),
        "spark.executorEnv.MALLOC_TRIM_THRESHOLD_": str(256 << 20),
        "spark.driver.memory": settings.spark_driver_memory,
        # Trade dates are DATE columns; keep timestamp semantics independent of the host.
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
    }


def get_spark(app_name: str = "gogooku3", settings: Settings | None = None, **extra: str):
    """Get or create the process's SparkSession (master from settings, Delta enabled).

    ``extra`` entries override the shared conf (e.g. ``{"spark.ui.enabled": "false"}``).
    """
    from pyspark.sql import SparkSession

    settings = settings or get_settings()
    os.environ.setdefault("PYSPARK_PYTHON", os.sys.executable)
    builder = SparkSession.builder.master(settings.spark_master).appName(app_name)
    for key, value in {**spark_conf(settings), **extra}.items():
        builder = builder.config(key, value)
    log.info("starting Spark %s (master=%s)", app_name, settings.spark_master)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    packages = spark_packages(settings)
    if spark_startup.resolved_jars(ivy_dir(settings), packages) is None:
        spark_startup.record_jars(spark, ivy_dir(settings), packages)
    return spark


def resolve_jars(settings: Settings | None = None) -> Path:
    """Resolve Delta's jars into the Ivy cache, record them and archive the driver JVM's
    classes (``spark_startup``; ``make setup``); return the jar dir. Run it in a process
    of its own: the archive is written when the JVM exits."""
    settings = settings or get_settings()
    packages, ivy = spark_packages(settings), ivy_dir(settings)
    spark_startup.forget_jars(ivy, packages)
    archive = spark_startup.class_archive(settings.resolved_path("cache_dir"), packages)
    with spark_startup.archiving(archive) as java_options:
        spark = get_spark("gogooku3-resolve-jars", settings, **{
            "spark.ui.enabled": "false", "spark.driver.extraJavaOptions": java_options})
        spark_startup.typical_work(spark)
    log.info("Delta jars cached in %s; driver classes archived in %s", ivy / "jars", archive)
    return ivy / "jars"


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Spark/Delta set-up helpers")
    parser.add_argument("--resolve-jars", action="store_true", help="fill the Ivy cache")
    if parser.parse_args().resolve_jars:
        logging.basicConfig(level=logging.INFO)
        print(resolve_jars())
