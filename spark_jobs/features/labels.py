"""Labels: forward split-adjusted close-to-close returns (the only look-ahead columns).

``fwd_ret_{h}d`` on date ``T`` = ``adj_close`` on the trading day ``h`` JPX sessions after
``T`` / ``adj_close`` on ``T`` − 1. Null when either day has no trade, when that day is
not in silver yet (the future is unknown) or the stock has no row then (delisted).
``fwd_ret_{h}d_dm`` = the return minus the mean of that date's non-null ``fwd_ret_{h}d``.

Labels are computed from their own read of silver prices, never from the feature frame,
and are written to ``gold.labels`` only — no feature can see them.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from spark_jobs.features.local import local_frame
from spark_jobs.features.sessions import trading_index

HORIZONS = (1, 2, 3, 5, 10)
COLUMNS: list[str] = [c for h in HORIZONS for c in (f"fwd_ret_{h}d", f"fwd_ret_{h}d_dm")]


def compute_labels(prices: DataFrame, first: dt.date, last: dt.date) -> DataFrame:
    """``prices`` (silver price rows dated ``first..last``: from the first label date to
    ``max(HORIZONS)`` sessions past the last, or to the end of silver) → ``date, code`` +
    ``COLUMNS`` for every row of ``prices`` (the caller keeps the label dates)."""
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    index = local_frame(prices.sparkSession, sorted(trading_index(days).items()),
                        ("date", "_tidx"))
    df = prices.select("date", "code", "adj_close", "is_traded").join(
        F.broadcast(index), on="date", how="left")
    px = F.when(F.coalesce(F.col("is_traded"), F.lit(False)), F.col("adj_close"))
    df = df.withColumn("_px", px)
    w = Window.partitionBy("code").orderBy("date")
    cols = {}
    for h in HORIZONS:
        ahead = F.lead("_tidx", h).over(w) - F.col("_tidx")
        # a code's row h rows ahead is h sessions ahead only if no session is missing
        fut = F.when(ahead == h, F.lead("_px", h).over(w))
        cols[f"fwd_ret_{h}d"] = F.when(F.col("_px") > 0, fut / F.col("_px") - 1)
    df = df.select("date", "code", *[e.alias(k) for k, e in cols.items()])
    # fixed (code) order inside each date keeps the mean bit-reproducible across runs
    day = Window.partitionBy("date").orderBy("code").rowsBetween(
        Window.unboundedPreceding, Window.unboundedFollowing
    )
    for h in HORIZONS:
        r = F.col(f"fwd_ret_{h}d")
        df = df.withColumn(f"fwd_ret_{h}d_dm", r - F.avg(r).over(day))
    return df.select("date", "code", *COLUMNS)
