"""Investor-flow features: market-wide, one value per trade date, broadcast onto the rows.

``add_flow_features(df, flows)`` — investor-type flows (``silver.investor_flows``, weekly,
summed over the sections): net buying of foreigners, individuals, proprietary desks,
trust banks and investment trusts as a share of total turnover; foreign and individual
net ratios z-scored against the previous 52 publications (itself included, at least 13);
foreign minus individual; days since publication.

Silver keys the table by the first trade date its rows may be used on (``date``, the
trade date after publication): a row on trade date ``T`` sees the latest week with
``date <= T`` and nothing later. The weekly series is a few hundred rows, so its windows
run in one partition and the per-date result is broadcast: the build's rows are neither
shuffled nor read twice.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

FEATURES: list[str] = [
    "flow_foreign_net_ratio",
    "flow_individual_net_ratio",
    "flow_proprietary_net_ratio",
    "flow_trust_bank_net_ratio",
    "flow_investment_trust_net_ratio",
    "flow_foreign_net_z",
    "flow_individual_net_z",
    "flow_foreign_minus_individual",
    "flow_days_since_pub",
]
FLOW_Z_WINDOW, FLOW_Z_MIN = 52, 13
FLOW_MAX_STALE_DAYS = 366


def _ratio(a: Column, b: Column) -> Column:
    return F.when(b != 0, a / b)


def flow_series(flows: DataFrame) -> DataFrame:
    """Weekly market-wide flow ratios keyed by usable ``date`` (sections summed)."""
    groups = {
        "foreign": "foreign_balance",
        "individual": "individual_balance",
        "proprietary": "proprietary_balance",
        "trust_bank": "trust_bank_balance",
        "investment_trust": "investment_trust_balance",
    }
    weekly = flows.groupBy("date", "start_date").agg(
        F.max("published_date").alias("published_date"),
        F.sum("total_turnover").alias("_tot"),
        *[F.sum(col).alias(f"_{g}") for g, col in groups.items()],
    )
    weekly = weekly.select(
        "date",
        "start_date",
        "published_date",
        *[_ratio(F.col(f"_{g}"), F.col("_tot")).alias(f"flow_{g}_net_ratio") for g in groups],
    )
    w = (
        Window.partitionBy(F.lit(0))
        .orderBy("date", "start_date")
        .rowsBetween(-(FLOW_Z_WINDOW - 1), Window.currentRow)
    )
    for g in ("foreign", "individual"):
        x = F.col(f"flow_{g}_net_ratio")
        sd = F.stddev_samp(x).over(w)
        weekly = weekly.withColumn(
            f"flow_{g}_net_z",
            F.when((F.count(x).over(w) >= FLOW_Z_MIN) & (sd > 0), (x - F.avg(x).over(w)) / sd),
        )
    return weekly.withColumn(
        "flow_foreign_minus_individual",
        F.col("flow_foreign_net_ratio") - F.col("flow_individual_net_ratio"),
    )


def add_flow_features(df: DataFrame, flows: DataFrame) -> DataFrame:
    """``df`` plus ``FEATURES`` (same value for every code of a date).

    ``flows`` is ``silver.investor_flows``; it should start a year before ``df`` for full
    z-score windows. The latest week of each usable date holds until the next usable
    date (at most ``FLOW_MAX_STALE_DAYS`` past its own); those intervals are expanded to
    calendar days — a few thousand rows — and broadcast-joined on ``date``, so the price
    frame is neither shuffled nor read twice.
    """
    series = flow_series(flows)
    latest = series.withColumn(
        "_rn",
        F.row_number().over(Window.partitionBy("date").orderBy(F.col("start_date").desc())),
    ).filter("_rn = 1")
    nxt = F.lead("date").over(Window.partitionBy(F.lit(0)).orderBy("date"))
    latest = latest.withColumn(
        "_until", F.coalesce(nxt, F.date_add("date", FLOW_MAX_STALE_DAYS + 1))
    )
    days = latest.select(
        F.explode(F.sequence(F.col("date"), F.date_sub("_until", 1))).alias("date"),
        "published_date",
        *[c for c in FEATURES if c != "flow_days_since_pub"],
    )
    out = df.join(F.broadcast(days), on="date", how="left").withColumn(
        "flow_days_since_pub", F.datediff("date", "published_date").cast("double")
    )
    return out.select(*df.columns, *FEATURES)
