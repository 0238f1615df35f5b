"""Flow, margin and financial-statement features, each joined as of its usable date.

Silver keys these tables by the first trade date their rows may be used on (``date``):
investor flows and margin interest from the trade date after publication, statements
from their effective date (disclosed before that day's close). Every join here is an
*as-of* join on that date: a row on trade date ``T`` sees the latest source row with
``date <= T`` and nothing later. Period dates (week start, ``as_of_date``, fiscal year
end) are never used to place a row in time.

* ``add_flow_features(df, flows)`` — market-wide investor-type flows (``silver.investor_flows``,
  weekly, summed over the sections): net buying of foreigners, individuals, proprietary
  desks, trust banks and investment trusts as a share of total turnover; foreign and
  individual net ratios z-scored against the previous 52 publications (itself included,
  at least 13); foreign minus individual; days since publication.
* ``add_margin_features(df, margin)`` — per code (``silver.margin_interest``): long/short
  margin ratio, week-on-week changes, long, short and net balance over the 20-row average
  raw volume (``_adv20`` of the per-code pass), and the age in days of the margin week.
* ``add_statement_features(df, statements)`` — per code (``silver.fins_statements``):
  growth against the same period of the previous fiscal year (EPS, sales, operating
  profit), annualized ROE, progress of year-to-date results against the full-year
  forecast (and against the pace the quarter implies), revisions of the full-year
  forecast since the previous statement of the same fiscal year, days since disclosure.

The as-of join is a union of price rows and source rows sorted by ``(code, date)`` with
source rows first on ties, carrying the latest source row forward (``last(...,
ignorenulls)`` over a running frame): linear in rows, no range join. The build hands
these functions its own rows ``[start, end]`` only (no look-back: the source rows carry
the history).
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

FLOW_FEATURES: list[str] = [
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
MARGIN_FEATURES: list[str] = [
    "margin_ratio",
    "margin_long_chg_1w",
    "margin_short_chg_1w",
    "margin_long_to_adv20",
    "margin_short_to_adv20",
    "margin_net_to_adv20",
    "margin_age_days",
]
STATEMENT_FEATURES: list[str] = [
    "eps_growth_yoy",
    "sales_growth_yoy",
    "op_growth_yoy",
    "roe",
    "progress_sales",
    "progress_op",
    "progress_np",
    "progress_np_vs_pace",
    "forecast_eps_revision",
    "forecast_sales_revision",
    "days_since_disclosure",
]
FEATURES: list[str] = FLOW_FEATURES + MARGIN_FEATURES + STATEMENT_FEATURES

FLOW_Z_WINDOW, FLOW_Z_MIN = 52, 13
FLOW_MAX_STALE_DAYS = 366
_UNBOUNDED = Window.unboundedPreceding


def _ratio(a: Column, b: Column) -> Column:
    return F.when(b != 0, a / b)


def _growth(now: Column, before: Column) -> Column:
    """Relative change ``(now - before) / |before|`` (sign-correct for negative bases)."""
    return F.when(before != 0, (now - before) / F.abs(before))


def asof_by_key(
    df: DataFrame,
    events: DataFrame,
    values: Sequence[str],
    key: Sequence[str],
    ties: Sequence[str] = (),
) -> DataFrame:
    """``df`` plus column ``_evt`` (struct of ``values``) from the latest ``events`` row with the
    same ``key`` and ``events.date <= df.date``; null when there is none.

    ``ties`` order several source rows of one key and date (the greatest wins). Source
    rows sort before price rows of the same date, so a row usable on ``T`` is seen on ``T``.
    """
    tie_cols = [F.col(t).alias(f"_tie{i}") for i, t in enumerate(ties)]
    ev = events.select(
        *key, "date", *tie_cols, F.struct(*values).alias("_evt"), F.lit(0).alias("_src")
    )
    base = df.withColumn("_src", F.lit(1))
    u = base.unionByName(ev, allowMissingColumns=True)
    part = [F.col(k) for k in key] if key else [F.lit(0)]
    w = (
        Window.partitionBy(*part)
        .orderBy("date", "_src", *[f"_tie{i}" for i in range(len(ties))])
        .rowsBetween(_UNBOUNDED, Window.currentRow)
    )
    u = u.withColumn("_evt", F.last("_evt", ignorenulls=True).over(w))
    return u.filter(F.col("_src") == 1).select(*df.columns, "_evt")


# ---- investor flows ---------------------------------------------------------------------


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
    """``df`` plus ``FLOW_FEATURES`` (same value for every code of a date).

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
        *[c for c in FLOW_FEATURES if c != "flow_days_since_pub"],
    )
    out = df.join(F.broadcast(days), on="date", how="left").withColumn(
        "flow_days_since_pub", F.datediff("date", "published_date").cast("double")
    )
    return out.select(*df.columns, *FLOW_FEATURES)


# ---- margin interest --------------------------------------------------------------------


def add_margin_features(df: DataFrame, margin: DataFrame) -> DataFrame:
    """``df`` (``date``, ``code``, ``_adv20``) plus ``MARGIN_FEATURES`` from the code's
    latest usable margin week.

    ``margin`` is ``silver.margin_interest``. Week-on-week changes compare with the code's
    previous margin row (also usable by then). ``_adv20`` is the average raw ``volume``
    of the code's last 20 rows up to ``T`` (margin balances are raw shares too).
    """
    w = Window.partitionBy("code").orderBy("date", "as_of_date")
    m = margin.select(
        "code",
        "date",
        "as_of_date",
        F.col("long_volume").alias("long"),
        F.col("short_volume").alias("short"),
        F.lag("long_volume").over(w).alias("prev_long"),
        F.lag("short_volume").over(w).alias("prev_short"),
    )
    out = asof_by_key(
        df,
        m,
        ["as_of_date", "long", "short", "prev_long", "prev_short"],
        key=("code",),
        ties=("as_of_date",),
    )
    e = lambda c: F.col(f"_evt.{c}")  # noqa: E731
    adv = F.col("_adv20")
    out = out.select(
        "*",
        F.when(e("short") > 0, e("long") / e("short")).alias("margin_ratio"),
        F.when(e("prev_long") > 0, e("long") / e("prev_long") - 1).alias("margin_long_chg_1w"),
        F.when(e("prev_short") > 0, e("short") / e("prev_short") - 1).alias("margin_short_chg_1w"),
        F.when(adv > 0, e("long") / adv).alias("margin_long_to_adv20"),
        F.when(adv > 0, e("short") / adv).alias("margin_short_to_adv20"),
        F.when(adv > 0, (e("long") - e("short")) / adv).alias("margin_net_to_adv20"),
        F.datediff("date", e("as_of_date")).cast("double").alias("margin_age_days"),
    )
    return out.select(*df.columns, *MARGIN_FEATURES)


# ---- statements -------------------------------------------------------------------------

_QUARTER = {"1Q": 1, "2Q": 2, "3Q": 3, "FY": 4}
_STMT_VALUES = (
    "eps sales operating_profit net_income equity forecast_sales forecast_operating_profit "
    "forecast_net_income forecast_eps"
).split()


def statement_metrics(statements: DataFrame) -> DataFrame:
    """One row per statement with the ``STATEMENT_FEATURES`` that depend on it alone or on
    earlier statements (all usable on or before its own ``date``)."""
    q = F.coalesce(*[F.when(F.col("period_type") == k, F.lit(v)) for k, v in _QUARTER.items()])
    s = statements.select(
        "code", "date", "disc_no", "disclosed_at", "period_type", "fiscal_year_end", "disc_date",
        *_STMT_VALUES, q.cast("double").alias("quarter"),
    )
    order = ["date", "disclosed_at", "disc_no"]
    # same period of the previous fiscal year, usable by this statement's date: the latest
    prev = s.select(
        F.col("code").alias("p_code"),
        F.col("period_type").alias("p_period"),
        F.col("fiscal_year_end").alias("p_fye"),
        F.col("date").alias("p_date"),
        F.col("disclosed_at").alias("p_disclosed_at"),
        F.col("disc_no").alias("p_disc_no"),
        F.col("eps").alias("p_eps"),
        F.col("sales").alias("p_sales"),
        F.col("operating_profit").alias("p_op"),
    )
    cond = (
        (F.col("code") == F.col("p_code"))
        & (F.col("period_type") == F.col("p_period"))
        & (F.col("p_fye") == F.add_months(F.col("fiscal_year_end"), -12))
        & (F.col("p_date") <= F.col("date"))
    )
    joined = s.join(prev, cond, "left")
    pick = Window.partitionBy("code", "disc_no", "date").orderBy(
        F.col("p_date").desc_nulls_last(),
        F.col("p_disclosed_at").desc_nulls_last(),
        F.col("p_disc_no").desc_nulls_last(),
    )
    joined = joined.withColumn("_rn", F.row_number().over(pick)).filter("_rn = 1")
    same_fy = Window.partitionBy("code", "fiscal_year_end").orderBy(*order)
    joined = joined.select(
        "*",
        F.lag("forecast_eps").over(same_fy).alias("prev_forecast_eps"),
        F.lag("forecast_sales").over(same_fy).alias("prev_forecast_sales"),
    )
    progress_np = _ratio(F.col("net_income"), F.col("forecast_net_income"))
    return joined.select(
        "code",
        "date",
        "disclosed_at",
        "disc_no",
        "disc_date",
        _growth(F.col("eps"), F.col("p_eps")).alias("eps_growth_yoy"),
        F.when(F.col("p_sales") > 0, F.col("sales") / F.col("p_sales") - 1).alias("sales_growth_yoy"),
        _growth(F.col("operating_profit"), F.col("p_op")).alias("op_growth_yoy"),
        F.when(
            F.col("equity") > 0, F.col("net_income") * 4 / F.col("quarter") / F.col("equity")
        ).alias("roe"),
        _ratio(F.col("sales"), F.col("forecast_sales")).alias("progress_sales"),
        _ratio(F.col("operating_profit"), F.col("forecast_operating_profit")).alias("progress_op"),
        progress_np.alias("progress_np"),
        (progress_np / (F.col("quarter") / 4)).alias("progress_np_vs_pace"),
        _growth(F.col("forecast_eps"), F.col("prev_forecast_eps")).alias("forecast_eps_revision"),
        _growth(F.col("forecast_sales"), F.col("prev_forecast_sales")).alias(
            "forecast_sales_revision"
        ),
    )


def add_statement_features(df: DataFrame, statements: DataFrame) -> DataFrame:
    """``df`` plus ``STATEMENT_FEATURES`` from the code's latest statement usable on each date.

    ``statements`` is ``silver.fins_statements`` (``date`` = effective trade date); it
    should start at least a year and a quarter before ``df`` so that year-on-year partners
    and the latest statement are present. ``days_since_disclosure`` counts calendar days
    from ``disc_date``.
    """
    metrics = statement_metrics(statements)
    carried = [c for c in STATEMENT_FEATURES if c != "days_since_disclosure"] + ["disc_date"]
    out = asof_by_key(df, metrics, carried, key=("code",), ties=("disclosed_at", "disc_no"))
    out = out.select(
        "*",
        *[F.col(f"_evt.{c}").alias(c) for c in carried if c != "disc_date"],
        F.datediff("date", F.col("_evt.disc_date")).cast("double").alias("days_since_disclosure"),
    )
    return out.select(*df.columns, *STATEMENT_FEATURES)
