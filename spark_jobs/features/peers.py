"""Peer graph (k nearest neighbours by return correlation) and peer features.

``build_peer_graph(df, k=10, window=60, cadence=20)`` → ``gold.peer_graph`` rows
``(date, code, peer_code, rank, corr)``: on each snapshot date ``s`` every code's ``k``
most correlated other codes (Pearson correlation of daily adjusted-close returns over the
``window`` trade dates ending at ``s``; rank 1 = highest, ties by peer code). Snapshots
fall on the trade dates whose trading-day index ``_tidx`` (``sessions``) is a multiple of
``cadence`` — anchored to the calendar, not to the frame, so
a daily incremental run picks the same snapshot dates as a full rebuild. A snapshot uses
returns of dates ``<= s`` only.

``peer_stats(rows, edges)`` gives, for each ``(date, code)`` row of the dates one snapshot
serves (``serving_snapshots``: the latest snapshot ``<= date``): the mean 1-day and
5-day return of the code's peers on that date (``peer_ret_1d_mean``, ``peer_ret_5d_mean``;
at least one peer with a value), the sample variance of their 5-day returns
(``peer_ret_5d_var``; at least two), and the mean correlation of the code to its peers in
that snapshot (``peer_corr_mean``). It runs inside the build's cross-sectional pass
(``crosssection``), one group per snapshot period.

The graph is a grouped-map pandas UDF, one group per snapshot. Why not plain Spark: the
graph needs all N×N correlations of a snapshot and a top-k per row — as SQL that is a
cross join of N² pairs × ``window`` days per snapshot (1.2 B rows for 4,000 stocks), while
one ``[window × N]`` matrix product in numpy does it in a fraction of a second; the peer
statistics need each row's ``k`` peers' values, which in SQL is a ×k row explosion
(50 M rows for 5 M price rows) and in numpy one array gather per snapshot period.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_jobs.features.local import local_frame
from spark_jobs.features.sessions import tidx

FEATURES: list[str] = ["peer_ret_1d_mean", "peer_ret_5d_mean", "peer_ret_5d_var", "peer_corr_mean"]

GRAPH_SCHEMA = "date date, code string, peer_code string, rank int, corr double"
SERVE_MAX_DAYS = 366  # the latest snapshot serves at most a year of later dates


def snapshot_dates(dates: Sequence[dt.date], cadence: int) -> list[dt.date]:
    """The dates among ``dates`` whose trading-day index ``_tidx`` is a multiple of
    ``cadence``."""
    if cadence < 1:
        raise ValueError(f"peer graph cadence must be >= 1 trading day, got {cadence}")
    days = sorted(set(dates))
    return [d for d, i in zip(days, tidx(days).tolist(), strict=True) if i % cadence == 0]


def graph_snapshots(dates: Sequence[dt.date], window: int, cadence: int,
                    start: dt.date | None = None) -> list[tuple[dt.date, list[dt.date]]]:
    """``(snapshot, its window's dates)`` built from the sorted distinct ``dates`` of a
    build's prices: a snapshot needs ``window`` returns before it (so ``window + 1``
    dates); with ``start``, only the snapshots that serve dates ``>= start`` — the latest
    one on or before ``start`` and all later ones."""
    pos = {d: i for i, d in enumerate(dates)}
    snaps = [s for s in snapshot_dates(dates, cadence) if pos[s] >= window]
    if start is not None:
        before = [s for s in snaps if s <= start]
        first = before[-1] if before else start
        snaps = [s for s in snaps if s >= first]
    return [(s, list(dates[pos[s] - window + 1 : pos[s] + 1])) for s in snaps]


def _top_k(pdf: pd.DataFrame, k: int, min_obs: int) -> pd.DataFrame:
    """One snapshot: ``pdf`` holds ``snap, date, code, r`` for the window's dates."""
    snap = pdf["snap"].iloc[0]
    wide = pdf.pivot(index="date", columns="code", values="r")
    x = wide.to_numpy(dtype=float)
    codes = np.asarray(wide.columns, dtype=object)
    enough = np.isfinite(x).sum(axis=0) >= min_obs
    x, codes = x[:, enough], codes[enough]
    # demean per code over its available days; a missing day then contributes nothing
    xc = np.nan_to_num(x - np.nanmean(x, axis=0) if x.size else x)
    norm = np.sqrt((xc * xc).sum(axis=0))
    live = norm > 0
    xc, codes, norm = xc[:, live], codes[live], norm[live]
    n = len(codes)
    kk = min(k, n - 1)
    if kk < 1:
        return pd.DataFrame({c: [] for c in ("date", "code", "peer_code", "rank", "corr")})
    corr = (xc.T @ xc) / np.outer(norm, norm)
    np.fill_diagonal(corr, -np.inf)
    part = np.argpartition(-corr, kk - 1, axis=1)[:, :kk] if kk < n - 1 else np.argsort(-corr, axis=1)[:, :kk]
    vals = np.take_along_axis(corr, part, axis=1)
    # order each row's k by corr desc, then peer code asc (column index order = code order)
    order = np.lexsort((part, -vals), axis=1)
    part = np.take_along_axis(part, order, axis=1)
    vals = np.take_along_axis(vals, order, axis=1)
    return pd.DataFrame(
        {
            "date": snap,
            "code": np.repeat(codes, kk),
            "peer_code": codes[part.ravel()],
            "rank": np.tile(np.arange(1, kk + 1, dtype=np.int32), n),
            "corr": vals.ravel(),
        }
    )


def build_peer_graph(
    returns: DataFrame,
    dates: Sequence[dt.date],
    *,
    k: int = 10,
    window: int = 60,
    cadence: int = 20,
    start: dt.date | None = None,
    min_obs: int | None = None,
) -> DataFrame:
    """Peer graph snapshots (module docstring) from ``returns`` (``date, code, _r1``: the
    per-code pass's 1-day returns, covering the snapshots' windows) and ``dates``, the
    sorted distinct dates of the build's prices (``graph_snapshots``). Codes with fewer
    than ``min_obs`` (default ``3/4 × window``) returns in the window, or a constant
    price, are left out of a snapshot."""
    min_obs = window * 3 // 4 if min_obs is None else min_obs
    spark = returns.sparkSession
    pairs = [(d, s) for s, days in graph_snapshots(dates, window, cadence, start) for d in days]
    if not pairs:
        return spark.createDataFrame([], GRAPH_SCHEMA)
    members = local_frame(spark, pairs, ("date", "snap"))
    rows = returns.select("date", "code", F.col("_r1").alias("r")).join(
        F.broadcast(members), on="date").filter(F.col("r").isNotNull())
    return rows.groupBy("snap").applyInPandas(
        lambda pdf: _top_k(pdf, k, min_obs), GRAPH_SCHEMA
    )


def serving_snapshots(dates: Sequence[dt.date], snaps: Sequence[dt.date]) -> dict[dt.date, dt.date]:
    """``date -> snapshot`` serving it: the latest of ``snaps`` on or before the date, at
    most ``SERVE_MAX_DAYS`` calendar days old; dates without one are left out."""
    snaps = sorted(snaps)
    out = {}
    for d in dates:
        i = bisect.bisect_right(snaps, d)
        if i and (d - snaps[i - 1]).days <= SERVE_MAX_DAYS:
            out[d] = snaps[i - 1]
    return out


def peer_stats(rows: pd.DataFrame, edges: pd.DataFrame) -> dict[str, np.ndarray]:
    """``FEATURES`` for ``rows`` (``date``, ``code``, ``_r1``, ``_r5``: the rows of the
    dates one snapshot serves), aligned with ``rows``, from that snapshot's ``edges``
    (``code``, ``peer_code``, ``rank``, ``corr``). A peer's returns are those of the same
    date; a peer without a row that day is skipped; codes without edges get null."""
    n = len(rows)
    out = {k: np.full(n, np.nan) for k in FEATURES}
    if n == 0 or edges.empty:
        return out
    d_idx, dates = pd.factorize(rows["date"])
    c_idx, codes = pd.factorize(rows["code"])
    a1 = np.full((len(dates), len(codes) + 1), np.nan)  # a last column of NaN: "no such peer"
    a5 = a1.copy()
    a1[d_idx, c_idx] = rows["_r1"].to_numpy(dtype=float, na_value=np.nan)
    a5[d_idx, c_idx] = rows["_r5"].to_numpy(dtype=float, na_value=np.nan)
    edges = edges.sort_values(["code", "rank"], kind="stable")
    owners, slot_owner = np.unique(edges["code"].to_numpy(dtype=object), return_inverse=True)
    slot = edges.groupby("code", sort=False).cumcount().to_numpy()
    idx = np.full((len(owners), int(slot.max()) + 1), len(codes))
    peer = pd.Index(codes).get_indexer(edges["peer_code"])
    idx[slot_owner, slot] = np.where(peer >= 0, peer, len(codes))
    corr = np.full(idx.shape, np.nan)
    corr[slot_owner, slot] = edges["corr"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr_mean = np.nanmean(corr, axis=1)
    owner = pd.Index(owners).get_indexer(rows["code"])
    has = owner >= 0
    o = owner[has]
    g1, g5 = a1[d_idx[has, None], idx[o]], a5[d_idx[has, None], idx[o]]  # [rows, peers]
    n1, n5 = np.isfinite(g1).sum(axis=1), np.isfinite(g5).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        m1 = np.where(n1 >= 1, np.nansum(g1, axis=1) / np.maximum(n1, 1), np.nan)
        m5 = np.where(n5 >= 1, np.nansum(g5, axis=1) / np.maximum(n5, 1), np.nan)
        dev = np.where(np.isfinite(g5), g5 - m5[:, None], 0.0)
        v5 = np.where(n5 >= 2, (dev * dev).sum(axis=1) / np.maximum(n5 - 1, 1), np.nan)
    for k, v in (("peer_ret_1d_mean", m1), ("peer_ret_5d_mean", m5), ("peer_ret_5d_var", v5),
                 ("peer_corr_mean", corr_mean[o])):
        out[k][has] = v
    return out
