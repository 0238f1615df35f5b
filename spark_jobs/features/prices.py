"""Price/return features from split-adjusted bars, plus the window helpers my groups share.

The series of a code is its *traded* rows (``is_traded`` and an adjusted close) in date
order: halts and the 2020-10-01 outage are skipped, not treated as zero returns, and get
null features. Windows are ``Window.partitionBy("code", <traded>).orderBy("date")`` —
the traded rows of a code form one partition, so no join back is needed.

A window feature of ``n`` rows is null until ``n`` rows exist and when those rows reach
more than ``LOOKBACK`` trading days back (``_tidx``): then a build that reads exactly the
look-back computes what a full rebuild does. All values on ``T`` use rows ``<= T``.
Prices are the ``adj_*`` columns (forward-adjusted), so a split day shows no jump.
"""

from __future__ import annotations

import math

from pyspark.sql import Column, DataFrame, Window, WindowSpec
from pyspark.sql import functions as F

from spark_jobs.features.inputs import LOOKBACK, with_trading_index

FEATURES: list[str] = [
    "ret_1d", "ret_2d", "ret_3d", "ret_5d", "ret_10d", "ret_20d", "ret_60d",
    "log_ret_1d", "log_ret_5d", "log_ret_20d",
    "vol_5d", "vol_10d", "vol_20d", "vol_60d",
    "parkinson_vol_20d", "gk_vol_20d",
    "overnight_ret_1d", "intraday_ret_1d", "hl_range_1d",
]

RETURN_HORIZONS = (1, 2, 3, 5, 10, 20, 60)
LOG_RETURN_HORIZONS = (1, 5, 20)
VOL_WINDOWS = (5, 10, 20, 60)
RANGE_WINDOW = 20


def traded() -> Column:
    """True on rows that belong to the code's series (a trade with adjusted OHLC)."""
    return (
        F.coalesce(F.col("is_traded"), F.lit(False))
        & F.col("adj_close").isNotNull()
        & F.col("adj_high").isNotNull()
        & F.col("adj_low").isNotNull()
        & F.col("adj_open").isNotNull()
    )


def series_window() -> WindowSpec:
    """The code's traded rows in date order (``_traded`` must be a column)."""
    return Window.partitionBy("code", "_traded").orderBy("date")


def rows_window(n: int) -> WindowSpec:
    """The last ``n`` rows of the series up to and including the current one."""
    return series_window().rowsBetween(-(n - 1), Window.currentRow)


def full(n: int) -> Column:
    """True when the last ``n`` series rows exist and lie within ``LOOKBACK`` trading days."""
    first = F.lag("_tidx", n - 1).over(series_window()) if n > 1 else F.col("_tidx")
    return F.col("_traded") & (first >= F.col("_tidx") - (LOOKBACK - 1))


def div(a: Column, b: Column) -> Column:
    """``a / b``, null where ``b`` is 0 or null (no ANSI divide-by-zero error)."""
    return F.when(b != 0, a / b)


def prepare(df: DataFrame) -> DataFrame:
    """``df`` plus the helper columns ``_tidx`` and ``_traded`` (kept if present)."""
    df = with_trading_index(df)
    return df if "_traded" in df.columns else df.withColumn("_traded", traded())


def finish(df: DataFrame, out: DataFrame, features: list[str]) -> DataFrame:
    """``out`` restricted to ``df``'s columns plus ``features``."""
    return out.select(*df.columns, *features)


def add_price_features(df: DataFrame) -> DataFrame:
    """``df`` (silver price rows) plus ``FEATURES``; see ``configs/features.yaml``.

    ``ret_{n}d`` = adj_close_t / adj_close_{t-n} - 1 over series rows; ``log_ret_{n}d`` its
    log; ``vol_{n}d`` = sample std of ``log_ret_1d`` over n rows; Parkinson and
    Garman–Klass volatility over 20 rows (daily units); overnight/intraday returns and
    the log high/low range of the day. Point-in-time: rows ``<= T`` only.
    """
    base = prepare(df)
    w = series_window()
    c, o = F.col("adj_close"), F.col("adj_open")
    h, lo = F.col("adj_high"), F.col("adj_low")
    cols = {}
    for n in RETURN_HORIZONS:
        cols[f"ret_{n}d"] = F.when(full(n + 1), c / F.lag(c, n).over(w) - 1)
    for n in LOG_RETURN_HORIZONS:
        cols[f"log_ret_{n}d"] = F.when(full(n + 1), F.log(c / F.lag(c, n).over(w)))
    cols["overnight_ret_1d"] = F.when(full(2), o / F.lag(c, 1).over(w) - 1)
    cols["intraday_ret_1d"] = F.when(F.col("_traded"), c / o - 1)
    cols["hl_range_1d"] = F.when(F.col("_traded"), F.log(h / lo))
    out = base.select("*", *[e.alias(k) for k, e in cols.items()])

    lr = F.col("log_ret_1d")
    hl2 = F.pow(F.log(h / lo), 2)
    co2 = F.pow(F.log(c / o), 2)
    gk_term = 0.5 * hl2 - (2 * math.log(2) - 1) * co2
    rw = rows_window(RANGE_WINDOW)
    more = {f"vol_{n}d": F.when(full(n + 1), F.stddev_samp(lr).over(rows_window(n))) for n in VOL_WINDOWS}
    more["parkinson_vol_20d"] = F.when(
        full(RANGE_WINDOW), F.sqrt(F.avg(hl2).over(rw) / (4 * math.log(2)))
    )
    gk_mean = F.avg(gk_term).over(rw)
    more["gk_vol_20d"] = F.when(full(RANGE_WINDOW) & (gk_mean >= 0), F.sqrt(gk_mean))
    out = out.select("*", *[e.alias(k) for k, e in more.items()])
    return finish(df, out, FEATURES)
