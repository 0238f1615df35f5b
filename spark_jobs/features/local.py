"""Small driver-side tables as Spark frames without a Python worker.

``spark.createDataFrame(list)`` ships the rows through a Python RDD, so every call starts
Python workers (seconds each on a busy 2-core machine) for a few hundred rows. Here the
rows become one SQL inline table (``VALUES``), parsed in the JVM into a local relation:
one call to the JVM, where a column expression per value cost a round trip each (10 s
for 500 rows on this machine).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession


def sql_literal(value: object) -> str:
    """``value`` as a Spark SQL literal: ``datetime.date`` → ``DATE'…'``, ``int`` → INT (BIGINT
    when it does not fit), ``float`` → DOUBLE, ``str`` → a quoted string, ``None`` → NULL."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        raise TypeError(f"local_frame: timestamps are not supported ({value!r})")
    if isinstance(value, dt.date):
        return f"DATE'{value.isoformat()}'"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"CAST('{value!r}' AS DOUBLE)"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise TypeError(f"local_frame: no SQL literal for {type(value).__name__} {value!r}")


def local_frame(spark: SparkSession, rows: Sequence[tuple], columns: Sequence[str]) -> DataFrame:
    """A DataFrame of ``rows`` (tuples of Python values) with ``columns``; types are those
    of the literals (``sql_literal``). ``rows`` must not be empty."""
    if not rows:
        raise ValueError("local_frame: no rows")
    values = ", ".join("(" + ", ".join(sql_literal(v) for v in r) + ")" for r in rows)
    names = ", ".join(f"`{c}`" for c in columns)
    return spark.sql(f"SELECT * FROM VALUES {values} AS t({names})")
