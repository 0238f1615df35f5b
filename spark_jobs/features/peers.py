"""Peer graph (k nearest neighbours by return correlation) and peer features.

``peer_graph(returns, dates, k=10, window=120, cadence=20)`` → ``gold.peer_graph`` rows
``(date, code, peer_code, rank, corr)``: on each snapshot date ``s`` every code's ``k``
most correlated other codes (Pearson correlation of daily adjusted-close returns over the
``window`` trade dates ending at ``s``; rank 1 = highest, ties by peer code). Given each
row's 33-sector (a required column), the returns correlated are sector-relative: the
1-day return minus the same-day equal-weighted mean of the code's sector
(``ret_1d_vs_sector``), so that peers are the codes that move together beyond their
shared sector and market, not simply sector mates (a code without a sector that day:
minus the day's mean over all codes).
Snapshots fall on the trade dates whose trading-day index ``_tidx`` (``sessions``) is a
multiple of ``cadence`` — anchored to the calendar, not to the frame, so a daily
incremental run picks the same snapshot dates as a full rebuild. A snapshot uses
returns of dates ``<= s`` only.

``peer_stats(rows, edges)`` gives, for each ``(date, code)`` row of the dates one snapshot
serves (``serving_snapshots``: the latest snapshot ``<= date``): the mean 1-day and
5-day return of the code's peers on that date (``peer_ret_1d_mean``, ``peer_ret_5d_mean``;
at least one peer with a value), the sample variance of their 5-day returns
(``peer_ret_5d_var``; at least two), and the mean correlation of the code to its peers in
that snapshot (``peer_corr_mean``). It runs inside the build's cross-sectional pass
(``crosssection``), one group per snapshot period.

The graph is computed on the driver, from the 1-day returns the per-code pass hands
back (a few columns): one ``[dates × codes]`` panel, and per snapshot one ``[window × N]``
matrix product and a top-k per row in numpy, a fraction of a second for 4,000 stocks.
Why not Spark: as SQL the N×N correlations are a cross join of N² pairs × ``window``
days per snapshot (1.2 B rows for 4,000 stocks); as a grouped-map UDF each return row
is shuffled once per snapshot whose window holds it (``window / cadence`` times) and
each group pivots its rows back into the panel the driver builds once. The peer
statistics need each row's ``k`` peers' values, which in SQL is a ×k row explosion
(50 M rows for 5 M price rows) and in numpy one array gather per snapshot period.
"""

from __future__ import annotations

import bisect
import datetime as dt
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from threadpoolctl import threadpool_limits

from spark_jobs.features.sessions import tidx

FEATURES: list[str] = ["peer_ret_1d_mean", "peer_ret_5d_mean", "peer_ret_5d_var", "peer_corr_mean"]

GRAPH_SCHEMA = pa.schema([("date", pa.date32()), ("code", pa.string()),
                          ("peer_code", pa.string()), ("rank", pa.int32()), ("corr", pa.float64())])
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


def snapshot_edges(x: np.ndarray, codes: np.ndarray, k: int, min_obs: int) -> dict[str, np.ndarray]:
    """One snapshot's edges from ``x``, the ``[window, codes]`` daily returns of its window
    (NaN: no return) of ``codes`` (sorted): ``code, peer_code, rank, corr`` arrays, each
    code's ``k`` peers in rank order (module docstring)."""
    enough = np.isfinite(x).sum(axis=0) >= max(min_obs, 1)
    x, codes = x[:, enough], codes[enough]
    # demean per code over its available days; a missing day then contributes nothing
    xc = np.nan_to_num(x - np.nanmean(x, axis=0) if x.size else x)
    norm = np.sqrt((xc * xc).sum(axis=0))
    live = norm > 0
    xc, codes = xc[:, live] / norm[live], codes[live]
    n = len(codes)
    kk = min(k, n - 1)
    if kk < 1:
        return {"code": codes[:0], "peer_code": codes[:0], "rank": np.zeros(0, np.int32),
                "corr": np.zeros(0)}
    xt = np.ascontiguousarray(xc.T)  # [codes, window]: BLAS runs twice as fast on this layout
    corr = xt @ xc
    np.fill_diagonal(corr, -np.inf)
    peer, value = _top_k(corr, kk)
    return {"code": np.repeat(codes, kk), "peer_code": codes[peer.ravel()],
            "rank": np.tile(np.arange(1, kk + 1, dtype=np.int32), n), "corr": value.ravel()}


def _top_k(a: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` largest values of ``a`` (``[rows, n]``, ``k < n``, no NaN) and their
    columns, ordered by value descending, then column ascending (ties included exactly).

    The ``k``-th largest of ``m > k`` block maxima bounds each row's ``k``-th largest
    value from below, so the values at or above it are a superset of the top ``k`` —
    a few dozen of a row's thousands, found by one comparison pass and then sorted."""
    rows, n = a.shape
    m = min(n, 4 * k + 1)
    block_max = np.maximum.reduceat(a, np.arange(m) * n // m, axis=1)
    floor = np.partition(block_max, m - k, axis=1)[:, m - k]
    r, c = np.divmod(np.flatnonzero(a >= floor[:, None]), n)  # r ascending, >= k per row
    v = a[r, c]
    order = np.lexsort((c, -v, r))
    pick = order[np.searchsorted(r, np.arange(rows))[:, None] + np.arange(k)]
    return c[pick], v[pick]


def peer_graph(
    returns: pa.Table,
    dates: Sequence[dt.date],
    *,
    k: int = 10,
    window: int = 120,
    cadence: int = 20,
    start: dt.date | None = None,
    min_obs: int | None = None,
) -> dict[dt.date, pa.Table]:
    """Peer graph snapshots (module docstring), computed on the driver: snapshot date →
    its ``gold.peer_graph`` rows. ``returns`` holds ``date, code, _r1`` (the per-code
    pass's 1-day returns, covering the snapshots' windows) and ``sector`` (the row's
    33-sector, null where unknown; the returns are made sector-relative,
    ``sector_relative``); other columns are ignored. ``dates`` are the sorted distinct
    dates of the build's prices (``graph_snapshots``).
    Codes with fewer than ``min_obs`` (default ``3/4 × window``) returns in the window,
    or a constant price, are left out of a snapshot.

    The returns become one ``[dates, codes]`` panel; each snapshot is a slice of it, one
    matrix product and a top-k per row (numpy, which releases the GIL: the snapshots run
    on a thread per core)."""
    missing = sorted({"date", "code", "_r1", "sector"} - set(returns.column_names))
    if missing:
        raise ValueError(f"peer_graph: returns lack column(s) {', '.join(missing)}")
    min_obs = window * 3 // 4 if min_obs is None else min_obs
    snaps = graph_snapshots(dates, window, cadence, start)
    if not snaps:
        return {}
    axis = np.array(dates, dtype="datetime64[D]")
    lo = int(np.searchsorted(axis, np.datetime64(snaps[0][1][0], "D")))
    hi = int(np.searchsorted(axis, np.datetime64(snaps[-1][0], "D")))
    day = returns.column("date").to_numpy(zero_copy_only=False).astype("datetime64[D]")
    r = returns.column("_r1").to_numpy(zero_copy_only=False).astype(float)
    keep = (day >= axis[lo]) & (day <= axis[hi]) & np.isfinite(r)
    sector = pc.dictionary_encode(returns.column("sector")).combine_chunks().indices
    r = sector_relative(day, sector.fill_null(-1).to_numpy(), r, keep)
    codes, c_idx = _sorted_codes(returns.column("code"))
    panel = np.full((hi - lo + 1, len(codes)), np.nan)
    panel[np.searchsorted(axis, day[keep]) - lo, c_idx[keep]] = r[keep]

    def one(snap: tuple[dt.date, list[dt.date]]) -> pa.Table:
        end = int(np.searchsorted(axis, np.datetime64(snap[0], "D"))) - lo
        edges = snapshot_edges(panel[end - window + 1: end + 1], codes, k, min_obs)
        return pa.table({"date": pa.array([snap[0]] * len(edges["code"]), pa.date32()),
                         **edges}, schema=GRAPH_SCHEMA)

    # a snapshot per core, each product on one BLAS thread (they would contend otherwise)
    with threadpool_limits(1, user_api="blas"), \
            ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="peer-graph") as pool:
        return dict(zip([s for s, _ in snaps], pool.map(one, snaps), strict=True))


def sector_relative(day: np.ndarray, sector: np.ndarray, r: np.ndarray,
                    keep: np.ndarray) -> np.ndarray:
    """``r`` minus the mean of ``r`` over the ``keep`` rows of the same ``day`` and
    ``sector`` (integer ids; ``-1``: no sector, such a row is measured against the mean
    of all ``keep`` rows of its day); rows outside ``keep`` are NaN."""
    out = np.full(len(r), np.nan)
    x, s = r[keep], sector[keep].astype(np.int64) + 1
    _, d = np.unique(day[keep], return_inverse=True)
    width = int(s.max(initial=0)) + 1
    group = d * width + s

    def mean_of(key: np.ndarray) -> np.ndarray:
        return (np.bincount(key, weights=x) / np.maximum(np.bincount(key), 1))[key]

    out[keep] = x - np.where(s > 0, mean_of(group), mean_of(d))
    return out


def _sorted_codes(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct codes of ``column``, sorted, and each row's index among them (Arrow's
    hash encoding: ``numpy.unique`` sorts millions of Python strings)."""
    encoded = pc.dictionary_encode(column).combine_chunks()
    names = encoded.dictionary.to_numpy(zero_copy_only=False)
    order = np.argsort(names)
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    return names[order], position[encoded.indices.to_numpy()]


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
