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

from gogooku3.lake import catalog, contract
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
    t0 = time.perf_counter()
    spec = _spec(table)
    owned = contract.owned_dates(spec, dates)
    df = conform(df, spec).persist()
    try:
        _check_rows(df, spec, owned)
        path = table_path(spec, lake_root)
        # clustered: each file's rows in key order (its date statistics prune reads and
        # replaces); one file per partition of df, no shuffle of the wide rows
        clustered = owned is not None and not spec.delta_partitions
        out = df.sortWithinPartitions(*spec.primary_key) if clustered else df
        writer = out.write.format("delta").mode("overwrite")
        if owned is not None:
            writer = writer.partitionBy(*spec.delta_partitions).option(
                "replaceWhere", contract.replace_predicate(spec, owned)
            )
        else:
            writer = writer.option("overwriteSchema", "false")
        writer.save(path)
    finally:
        df.unpersist()
    commit = last_commit(df.sparkSession, path)
    span = f"{len(owned)} dates {owned[0]}..{owned[-1]}" if owned else "all dates"
    log.info("%s: wrote %s rows for %s -> version %d in %.1f s", spec.name,
             "?" if commit.rows is None else commit.rows, span, commit.version,
             time.perf_counter() - t0)
    return commit


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
    """DataFrame of ``table`` restricted to ``start <= date <= end`` (partition-pruned).

    Raises ``TableNotFound`` naming the table if it has not been written.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.utils import AnalysisException

    spec = _spec(table)
    path = table_path(spec, lake_root)
    try:
        df = spark.read.format("delta").load(path)
    except AnalysisException as exc:
        raise TableNotFound(f"{spec.name}: no Delta table at {path}") from exc
    if spec.partition_by:
        if start is not None:
            df = df.filter(F.col("date") >= F.lit(start))
        if end is not None:
            df = df.filter(F.col("date") <= F.lit(end))
    elif start is not None or end is not None:
        raise LakeDateError(f"{spec.name}: not partitioned by date; read it whole")
    return df.select(*(columns or spec.column_names))
