"""Volume and liquidity features over the code's traded series (see ``prices``).

Volumes are split-adjusted (``adj_volume``); turnover is yen, which splits do not change.
Values on ``T`` use rows ``<= T`` within the look-back only.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_jobs.features.prices import div, finish, full, prepare, rows_window, series_window

FEATURES: list[str] = [
    "volume_ratio_5d", "volume_ratio_20d", "turnover_z_20d", "log_turnover_20d",
    "amihud_20d", "dist_52w_high", "dist_52w_low",
    "upper_limit_flag", "lower_limit_flag", "limit_hits_20d",
]

YEAR = 250  # trading days in the 52-week window
AMIHUD_SCALE = 1e9  # |return| per billion yen traded


def add_volume_features(df: DataFrame) -> DataFrame:
    """``df`` (silver price rows) plus ``FEATURES`` (definitions in ``configs/features.yaml``).

    Limit flags are 1.0/0.0 on traded rows, null otherwise; ratios and z-scores are
    null while their window is incomplete or the denominator is 0.
    """
    base = prepare(df)
    w = series_window()
    c, v, t = F.col("adj_close"), F.col("adj_volume"), F.col("turnover")
    hit = lambda col: F.when(F.col("_traded"), F.coalesce(F.col(col), F.lit(False)).cast("double"))  # noqa: E731
    cols = {
        "_ltv": F.when(t > 0, F.log(t)),
        "_illiq": F.when(full(2), div(F.abs(c / F.lag(c, 1).over(w) - 1), t) * AMIHUD_SCALE),
        "upper_limit_flag": hit("upper_limit_hit"),
        "lower_limit_flag": hit("lower_limit_hit"),
    }
    out = base.select("*", *[e.alias(k) for k, e in cols.items()])
    ltv = F.col("_ltv")
    any_hit = F.greatest("upper_limit_flag", "lower_limit_flag")
    more = {
        "volume_ratio_5d": F.when(full(5), div(v, F.avg(v).over(rows_window(5)))),
        "volume_ratio_20d": F.when(full(20), div(v, F.avg(v).over(rows_window(20)))),
        "turnover_z_20d": F.when(
            full(20) & (F.count(ltv).over(rows_window(20)) == 20),
            div(ltv - F.avg(ltv).over(rows_window(20)), F.stddev_samp(ltv).over(rows_window(20))),
        ),
        "log_turnover_20d": F.when(full(20), F.log(F.avg(t).over(rows_window(20)))),
        "amihud_20d": F.when(
            full(21) & (F.count("_illiq").over(rows_window(20)) == 20),
            F.avg("_illiq").over(rows_window(20)),
        ),
        "dist_52w_high": F.when(full(YEAR), c / F.max("adj_high").over(rows_window(YEAR)) - 1),
        "dist_52w_low": F.when(full(YEAR), c / F.min("adj_low").over(rows_window(YEAR)) - 1),
        "limit_hits_20d": F.when(full(20), F.sum(any_hit).over(rows_window(20))),
    }
    out = out.select("*", *[e.alias(k) for k, e in more.items()])
    return finish(df, out, FEATURES)
