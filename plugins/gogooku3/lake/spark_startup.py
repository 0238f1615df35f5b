"""What a Spark start reuses from earlier ones: the resolved jars and the driver's classes.

* **Resolved jars.** The first session that resolves a set of Maven packages through Ivy
  records the jar files Ivy chose (``<ivy dir>/resolved-<key>.txt``); later sessions
  pass those files as ``spark.jars`` and skip Ivy. Resolving at every start cost ~2 s,
  and spark-submit also put each resolved jar on the Python path of the driver and of
  every Python worker, so their imports probed 33 zip archives first (~3 s of a feature
  build's worker start-up on this 2-core machine). A record whose files are gone is
  ignored, and the next session resolves again.
* **Class-data archive (AppCDS).** ``make setup`` runs a typical small workload in a
  driver JVM started with ``-XX:ArchiveClassesAtExit`` and keeps the archive the JVM
  writes at exit; sessions then start their driver JVM with ``-XX:SharedArchiveFile``
  and map those classes instead of loading and verifying them (on this machine a
  session start took 8-11 s instead of 12-15 s, its first query 3 s instead of 5 s).
  The archive holds classes of Spark's own class path (the jars that ``spark.jars``
  adds load elsewhere and are not in it); it is keyed by pyspark's version, the
  ``java`` binary and the packages, and a JVM that finds it does not match warns and
  starts without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path


def _key(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _record(ivy: Path, packages: list[str]) -> Path:
    return ivy / f"resolved-{_key(*packages)}.txt"


def resolved_jars(ivy: Path, packages: list[str]) -> list[str] | None:
    """The jar files recorded for ``packages``, or ``None`` when there is no record or
    one of its files is missing."""
    record = _record(ivy, packages)
    if not record.exists():
        return None
    jars = record.read_text().split()
    return jars if jars and all(Path(j).is_file() for j in jars) else None


def record_jars(spark, ivy: Path, packages: list[str]) -> None:
    """Record the jars that ``spark``'s Ivy resolution of ``packages`` put in ``spark.jars``."""
    listed = spark.sparkContext.getConf().get("spark.jars", "")
    jars = [j.removeprefix("file://").removeprefix("file:") for j in listed.split(",") if j]
    if jars and all(Path(j).is_file() for j in jars):
        record = _record(ivy, packages)
        temp = record.with_name(f"{record.name}.tmp-{os.getpid()}")
        temp.write_text("\n".join(jars) + "\n")
        temp.replace(record)


def forget_jars(ivy: Path, packages: list[str]) -> None:
    """Drop the record of ``packages``: the next session resolves them again."""
    _record(ivy, packages).unlink(missing_ok=True)


def class_archive(cache_dir: Path, packages: list[str]) -> Path:
    """Where the driver JVM's class-data archive for this pyspark, ``java`` and
    ``packages`` lives (it may not exist)."""
    java = os.environ.get("JAVA_HOME") or os.path.realpath(shutil.which("java") or "java")
    key = _key(metadata.version("pyspark"), java, *packages)
    return cache_dir / "spark-cds" / f"driver-{key}.jsa"


@contextlib.contextmanager
def archiving(archive: Path) -> Iterator[str]:
    """Yield the driver JVM options that archive its classes at exit; on leaving, make
    the JVM exit (the session must have been started inside, with those options, in a
    process that starts no other), wait for the archive and move it to ``archive``."""
    from pyspark import SparkContext

    archive.parent.mkdir(parents=True, exist_ok=True)
    temp = archive.with_name(f"{archive.name}.tmp-{os.getpid()}")
    archive.unlink(missing_ok=True)
    try:
        yield f"-XX:ArchiveClassesAtExit={temp} -Xlog:cds=error -Xlog:cds+dynamic=error"
        gateway = SparkContext._gateway
        if SparkContext._active_spark_context is not None:
            SparkContext._active_spark_context.stop()
        if gateway is not None and getattr(gateway, "proc", None) is not None:
            gateway.proc.stdin.close()  # the JVM exits when its stdin closes
            gateway.proc.wait(timeout=300)
        if temp.exists():
            temp.replace(archive)
    finally:
        temp.unlink(missing_ok=True)


def typical_work(spark) -> None:
    """A small Delta write and read, a shuffle, a broadcast join, a grouped pandas UDF
    and an Arrow collect: the classes a build loads, for the archive."""
    from pyspark.sql import functions as F

    with tempfile.TemporaryDirectory(prefix="gogooku3-cds-") as tmp:
        rows = spark.range(20_000).selectExpr("id % 50 AS k", "CAST(id AS DOUBLE) AS v",
                                               "DATE'2025-01-06' AS date")
        rows.write.format("delta").save(f"{tmp}/t")
        back = spark.read.format("delta").load(f"{tmp}/t").cache()
        counts = back.groupBy("k").count()
        back.groupBy("k").applyInPandas(lambda pdf: pdf, back.schema).join(
            F.broadcast(counts), "k").toArrow()
        back.unpersist()
