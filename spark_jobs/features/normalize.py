"""Same-day cross-sectional normalization: winsorize, z-score and percentile rank per date.

For each trade date and each raw feature, over that date's non-null values only:

1. **winsorize**: clip at the date's 1st and 99th percentiles (linear interpolation
   between order statistics, numpy's default);
2. ``<name>_cs_z`` = (clipped − mean) / std of the clipped values (population std);
   0.0 when every value of the day is equal (no dispersion), null with fewer than 2 values;
3. ``<name>_cs_rank`` = (average rank − 1) / (n − 1) of the raw value, in [0, 1]
   (ties share their mean rank), null with fewer than 2 values.

A null raw value stays null in all three columns — nothing is zero-filled. NaN/±inf raw
values are treated as null. No statistic crosses dates, so a day's normalized values
depend on that day's rows only.

Raw features are computed in float64 and stored as float32 (what the model reads): the
statistics are computed (in float64) from the raw values rounded to float32, so a stored
z-score and rank describe exactly the stored raw values; every output is float32.

Pure numpy over each date's rows, run by the build's cross-sectional pass
(``crosssection``). Why not Spark aggregates: exact 1st/99th percentiles and ranks for
~100 columns would take one sort per column in Spark, and the partial sums of a
distributed ``avg``/``stddev`` are merged in
an order that depends on partitioning, so a daily run and a full rebuild could differ in
the last bit; here each date's rows are sorted by code and reduced in that fixed order.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

WINSOR_QUANTILES = (1.0, 99.0)


def normalized_names(features: Sequence[str]) -> list[str]:
    """Output column order: raw features, then every ``_cs_z``, then every ``_cs_rank``."""
    return [*features, *[f"{f}_cs_z" for f in features], *[f"{f}_cs_rank" for f in features]]


def by_date(dates: np.ndarray, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of consecutive dates (``dates``, each date's rows together and sorted by code)
    and their raw features as ``columns`` (``[features, rows]``) → the raw values,
    z-scores and percentile ranks as float32 ``[features, rows]`` arrays (module
    docstring), each date normalized on its own. Non-finite raw values come out null
    (NaN)."""
    x = np.array(columns, dtype=np.float32)
    x[~np.isfinite(x)] = np.nan
    z, pct = np.empty_like(x), np.empty_like(x)
    edges = [0, *(np.flatnonzero(dates[1:] != dates[:-1]) + 1).tolist(), len(dates)]
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        if b > a:
            z[:, a:b], pct[:, a:b] = normalize_columns(np.ascontiguousarray(x[:, a:b]))
    return x, z, pct


def normalize_columns(xt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One date's float32 values laid out ``[features, rows]`` (C order: each feature's
    values contiguous; NaN: null) → their z-scores and percentile ranks in float64, same
    layout (module docstring), NaN where the value is null or the feature has fewer than
    2 values.

    One sort per column serves both statistics: the winsor bounds are read from the
    sorted values as ``numpy.nanpercentile`` computes them (linear interpolation,
    numpy's rounding) and a value's average rank is the middle of its run of ties. The
    sort is of 64-bit keys (the value's order-preserving bits, then its row), which
    numpy sorts several times faster than it argsorts doubles."""
    rows = xt.shape[1]
    valid = ~np.isnan(xt)
    bits = xt.view(np.uint32)
    # negative values: all bits flipped; positive: the sign bit set (IEEE order as unsigned)
    order_bits = bits ^ ((bits.view(np.int32) >> 31).view(np.uint32) | np.uint32(1 << 31))
    order_bits[~valid] = np.uint32(0xFFFFFFFF)  # nulls sort last
    key = (order_bits.astype(np.uint64) << np.uint64(32)) | np.arange(rows, dtype=np.uint64)
    key.sort(axis=1)
    order = (key & np.uint64(0xFFFFFFFF)).astype(np.intp)
    ranked = np.take_along_axis(xt, order, axis=1).astype(float)
    xt = xt.astype(float)
    n = valid.sum(axis=1)
    enough = n >= 2
    lo, hi = (_percentile(ranked, n, q / 100.0) for q in WINSOR_QUANTILES)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-null columns: nan stats
        # numpy's nanmean and nanstd, step for step (nulls as 0 in the sums), sharing passes
        clipped = np.where(valid, np.clip(xt, lo[:, None], hi[:, None]), 0.0)
        mean = clipped.sum(axis=1) / n
        dev = np.where(valid, clipped - mean[:, None], 0.0)
        std = np.sqrt((dev * dev).sum(axis=1) / n)
        z = np.where(std[:, None] > 0, dev / std[:, None], 0.0)
        pos = np.arange(rows)
        new_run = np.ones(ranked.shape, dtype=bool)
        new_run[:, 1:] = ranked[:, 1:] != ranked[:, :-1]
        first = np.maximum.accumulate(np.where(new_run, pos, 0), axis=1)
        run_end = np.ones(ranked.shape, dtype=bool)
        run_end[:, :-1] = new_run[:, 1:]
        last = np.minimum.accumulate(np.where(run_end, pos, rows)[:, ::-1], axis=1)[:, ::-1]
        mid = np.empty(ranked.shape)
        np.put_along_axis(mid, order, (first + last) / 2.0 + 1.0, axis=1)
        pct = (mid - 1.0) / (n[:, None] - 1.0)
    keep = valid & enough[:, None]
    return np.where(keep, z, np.nan), np.where(keep, pct, np.nan)


def _percentile(ranked: np.ndarray, n: np.ndarray, q: float) -> np.ndarray:
    """Per row of ``ranked`` (sorted, its ``n`` valid values first): the ``q`` quantile
    of the valid values as ``numpy.nanquantile`` computes it (NaN when ``n`` is 0)."""
    at = (n - 1) * q
    below = np.floor(at)
    top = at >= n - 1
    prev = np.where(top, n - 1, below).astype(np.intp).clip(0)
    nxt = np.where(top, n - 1, below + 1).astype(np.intp).clip(0)
    gamma = at - np.where(top, -1, below)  # as numpy: irrelevant when prev == nxt
    a = np.take_along_axis(ranked, prev[:, None], axis=1)[:, 0]
    b = np.take_along_axis(ranked, nxt[:, None], axis=1)[:, 0]
    diff = b - a
    out = np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)
    return np.where(n > 0, out, np.nan)
