"""The build's cross-sectional pass: peer features and normalization, one group per
snapshot period.

The per-code pass (``series``) has written every row's per-code features and trailing
returns to the ``handoff``, filed by period; the driver has filed each snapshot's edges
there and computed the per-date context (``Context``: sector statistics, flows) from the
returns the pass handed back. What is left needs a date's whole cross-section: the
sector features of each row, the peer statistics (each code's peers' returns on the
same date, from the snapshot serving that date) and the normalization
(``normalize.by_date``). All run here in one grouped pass over the periods (the dates a
peer-graph snapshot serves, about ``cadence`` of them): each group reads its period's
rows and edges from the handoff, so no row goes through Spark but the period keys and
the pass's output. Inside a group each date is normalized on its own, with its rows
sorted by code: a date's values do not depend on which other dates share the group, so
a daily run equals a full rebuild bit for bit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import DateType, FloatType, StringType, StructField, StructType

from gogooku3.lake.worker_files import FILE_SCHEMA, WorkerFiles
from spark_jobs.features import flows, normalize, peers, sector
from spark_jobs.features.handoff import Handoff
from spark_jobs.features.local import local_frame
from spark_jobs.features.normalize import normalized_names
from spark_jobs.features.sessions import day64

#: the group key of dates no snapshot serves (their peer features are null)
UNSERVED = dt.date(1900, 1, 1)
NO_EDGES = pd.DataFrame({c: [] for c in peers.GRAPH_SCHEMA.names})


def periods(dates: Sequence[dt.date], snapshots: Sequence[dt.date]) -> dict[dt.date, dt.date]:
    """Each of ``dates`` → its period: the snapshot serving it (``UNSERVED`` if none)."""
    serve = peers.serving_snapshots(dates, snapshots)
    return {d: serve.get(d, UNSERVED) for d in dates}


@dataclass(frozen=True)
class Context:
    """The per-date context the driver computed, shipped with the pass's function:
    ``sector.sector_stats`` and the master it used, and ``flows.flow_daily`` of the
    build's dates (``None``: the flows source is absent, the group is null)."""

    sector_stats: pd.DataFrame
    master: pd.DataFrame
    flows: pd.DataFrame | None

    def columns(self, rows: pd.DataFrame) -> dict[str, np.ndarray]:
        """The sector and flow features of ``rows`` (``date``, ``code``, ``_r1/_r5/_r20``)."""
        out = sector.sector_features(rows, self.sector_stats, self.master)
        if self.flows is None:
            return out | {k: np.full(len(rows), np.nan) for k in flows.FEATURES}
        days = day64(rows["date"].to_numpy())
        found = self.flows.reindex(days)
        return out | {k: found[k].to_numpy(dtype=float) for k in flows.FEATURES}


def period_rows(per_code: pa.Table, context: Context) -> pd.DataFrame:
    """A period's handoff rows (``date``, ``code``, the per-code features and trailing
    returns) sorted by ``(date, code)``, with the context's columns added; dates are
    numpy datetimes (``datetime.date`` objects cost ~0.1 s per 80,000-row conversion)."""
    rows = per_code.sort_by([("date", "ascending"), ("code", "ascending")]).to_pandas(
        date_as_object=False)
    return pd.concat([rows, pd.DataFrame(context.columns(rows))], axis=1)


def period_table(rows: pd.DataFrame, edges: pd.DataFrame, features: Sequence[str]) -> pa.Table:
    """One snapshot period: ``rows`` (``date``, ``code``, the raw features but the peer
    group, ``_r1``/``_r5``; sorted by ``(date, code)``, as ``period_rows`` returns them) and
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


def cross_sectional_pass(spark: SparkSession, periods: Sequence[dt.date],
                         features: Sequence[str], handoff: Handoff, context: Context,
                         sink: WorkerFiles | None = None) -> DataFrame:
    """One group per period of ``periods`` (snapshot dates, or ``UNSERVED``): the rows
    the per-code pass filed under it in ``handoff`` → ``date, code,
    normalized_names(features)`` as float32, with the context's columns and the peer
    features from the period's edges in ``handoff`` (null for ``UNSERVED`` or a period
    without edges).

    With a ``sink`` the workers write those rows as the sink's files (a group's rows
    are in key order: dates in order, each sorted by code) and the frame holds one row
    per file (``worker_files.FILE_SCHEMA``) for ``sink.commit``."""
    features = list(features)
    keys = local_frame(spark, [(p,) for p in sorted(set(periods))], ("_snap",))
    schema = StructType([StructField("date", DateType()), StructField("code", StringType()),
                         *[StructField(c, FloatType()) for c in normalized_names(features)]])

    def per_period(pdf: pd.DataFrame) -> pa.Table:
        snap = pdf["_snap"].iloc[0]
        per_code = handoff.read(snap)
        if per_code is None:
            raise RuntimeError(f"cross-sectional pass: period {snap}: no per-code rows in"
                               " the handoff")
        edges = handoff.read_edges(snap)
        edges = NO_EDGES if edges is None else edges.to_pandas()
        return period_table(period_rows(per_code, context), edges, features)

    grouped = keys.groupBy("_snap")
    if sink is None:
        return grouped.applyInPandas(lambda pdf: per_period(pdf).to_pandas(), schema)
    return grouped.applyInPandas(sink.wrap(per_period), FILE_SCHEMA)
