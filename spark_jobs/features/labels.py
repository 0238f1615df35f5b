"""Labels: forward split-adjusted close-to-close returns (the only look-ahead columns).

``fwd_ret_{h}d`` on date ``T`` = ``adj_close`` on the trading day ``h`` JPX sessions after
``T`` / ``adj_close`` on ``T`` − 1. Null when either day has no trade, when that day is
not in silver yet (the future is unknown) or the stock has no row then (delisted), and
when the stock lacks a row on a session in between (its row ``h`` rows ahead is then not
``h`` sessions ahead). ``fwd_ret_{h}d_dm`` = the return minus the mean of that date's
non-null ``fwd_ret_{h}d``, summed in code order (bit-reproducible across runs).

Labels are computed from their own read of silver prices, never from the feature frame,
and are written to ``gold.labels`` only — no feature can see them. Five leads over a
few million rows are numpy work on the driver (a ``[sessions, codes]`` panel): a Spark
window job would shuffle the prices by code and then by date for the means.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gogooku3.lake import deltars
from spark_jobs.features.sessions import tidx

HORIZONS = (1, 2, 3, 5, 10)
COLUMNS: list[str] = [c for h in HORIZONS for c in (f"fwd_ret_{h}d", f"fwd_ret_{h}d_dm")]
#: the silver price columns the labels read
PRICE_COLUMNS = ["date", "code", "adj_close", "is_traded"]


def compute_labels(prices: pa.Table) -> pa.Table:
    """``prices`` (``PRICE_COLUMNS`` of silver price rows from the first label date to
    ``max(HORIZONS)`` sessions past the last, or to the end of silver; one row per
    ``(date, code)``) → ``date, code`` + ``COLUMNS`` for every row, sorted by
    ``(date, code)``; the caller keeps the label dates."""
    prices = prices.select(PRICE_COLUMNS).sort_by([("date", "ascending"), ("code", "ascending")])
    if not prices.num_rows:
        return pa.table({"date": prices.column("date"), "code": prices.column("code"),
                         **{k: pa.array([], pa.float64()) for k in COLUMNS}})
    t = tidx(prices.column("date").to_numpy())
    t = t - t.min()
    codes = pc.dictionary_encode(prices.column("code")).combine_chunks()
    c = codes.indices.to_numpy()
    traded = prices.column("is_traded").fill_null(False).to_numpy()
    close = prices.column("adj_close").to_numpy(zero_copy_only=False)
    px = np.where(traded, close, np.nan)
    sessions, width = int(t.max()) + 1, len(codes.dictionary)
    panel = np.full((sessions + max(HORIZONS), width), np.nan)
    panel[t, c] = px
    seen = np.zeros((sessions + max(HORIZONS) + 1, width), dtype=np.int32)
    seen[t + 1, c] = 1
    rows_upto = np.cumsum(seen, axis=0)  # rows_upto[s, c]: rows of c on sessions < s
    day = np.unique(t, return_inverse=True)[1]
    out = {"date": prices.column("date"), "code": prices.column("code")}
    with np.errstate(invalid="ignore", divide="ignore"):
        for h in HORIZONS:
            # no session of the code missing between T and T + h
            complete = rows_upto[t + h + 1, c] - rows_upto[t + 1, c] == h
            ret = np.where(complete & (px > 0), panel[t + h, c] / px - 1, np.nan)
            have = ~np.isnan(ret)
            total = np.bincount(day, weights=np.where(have, ret, 0.0))
            mean = total / np.bincount(day, weights=have.astype(float))
            out[f"fwd_ret_{h}d"] = pa.array(ret, from_pandas=True)
            out[f"fwd_ret_{h}d_dm"] = pa.array(ret - mean[day], from_pandas=True)
    return pa.table(out)


def read_labels(dates: Sequence[dt.date], horizon_end: dt.date,
                lake_root: str | None = None) -> pa.Table:
    """The labels of ``dates`` (ascending), from silver prices of ``dates[0]..horizon_end``
    (the session ``max(HORIZONS)`` after the last date) read with delta-rs."""
    prices = deltars.read_table("silver.equities_prices_daily", dates[0], horizon_end,
                                columns=PRICE_COLUMNS, lake_root=lake_root)
    labels = compute_labels(prices)
    return labels.filter(pc.is_in(labels.column("date"), value_set=pa.array(dates, pa.date32())))
