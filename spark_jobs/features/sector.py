"""Sector context features: 33-sector membership as of each date and same-day sector stats.

``add_sector_features(rows, returns, master_asof)`` adds, to each ``(date, code)`` row of the
build:

* ``sector_ret_1d/5d/20d`` — equal-weighted mean, over the stocks that are members of the
  row's 33-sector on that date (the stock itself included), of their 1/5/20-day returns;
* ``ret_1d_vs_sector``, ``ret_5d_vs_sector``, ``ret_20d_vs_sector`` — the stock's return
  minus that sector mean;
* ``sector_breadth_1d`` — share of the sector's stocks with a positive 1-day return;
* ``sector_mom_60d`` — sector momentum: sum of ``log(1 + sector_ret_1d)`` over the sector's
  last 60 dates (at least 40 present);
* ``sector_vol_20d`` — sample standard deviation of ``sector_ret_1d`` over the last 20 dates.

Membership is the ``silver.equities_master_asof`` row with ``valid_from <= date <
valid_to`` (``valid_to`` null = still current), so a sector change applies from the
snapshot that shows it, never earlier. Returns are the per-code pass's trailing returns
``_r1/_r5/_r20`` (adjusted close, null on no-trade days); a sector statistic on date ``T``
uses the returns of ``T``'s members, i.e. prices of dates ``<= T``. One pass by
``(date, sector)`` aggregates, a tiny window job over the sector series adds momentum and
volatility. The sector code is used for grouping only and not added as a column.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

FEATURES: list[str] = [
    "sector_ret_1d",
    "sector_ret_5d",
    "sector_ret_20d",
    "ret_1d_vs_sector",
    "ret_5d_vs_sector",
    "ret_20d_vs_sector",
    "sector_breadth_1d",
    "sector_mom_60d",
    "sector_vol_20d",
]

HORIZONS = (1, 5, 20)
MOM_WINDOW, MOM_MIN = 60, 40
VOL_WINDOW = 20


def with_sector(df: DataFrame, master_asof: DataFrame, column: str = "_sector") -> DataFrame:
    """``df`` plus ``column`` = the code's ``sector33_code`` valid on the row's date (as-of).

    The master is small (one row per code and attribute change), so it is broadcast and
    the interval condition is checked inside a hash join on ``code``.
    """
    m = master_asof.select(
        F.col("code").alias("_ms_code"),
        F.col("valid_from").alias("_ms_from"),
        F.col("valid_to").alias("_ms_to"),
        F.col("sector33_code").alias(column),
    )
    cond = (
        (F.col("code") == F.col("_ms_code"))
        & (F.col("date") >= F.col("_ms_from"))
        & (F.col("_ms_to").isNull() | (F.col("date") < F.col("_ms_to")))
    )
    return df.join(F.broadcast(m), cond, "left").drop("_ms_code", "_ms_from", "_ms_to")


def sector_daily(members: DataFrame) -> DataFrame:
    """Per ``(date, _sector)``: mean returns, breadth, momentum and volatility.

    ``members`` holds ``date, _sector, _r1, _r5, _r20`` for every stock row.
    """
    daily = (
        members.filter(F.col("_sector").isNotNull())
        .groupBy("date", "_sector")
        .agg(
            *[F.avg(f"_r{h}").alias(f"sector_ret_{h}d") for h in HORIZONS],
            F.avg(F.when(F.col("_r1").isNotNull(), (F.col("_r1") > 0).cast("double"))).alias(
                "sector_breadth_1d"
            ),
        )
    )
    w = Window.partitionBy("_sector").orderBy("date")
    mom = w.rowsBetween(-(MOM_WINDOW - 1), 0)
    vol = w.rowsBetween(-(VOL_WINDOW - 1), 0)
    log_ret = F.log1p(F.col("sector_ret_1d"))
    return daily.select(
        "*",
        F.when(F.count(log_ret).over(mom) >= MOM_MIN, F.sum(log_ret).over(mom)).alias(
            "sector_mom_60d"
        ),
        F.when(
            F.count("sector_ret_1d").over(vol) == VOL_WINDOW, F.stddev_samp("sector_ret_1d").over(vol)
        ).alias("sector_vol_20d"),
    )


def add_sector_features(rows: DataFrame, returns: DataFrame, master_asof: DataFrame) -> DataFrame:
    """``rows`` (``date``, ``code``, ``_r1``, ``_r5``, ``_r20`` and any other columns) plus
    ``FEATURES``.

    ``returns`` holds ``date, code, _r1, _r5, _r20`` of every stock from ``MOM_WINDOW``
    trading days before the first date of ``rows`` on (the sector windows' history);
    ``master_asof`` is ``silver.equities_master_asof``. Rows whose code has no valid
    master row on their date get null sector columns. The per-sector table is tiny
    (dates × 33) and is broadcast onto ``rows``, which are not shuffled.
    """
    members = with_sector(returns.select("date", "code", *[f"_r{h}" for h in HORIZONS]),
                          master_asof)
    stats = sector_daily(members.drop("code"))
    out = with_sector(rows, master_asof).join(F.broadcast(stats), on=["date", "_sector"],
                                              how="left")
    vs = [(F.col(f"_r{h}") - F.col(f"sector_ret_{h}d")).alias(f"ret_{h}d_vs_sector")
          for h in HORIZONS]
    return out.select(*rows.columns, *[c for c in FEATURES if not c.startswith("ret_")], *vs
                      ).select(*rows.columns, *FEATURES)
