"""Market (TOPIX) context features and the return helpers the context groups share.

``add_market_features(df, topix)`` adds, for every ``(date, code)`` row of the base price
frame (``silver.equities_prices_daily`` columns):

* ``mkt_ret_1d/5d/20d`` — TOPIX close-to-close return over 1/5/20 TOPIX rows;
* ``mkt_vol_20d`` — sample standard deviation of the last 20 daily TOPIX returns;
* ``beta_60d``, ``corr_mkt_60d``, ``idio_vol_60d`` — OLS beta of the stock's daily return on
  TOPIX's, their correlation, and the residual standard deviation, over the stock's last
  60 rows, using the days on which both returns exist (at least 40, else null);
* ``alpha_1d``, ``alpha_5d`` — stock return minus ``beta_60d`` × TOPIX return (1 and 5 days);
* ``rel_strength_20d``, ``rel_strength_60d`` — log return of the stock minus log return of
  TOPIX over 20/60 rows.

Stock returns come from ``adj_close`` (forward-adjusted, so splits produce no jump): the
return over ``n`` rows is ``adj_close_t / adj_close*_{t-n} - 1`` where ``adj_close*`` is the
last traded adjusted close at or before that row (a halt does not wipe out the next week's
5-day return); it is null on a day without a trade. Every value on date ``T`` uses prices
of dates ``<= T`` only.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

FEATURES: list[str] = [
    "mkt_ret_1d",
    "mkt_ret_5d",
    "mkt_ret_20d",
    "mkt_vol_20d",
    "beta_60d",
    "corr_mkt_60d",
    "idio_vol_60d",
    "alpha_1d",
    "alpha_5d",
    "rel_strength_20d",
    "rel_strength_60d",
]

BETA_WINDOW = 60
BETA_MIN_OBS = 40



def by_code() -> Window:
    """Each code's rows in date order (a function: a WindowSpec needs an active session)."""
    return Window.partitionBy("code").orderBy("date")


def _upto_now() -> Window:
    return by_code().rowsBetween(Window.unboundedPreceding, Window.currentRow)


def add_trailing_returns(df: DataFrame, horizons: Sequence[int], prefix: str) -> DataFrame:
    """Add ``{prefix}{n}`` = simple return of ``adj_close`` over ``n`` rows of each code.

    ``adj_close_t / last_traded_adj_close_{t-n} - 1``; null when row ``t`` has no trade or no
    traded close exists at or before ``t-n``. Helper columns are prefixed and dropped; the
    caller drops ``{prefix}*`` when done.
    """
    ffill = f"{prefix}px"
    out = df.withColumn(ffill, F.last("adj_close", ignorenulls=True).over(_upto_now()))
    out = out.select(
        "*",
        *[
            (F.col("adj_close") / F.lag(ffill, n).over(by_code()) - 1).alias(f"{prefix}{n}")
            for n in horizons
        ],
    )
    return out.drop(ffill)


def add_windowed_sums(df: DataFrame, cols: dict[str, Column], n: int, prefix: str) -> DataFrame:
    """Add ``{prefix}{name}`` = sum of ``expr`` over the last ``n`` rows of each code.

    A sliding ``rowsBetween(-(n-1), 0)`` frame: each value is summed from exactly those
    ``n`` rows, so it does not depend on how far back a build reads (a running sum minus
    the running sum ``n`` rows back would, in its last bits, and loses precision over long
    histories). Null terms are skipped (like ``sum``); the sum of no terms is 0.
    """
    frame = by_code().rowsBetween(-(n - 1), Window.currentRow)
    return df.select(
        "*",
        *[F.coalesce(F.sum(e).over(frame), F.lit(0.0)).alias(f"{prefix}{k}") for k, e in cols.items()],
    )


def market_series(topix: DataFrame) -> DataFrame:
    """TOPIX features per date (``silver.indices_topix_daily`` → date + ``mkt_*`` columns).

    The index is one small series, so its windows run in one partition (a constant key
    says so explicitly instead of Spark's "no partition defined" warning).
    """
    w = Window.partitionBy(F.lit(0)).orderBy("date")
    t = topix.select("date", F.col("close").cast("double").alias("_close"))
    t = t.select(
        "date",
        "_close",
        *[(F.col("_close") / F.lag("_close", n).over(w) - 1).alias(f"mkt_ret_{n}d") for n in (1, 5, 20)],
        *[F.lag("_close", n).over(w).alias(f"_mkt_close_lag{n}") for n in (20, 60)],
    )
    t = t.withColumn(
        "mkt_vol_20d",
        F.when(
            F.count("mkt_ret_1d").over(w.rowsBetween(-19, 0)) == 20,
            F.stddev_samp("mkt_ret_1d").over(w.rowsBetween(-19, 0)),
        ),
    )
    return t


def add_market_features(df: DataFrame, topix: DataFrame) -> DataFrame:
    """``df`` (base price rows) plus the ``FEATURES`` columns of this module.

    ``topix`` is ``silver.indices_topix_daily`` covering at least ``df``'s dates (plus 60
    rows before them for full windows). Rows keep their order-independent identity
    ``(date, code)``; dates missing from ``topix`` get null market columns.
    """
    mkt = market_series(topix)
    out = df.join(F.broadcast(mkt), on="date", how="left")
    out = add_trailing_returns(out, (1, 5, 20, 60), "_mk_r")
    r, m = F.col("_mk_r1"), F.col("mkt_ret_1d")
    both = r.isNotNull() & m.isNotNull()
    out = add_windowed_sums(
        out,
        {
            "n": F.when(both, F.lit(1.0)),
            "x": F.when(both, m),
            "y": F.when(both, r),
            "xx": F.when(both, m * m),
            "yy": F.when(both, r * r),
            "xy": F.when(both, m * r),
        },
        BETA_WINDOW,
        "_mk_s",
    )
    n = F.col("_mk_sn")
    sxx = F.col("_mk_sxx") - F.col("_mk_sx") * F.col("_mk_sx") / n
    syy = F.col("_mk_syy") - F.col("_mk_sy") * F.col("_mk_sy") / n
    sxy = F.col("_mk_sxy") - F.col("_mk_sx") * F.col("_mk_sy") / n
    ok = n >= BETA_MIN_OBS
    out = out.withColumn("beta_60d", F.when(ok & (sxx > 0), sxy / sxx))
    out = out.withColumn(
        "corr_mkt_60d", F.when(ok & (sxx > 0) & (syy > 0), sxy / F.sqrt(sxx * syy))
    )
    # residual variance of the OLS fit with intercept: (Syy - Sxy^2/Sxx) / (n - 2)
    resid = (syy - sxy * sxy / sxx) / (n - 2)
    out = out.withColumn(
        "idio_vol_60d", F.when(ok & (sxx > 0), F.sqrt(F.greatest(resid, F.lit(0.0))))
    )
    beta = F.col("beta_60d")
    out = out.withColumn("alpha_1d", r - beta * m)
    out = out.withColumn("alpha_5d", F.col("_mk_r5") - beta * F.col("mkt_ret_5d"))
    for n_days in (20, 60):
        out = out.withColumn(
            f"rel_strength_{n_days}d",
            F.log1p(F.col(f"_mk_r{n_days}"))
            - F.log(F.col("_close") / F.col(f"_mkt_close_lag{n_days}")),
        )
    return out.select(*df.columns, *FEATURES)
