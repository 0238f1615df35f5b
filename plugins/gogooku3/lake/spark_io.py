"""Read and write catalogued Delta tables with Spark.

``write_dates`` replaces exactly the trade dates a job owns in one Delta commit
(``replaceWhere``, on the date partitions or, for a clustered table, on the ``date``
values): a re-run is idempotent and a failure mid-write leaves the previous version
readable and complete (Delta commits atomically).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from gogooku3.lake import catalog, contract, deltars
from gogooku3.lake.errors import LakeDateError, LakeDuplicateKeyError, TableNotFound
from gogooku3.lake.spec import TableSpec
from gogooku3.settings import get_settings

log = logging.getLogger(__name__)


def _spec(table: str | TableSpec) -> TableSpec:
    return table if isinstance(table, TableSpec) else catalog.table(table)


def table_path(table: str | TableSpec, lake_root: str | None = None) -> str:
    return _spec(table).path(lake_root or get_settings().lake_uri)


def conform(df, table: str | TableSpec):
    """Check ``df`` against the catalogue schema and return it in catalogue column order."""
    spec = _spec(table)
    contract.check_schema(spec, [(f.name, contract.spark_type_name(f.dataType)) for f in df.schema])
    return df.select(*spec.column_names)


def write_dates(
    df,
    table: str | TableSpec,
    dates: Iterable[dt.date] | None,
    lake_root: str | None = None,
) -> contract.Commit:
    """Replace ``dates`` of ``table`` with ``df`` atomically; return the new commit.

    ``dates`` is the set of trade dates this write owns (``None`` for tables that
    are not date-partitioned, which are replaced whole). Raises before writing
    anything: ``LakeSchemaError`` on schema drift, ``LakeDateError`` for rows
    outside ``dates`` or null keys, ``LakeDuplicateKeyError`` for repeated keys.
    Dates owned but absent from ``df`` are emptied (that is what replacing means).
    """
    return check_write(df, table, dates, lake_root).commit()


def check_write(df, table: str | TableSpec, dates: Iterable[dt.date] | None,
                lake_root: str | None = None) -> CheckedWrite:
    """Run the checks of ``write_dates`` now (same arguments and errors) and return the
    write, stored by its ``commit()``: a job checks all its tables before it writes any.
    ``df`` is cached for the checks and the write."""
    spec = _spec(table)
    owned = contract.owned_dates(spec, dates)
    df = conform(df, spec).persist()
    write = CheckedWrite(df, spec, owned, table_path(spec, lake_root), lake_root)
    try:
        _check_rows(df, spec, owned)
    except BaseException:
        write.discard()
        raise
    return write


@dataclass
class CheckedWrite:
    """A write of ``df`` into ``spec`` whose rows passed ``check_write``; nothing is stored
    until ``commit()``. Writes to different tables may commit from concurrent threads."""

    df: object
    spec: TableSpec
    owned: list[dt.date] | None
    path: str
    lake_root: str | None
    started: float = field(default_factory=time.perf_counter)

    def commit(self) -> contract.Commit:
        """Store the rows in one Delta commit (``write_dates``); return that commit."""
        spec, owned = self.spec, self.owned
        try:
            # clustered: each file's rows in key order (its date statistics prune reads and
            # replaces), at most rows_per_file of them so a file is a short run of dates
            # and a re-run of a date rewrites little; no shuffle of the rows
            clustered = owned is not None and not spec.delta_partitions
            out = self.df.sortWithinPartitions(*spec.primary_key) if clustered else self.df
            writer = out.write.format("delta").mode("overwrite")
            if clustered:
                writer = writer.option("maxRecordsPerFile", spec.rows_per_file)
            if clustered and _holds_only(spec, owned, self.lake_root):
                # every stored date is replaced: a plain overwrite drops the old files from
                # the log, where a data predicate would make Delta read them all to keep none
                writer = writer.option("overwriteSchema", "false")
            elif owned is not None:
                writer = writer.partitionBy(*spec.delta_partitions).option(
                    "replaceWhere", contract.replace_predicate(spec, owned)
                )
            else:
                writer = writer.option("overwriteSchema", "false")
            writer.save(self.path)
        finally:
            self.discard()
        commit = last_commit(self.df.sparkSession, self.path)
        span = f"{len(owned)} dates {owned[0]}..{owned[-1]}" if owned else "all dates"
        log.info("%s: wrote %s rows for %s -> version %d in %.1f s", spec.name,
                 "?" if commit.rows is None else commit.rows, span, commit.version,
                 time.perf_counter() - self.started)
        return commit

    def discard(self) -> None:
        """Release the rows cached for the checks (also after ``commit``)."""
        self.df.unpersist()


def _holds_only(spec: TableSpec, owned: list[dt.date], lake_root: str | None) -> bool:
    """Whether every date stored in ``spec`` is among ``owned`` (an absent table holds none):
    the log's file date ranges answer most writes (a daily run) without reading data."""
    try:
        if deltars.files_within(spec, owned[0], owned[-1], lake_root) is False:
            return False
        return set(deltars.table_dates(spec, lake_root)) <= set(owned)
    except TableNotFound:
        return True


def _check_rows(df, spec: TableSpec, owned: list[dt.date] | None) -> None:
    """Null keys, rows outside ``owned`` and duplicate primary keys of ``df``, in that
    order, from one job (rows per key, then per partition date); raises as ``write_dates``."""
    from pyspark.sql import functions as F

    null = F.lit(False)
    for c in sorted(spec.required):
        null = null | F.col(c).isNull()
    per_key = df.groupBy(*spec.primary_key).agg(
        F.count("*").alias("_n"), F.max(null.cast("int")).alias("_null")
    )
    # the catalogue keeps the partition column inside the primary key
    part = [F.col(c) for c in spec.partition_by] or [F.lit(None).alias("_all")]
    summary = per_key.groupBy(*part).agg(F.max("_n").alias("_n"), F.max("_null").alias("_null"))
    summary = summary.collect()
    if any(r["_null"] for r in summary):
        raise LakeDateError(f"{spec.name}: null in key columns {sorted(spec.required)}")
    if owned is not None:
        contract.check_row_dates(spec, [r[0] for r in summary], owned)
    if any(r["_n"] > 1 for r in summary):
        dupes = per_key.filter("_n > 1").withColumnRenamed("_n", "n").limit(5).collect()
        where = f" on {owned[0]}..{owned[-1]}" if owned else ""
        raise LakeDuplicateKeyError(
            f"{spec.name}: duplicate primary key {spec.primary_key}{where}: "
            + contract.describe_keys(spec, [r.asDict() for r in dupes])
        )


def last_commit(spark, path: str) -> contract.Commit:
    """The latest commit of the Delta table at ``path`` (one read of its history)."""
    from delta.tables import DeltaTable

    row = DeltaTable.forPath(spark, path).history(1).select("version", "operationMetrics").first()
    rows = (row[1] or {}).get("numOutputRows")
    return contract.Commit(int(row[0]), int(rows) if rows is not None else None)


def read_table(
    spark,
    table: str | TableSpec,
    start: dt.date | None = None,
    end: dt.date | None = None,
    columns: Sequence[str] | None = None,
    lake_root: str | None = None,
):
    """DataFrame of ``table`` restricted to ``start <= date <= end`` (partition-pruned):
    the Parquet files the Delta log lists for those dates (``deltars.data_files``).

    Raises ``TableNotFound`` naming the table if it has not been written.
    """
    from pyspark.sql import functions as F

    spec = _spec(table)
    if not spec.partition_by and (start is not None or end is not None):
        raise LakeDateError(f"{spec.name}: not partitioned by date; read it whole")
    path = table_path(spec, lake_root)
    files = deltars.data_files(spec, start, end, lake_root)
    if files is None:  # reader features: let Delta read it
        df = spark.read.format("delta").load(path)
    elif not files:
        df = spark.createDataFrame([], spec.spark_ddl())
    else:
        # the files of the current version, listed from the log by delta-rs: no
        # Spark-side snapshot and file-filtering jobs per table (a one-date feature build
        # opened six silver tables in ~20 s); partition values come from the paths
        df = spark.read.schema(spec.spark_ddl()).option("basePath", path).parquet(*files)
    if start is not None:
        df = df.filter(F.col("date") >= F.lit(start))
    if end is not None:
        df = df.filter(F.col("date") <= F.lit(end))
    return df.select(*(columns or spec.column_names))
