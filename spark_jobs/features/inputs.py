"""Reading silver for a feature build: the range plus exactly the look-back it needs.

Every feature on trade date ``T`` is a function of silver rows dated in the ``LOOKBACK``
trading days ending at ``T`` (window features are null when their rows would reach
further back; recursive indicators are seeded inside that span — see ``technical``).
So a build of ``[start, end]`` reads prices from ``trading_days_back(start, LOOKBACK)``
and an incremental one-day run computes exactly what a full rebuild computes for that day.

``_tidx`` — the JPX trading-day index of a date counted from ``CALENDAR_ANCHOR`` in the
offline XTKS calendar — is the calendar clock the window guards and the recursion epochs
use; it does not depend on which dates a run happens to read.
"""

from __future__ import annotations

import bisect
import datetime as dt
import logging
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from gogooku3.jpx.calendar import TradingCalendar, offline_trading_days
from gogooku3.lake import spark_io
from gogooku3.lake.errors import LakeError, TableNotFound

log = logging.getLogger(__name__)

#: trading days of history (inclusive of T) any feature of date T may use
LOOKBACK = 260
#: extra calendar days of slow context tables (statements, flows, margin) before the look-back
CONTEXT_HISTORY_DAYS = 400
CALENDAR_ANCHOR = dt.date(2000, 1, 4)
PRICES = "silver.equities_prices_daily"


class FeatureInputError(LakeError, ValueError):
    """Silver input of a feature build is missing or empty (message: table, dates, what)."""


@dataclass(frozen=True)
class BuildInputs:
    """Silver frames for one build of ``[start, end]``; ``prices`` covers the look-back."""

    start: dt.date
    end: dt.date
    read_from: dt.date
    prices: DataFrame
    topix: DataFrame
    master_asof: DataFrame
    flows: DataFrame
    margin: DataFrame
    statements: DataFrame


def trading_index(dates: list[dt.date]) -> dict[dt.date, int]:
    """``date -> _tidx`` for ``dates``; a date the offline calendar lacks counts at its
    insertion point (the J-Quants calendar and the offline one agree on sessions)."""
    if not dates:
        return {}
    sessions = offline_trading_days(CALENDAR_ANCHOR, max(dates))
    return {d: bisect.bisect_left(sessions, d) for d in dates}


def with_trading_index(df: DataFrame) -> DataFrame:
    """``df`` plus integer column ``_tidx`` (see module docstring); no-op if present.

    Collects ``df``'s distinct dates to the driver (a few thousand at most) and
    broadcast-joins the small index back.
    """
    if "_tidx" in df.columns:
        return df
    dates = sorted(r[0] for r in df.select("date").distinct().collect())
    index = df.sparkSession.createDataFrame(
        sorted(trading_index(dates).items()), "date date, _tidx int"
    )
    return df.join(F.broadcast(index), on="date", how="left")


def read_inputs(
    spark: SparkSession,
    start: dt.date,
    end: dt.date,
    calendar: TradingCalendar | None = None,
    lake_root: str | None = None,
) -> BuildInputs:
    """Silver frames for ``[start, end]``: prices and TOPIX from ``LOOKBACK`` trading days
    before ``start``; statements/flows/margin from a further ``CONTEXT_HISTORY_DAYS``
    (as-of joins and year-on-year comparisons need older rows); the master whole.

    Raises ``FeatureInputError`` naming the table and dates when silver prices are
    missing or hold no row in ``[start, end]``.
    """
    cal = calendar or TradingCalendar()
    read_from = cal.trading_days_back(start, LOOKBACK)
    early = read_from - dt.timedelta(days=CONTEXT_HISTORY_DAYS)

    def read(name: str, since: dt.date | None = read_from):
        try:
            if since is None:
                return spark_io.read_table(spark, name, lake_root=lake_root)
            return spark_io.read_table(spark, name, since, end, lake_root=lake_root)
        except TableNotFound as exc:
            raise FeatureInputError(
                f"feature build {start}..{end}: input {name} is missing ({exc})"
            ) from exc

    prices = read(PRICES)
    in_range = prices.filter(F.col("date") >= F.lit(start)).limit(1).count()
    if not in_range:
        raise FeatureInputError(
            f"feature build {start}..{end}: {PRICES} has no rows dated {start}..{end}"
        )
    log.info("inputs: %s from %s (look-back %d trading days) to %s", PRICES, read_from, LOOKBACK, end)
    return BuildInputs(
        start=start,
        end=end,
        read_from=read_from,
        prices=prices,
        topix=read("silver.indices_topix_daily"),
        master_asof=read("silver.equities_master_asof", None),
        flows=read("silver.investor_flows", early),
        margin=read("silver.margin_interest", early),
        statements=read("silver.fins_statements", early),
    )
