"""Reading silver for a feature build: the range plus exactly the look-back it needs.

Every feature on trade date ``T`` is a function of silver rows dated in the ``LOOKBACK``
trading days ending at ``T`` (window features are null when their rows would reach
further back; recursive indicators are seeded inside that span — see ``technical``).
So a build of ``[start, end]`` reads prices from ``trading_days_back(start, LOOKBACK)``
and an incremental one-day run computes exactly what a full rebuild computes for that day.

Prices, TOPIX and the master are required: a build without them fails before any write.
Investor flows, margin interest and statements are optional (a user's J-Quants plan may
not include them): a table that is missing or holds no row in the span a build reads is
``None`` in ``BuildInputs`` with the reason in ``absent``, and its feature group comes out
null.
"""

from __future__ import annotations

import datetime as dt
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa

from gogooku3.jpx.calendar import TradingCalendar
from gogooku3.lake import deltars
from gogooku3.lake.errors import LakeError, TableNotFound
from spark_jobs.features.sector import MASTER_COLUMNS
from spark_jobs.features.sessions import LOOKBACK

log = logging.getLogger(__name__)

#: extra calendar days of slow context tables (statements, flows, margin) before the look-back
CONTEXT_HISTORY_DAYS = 400
PRICES = "silver.equities_prices_daily"
#: optional silver tables → the feature group each one feeds
OPTIONAL: dict[str, str] = {
    "silver.investor_flows": "flows",
    "silver.margin_interest": "margin",
    "silver.fins_statements": "statements",
}


class FeatureInputError(LakeError, ValueError):
    """Silver input of a feature build is missing or empty (message: table, dates, what)."""


@dataclass(frozen=True)
class BuildInputs:
    """Silver inputs of one build of ``[start, end]``, read on the driver: ``prices`` and
    ``topix`` (``date``, ``close``) cover the look-back, ``dates`` are its dates (sorted,
    from the Delta log). ``prices``, ``margin`` and ``statements`` feed the per-code
    pass (Arrow, which ``series`` files per bucket for its workers); ``topix``,
    ``master_asof`` (``sector.MASTER_COLUMNS``) and ``flows`` are small, used on the
    driver (pandas).

    ``flows``/``margin``/``statements`` are ``None`` when their table is absent; ``absent``
    maps each such feature group to the reason."""

    start: dt.date
    end: dt.date
    read_from: dt.date
    dates: list[dt.date]
    prices: pa.Table
    topix: pd.DataFrame
    master_asof: pd.DataFrame
    flows: pd.DataFrame | None
    margin: pa.Table | None
    statements: pa.Table | None
    absent: dict[str, str] = field(default_factory=dict)


def _absence(name: str, since: dt.date, end: dt.date, lake_root: str | None) -> str | None:
    """Why optional table ``name`` cannot feed a build reading ``[since, end]`` (from its
    Delta log, no data read), or ``None`` when it holds rows there."""
    info = deltars.table_info(name, lake_root=lake_root)
    if info.version is None:
        return f"{name} is missing"
    if not info.rows or info.last_date is None or info.last_date < since or info.first_date > end:
        return f"{name} has no rows dated {since}..{end}"
    return None


def read_inputs(
    start: dt.date,
    end: dt.date,
    calendar: TradingCalendar | None = None,
    lake_root: str | None = None,
) -> BuildInputs:
    """Silver inputs for ``[start, end]``: prices and TOPIX from ``LOOKBACK`` trading days
    before ``start``; statements/flows/margin from a further ``CONTEXT_HISTORY_DAYS``
    (as-of joins and year-on-year comparisons need older rows); the master whole. The
    tables are read by delta-rs, several at a time (pyarrow reads outside the GIL).

    Raises ``FeatureInputError`` naming the table and dates when a required table is
    missing, or silver prices hold no row in ``[start, end]`` or a row in the read that
    is not on a trading day.
    """
    cal = calendar or TradingCalendar()
    read_from = cal.trading_days_back(start, LOOKBACK)
    early = read_from - dt.timedelta(days=CONTEXT_HISTORY_DAYS)

    def read(name: str, since: dt.date | None = read_from, columns: list[str] | None = None,
             ) -> pa.Table:
        """``columns`` of ``name`` from ``since`` to ``end`` (``since`` ``None``: whole)."""
        try:
            return deltars.read_table(name, since, None if since is None else end,
                                      columns=columns, lake_root=lake_root)
        except TableNotFound as exc:
            raise FeatureInputError(
                f"feature build {start}..{end}: input {name} is missing ({exc})"
            ) from exc

    with ThreadPoolExecutor(4, thread_name_prefix="inputs") as pool:
        prices = pool.submit(read, PRICES)
        try:
            dates = [d for d in deltars.table_dates(PRICES, lake_root) if read_from <= d <= end]
        except TableNotFound as exc:
            raise FeatureInputError(
                f"feature build {start}..{end}: input {PRICES} is missing ({exc})") from exc
        if not dates or dates[-1] < start:
            raise FeatureInputError(
                f"feature build {start}..{end}: {PRICES} has no rows dated {start}..{end}"
            )
        sessions = set(cal.trading_days(read_from, end))
        stray = [d for d in dates if d not in sessions]
        if stray:  # they would enter the windows as sessions, and the range's as gold rows
            raise FeatureInputError(
                f"feature build {start}..{end}: {PRICES} has rows on days that are not JPX"
                f" trading days: {', '.join(map(str, stray[:5]))}"
            )
        log.info("inputs: %s from %s (look-back %d trading days) to %s", PRICES, read_from,
                 LOOKBACK, end)
        # a few hundred rows: the driver computes the index series (market.market_series)
        topix = pool.submit(read, "silver.indices_topix_daily", columns=["date", "close"])
        master = pool.submit(read, "silver.equities_master_asof", None, columns=MASTER_COLUMNS)
        optional: dict[str, Future | None] = {}
        absent: dict[str, str] = {}
        for name, group in OPTIONAL.items():
            why = _absence(name, early, end, lake_root)
            optional[group] = None if why else pool.submit(read, name, early)
            if why:
                absent[group] = why
        tables = {g: None if f is None else f.result() for g, f in optional.items()}
        if tables.get("flows") is not None:
            tables["flows"] = tables["flows"].to_pandas()
        return BuildInputs(start=start, end=end, read_from=read_from, dates=dates,
                           prices=prices.result(), topix=topix.result().to_pandas(),
                           master_asof=master.result().to_pandas(), absent=absent, **tables)
