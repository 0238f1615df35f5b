"""The build's cross-sectional pass: peer features and normalization, one group per
snapshot period.

After the per-code pass (``series``) every row carries its per-code features, and the
per-date context (sector statistics, flows) has been broadcast onto it. What is left
needs a date's whole cross-section: the peer statistics (each code's peers' returns on
the same date, from the snapshot serving that date) and the normalization
(``normalize.cross_section``). Both run here in one grouped pass: the rows are grouped
by the peer-graph snapshot that serves their date (about ``cadence`` dates per group),
cogrouped with that snapshot's edges, so the wide rows are shuffled once and the graph
needs no per-date explosion. Inside a group each date is normalized on its own, with
its rows sorted by code: a date's values do not depend on which other dates share the
group, so a daily run equals a full rebuild bit for bit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import FloatType, StructField, StructType

from gogooku3.lake.worker_files import FILE_SCHEMA, WorkerFiles
from spark_jobs.features import peers
from spark_jobs.features.local import local_frame
from spark_jobs.features.normalize import cross_section, normalized_names

#: the group key of dates no snapshot serves (their peer features are null)
UNSERVED = dt.date(1900, 1, 1)
#: per-code columns the pass reads besides the raw features
RETURNS = ["_r1", "_r5"]


def period_frame(rows: pd.DataFrame, edges: pd.DataFrame, features: Sequence[str]) -> pd.DataFrame:
    """One snapshot period: ``rows`` (``date``, ``code``, the raw features but the peer
    group, ``RETURNS``) and the snapshot's ``edges`` (``gold.peer_graph`` columns) →
    ``date, code, normalized_names(features)`` (float32), dates in order."""
    rows = rows.assign(**peers.peer_stats(rows, edges))
    days = [cross_section(day, features) for _, day in rows.groupby("date", sort=True)]
    if not days:
        return pd.DataFrame({c: [] for c in ("date", "code", *normalized_names(features))})
    return pd.concat(days, ignore_index=True)


def cross_sectional_pass(rows: DataFrame, graph: DataFrame, snapshots: Sequence[dt.date],
                         dates: Sequence[dt.date], features: Sequence[str],
                         sink: WorkerFiles | None = None) -> DataFrame:
    """One row out per row in: ``rows`` (``date``, ``code``, every raw feature of
    ``features`` but ``peers.FEATURES``, ``RETURNS``; dated among ``dates``) → ``date, code,
    normalized_names(features)`` as float32, with the peer features from ``graph``
    (``gold.peer_graph`` rows of ``snapshots``): each date uses the latest snapshot on or
    before it (``peers.serving_snapshots``), null where there is none.

    With a ``sink`` the workers write those rows as the sink's files (a group's rows
    are in key order: dates in order, each sorted by code) and the frame holds one row
    per file (``worker_files.FILE_SCHEMA``) for ``sink.commit``."""
    features = list(features)
    spark = rows.sparkSession
    serve = peers.serving_snapshots(dates, snapshots)
    key = local_frame(spark, [(d, serve.get(d, UNSERVED)) for d in dates], ("date", "_snap"))
    left = rows.join(F.broadcast(key), on="date", how="inner")
    edges = graph.select(F.col("date").alias("_snap"), "code", "peer_code", "rank", "corr")
    schema = StructType([rows.schema["date"], rows.schema["code"],
                         *[StructField(c, FloatType()) for c in normalized_names(features)]])

    def per_period(pdf: pd.DataFrame, pedges: pd.DataFrame) -> pd.DataFrame:
        out = period_frame(pdf.drop(columns="_snap"), pedges.drop(columns="_snap"), features)
        if len(out) != len(pdf):  # the build checks the keys of this pass's input
            raise RuntimeError(f"cross-sectional pass: {len(pdf)} rows in, {len(out)} out")
        return out

    grouped = left.groupBy("_snap").cogroup(edges.groupBy("_snap"))
    if sink is None:
        return grouped.applyInPandas(per_period, schema)
    return grouped.applyInPandas(sink.wrap(per_period), FILE_SCHEMA)
