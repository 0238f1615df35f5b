"""Small driver-side tables as Spark frames without a Python worker.

``spark.createDataFrame(list)`` ships the rows through a Python RDD, so every call starts
Python workers (seconds each on a busy 2-core machine) for a few hundred rows. Here the
rows become literals of the plan instead: one ``inline`` of an array of structs.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F


def local_frame(spark: SparkSession, rows: Sequence[tuple], columns: Sequence[str]) -> DataFrame:
    """A DataFrame of ``rows`` (tuples of Python values) with ``columns``; types are those
    of the literals (``datetime.date`` → date, ``int`` → int/bigint). ``rows`` must not be
    empty."""
    structs = [F.struct(*[F.lit(v).alias(c) for v, c in zip(r, columns, strict=True)]) for r in rows]
    return spark.range(1).select(F.inline(F.array(*structs)))
