"""The build's cross-sectional pass: peer features and normalization, one group per
snapshot period.

The per-code pass (``series``) has written every row's per-code features to the
``handoff``, filed by period, and returned its keys and trailing returns, onto which the
per-date context (sector statistics, flows) has been broadcast. What is left needs a
date's whole cross-section: the peer statistics (each code's peers' returns on the same
date, from the snapshot serving that date) and the normalization
(``normalize.by_date``). Both run here in one grouped pass: the narrow rows are
grouped by the peer-graph snapshot that serves their date (their period, about
``cadence`` dates), and each group reads its period's per-code features and that
snapshot's edges (filed by the driver) from the handoff — no wide row is shuffled, and
the graph needs no per-date explosion. Inside a group each date is normalized on its own, with
its rows sorted by code: a date's values do not depend on which other dates share the
group, so a daily run equals a full rebuild bit for bit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import FloatType, StructField, StructType

from gogooku3.lake.worker_files import FILE_SCHEMA, WorkerFiles
from spark_jobs.features import normalize, peers
from spark_jobs.features.handoff import Handoff
from spark_jobs.features.local import local_frame
from spark_jobs.features.normalize import normalized_names

#: the group key of dates no snapshot serves (their peer features are null)
UNSERVED = dt.date(1900, 1, 1)
#: per-code columns the pass reads besides the raw features
RETURNS = ["_r1", "_r5"]
NO_EDGES = pd.DataFrame({c: [] for c in peers.GRAPH_SCHEMA.names})


def periods(dates: Sequence[dt.date], snapshots: Sequence[dt.date]) -> dict[dt.date, dt.date]:
    """Each of ``dates`` → its period: the snapshot serving it (``UNSERVED`` if none)."""
    serve = peers.serving_snapshots(dates, snapshots)
    return {d: serve.get(d, UNSERVED) for d in dates}


def with_per_code(rows: pd.DataFrame, per_code: pa.Table | None, period: dt.date) -> pd.DataFrame:
    """``rows`` of one period beside the per-code features of the same keys (``per_code``:
    the period's handoff files), sorted by ``(date, code)``; raises when the keys differ."""
    have = 0 if per_code is None else per_code.num_rows
    if have != len(rows):
        raise RuntimeError(f"cross-sectional pass: period {period}: {len(rows)} rows but"
                           f" {have} per-code rows in the handoff")
    rows = rows.sort_values(["date", "code"], kind="stable").reset_index(drop=True)
    if not have:
        return rows
    wide = per_code.sort_by([("date", "ascending"), ("code", "ascending")]).to_pandas()
    for key in ("date", "code"):
        if not np.array_equal(rows[key].to_numpy(), wide[key].to_numpy()):
            raise RuntimeError(f"cross-sectional pass: period {period}: the handoff's keys"
                               f" differ from the rows' ({key})")
    return pd.concat([rows, wide.drop(columns=["date", "code"])], axis=1)


def period_table(rows: pd.DataFrame, edges: pd.DataFrame, features: Sequence[str]) -> pa.Table:
    """One snapshot period: ``rows`` (``date``, ``code``, the raw features but the peer
    group, ``RETURNS``; sorted by ``(date, code)``, as ``with_per_code`` returns them) and
    the snapshot's ``edges`` (``gold.peer_graph`` columns) → ``date, code,
    normalized_names(features)`` (float32, null where NaN), in the same order."""
    peer = peers.peer_stats(rows, edges)
    values = np.empty((len(features), len(rows)), dtype=np.float32)  # a feature per row
    for j, name in enumerate(features):
        values[j] = peer[name] if name in peer else rows[name].to_numpy(dtype=float,
                                                                       na_value=np.nan)
    dates = rows["date"].to_numpy()
    columns = [pa.array(dates, pa.date32()), pa.array(rows["code"].to_numpy(), pa.string())]
    for block in normalize.by_date(dates, values):  # raw, z, rank
        columns += [pa.array(column, from_pandas=True) for column in block]
    return pa.Table.from_arrays(columns, ["date", "code", *normalized_names(features)])


def cross_sectional_pass(rows: DataFrame, period_of: Mapping[dt.date, dt.date],
                         features: Sequence[str], handoff: Handoff,
                         sink: WorkerFiles | None = None) -> DataFrame:
    """One row out per row in: ``rows`` (``date``, ``code``, the raw features of
    ``features`` that the per-code pass does not write to ``handoff``, but
    ``peers.FEATURES``; ``RETURNS``; dated among ``period_of``) → ``date, code,
    normalized_names(features)`` as float32, with the per-code features and the peer
    graph's edges read from ``handoff``: each date uses its period's snapshot, none
    (null peer features) for ``UNSERVED`` or a period without edges.

    With a ``sink`` the workers write those rows as the sink's files (a group's rows
    are in key order: dates in order, each sorted by code) and the frame holds one row
    per file (``worker_files.FILE_SCHEMA``) for ``sink.commit``."""
    features = list(features)
    spark = rows.sparkSession
    key = local_frame(spark, list(period_of.items()), ("date", "_snap"))
    left = rows.join(F.broadcast(key), on="date", how="inner")
    schema = StructType([rows.schema["date"], rows.schema["code"],
                         *[StructField(c, FloatType()) for c in normalized_names(features)]])

    def per_period(pdf: pd.DataFrame) -> pd.DataFrame:
        snap = pdf["_snap"].iloc[0]
        rows = with_per_code(pdf.drop(columns="_snap"), handoff.read(snap), snap)
        edges = handoff.read_edges(snap)
        edges = NO_EDGES if edges is None else edges.to_pandas()
        return period_table(rows, edges, features)

    grouped = left.groupBy("_snap")
    if sink is None:
        return grouped.applyInPandas(lambda pdf: per_period(pdf).to_pandas(), schema)
    return grouped.applyInPandas(sink.wrap(per_period), FILE_SCHEMA)
