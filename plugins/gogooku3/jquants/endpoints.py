"""The one catalogue of J-Quants v2 endpoints gogooku3 ingests: path, query style, the bronze
and silver tables it feeds, partition field and the cheapest plan that serves it.

Every list of endpoints or ingested tables (CLI defaults, the runner, Airflow's fetch
tasks and Assets) is derived from ``ENDPOINTS`` here.

Spec: jpx-jquants.com/en/spec (eq-bars-daily, eq-master, mkt-cal, idx-bars-daily-topix,
fin-summary, eq-investor-types, mkt-margin-interest). Query styles:

* ``by_date``   one request per day with ``date=`` for all codes (the cheapest way to
                spend a requests-per-minute budget: ~1 request per trade date);
* ``by_pub``    margin interest (``gogooku3.jpx.margin``): for a publication day, one
                ``published_date=`` request (daily era, from 2026-09-25) plus one
                ``date=`` request per record date whose weekly balance JPX published that
                day (weekly era: the service has no ``PubDate`` there and answers
                ``published_date=`` with nothing);
* ``by_range``  one request for the whole range with ``from=``/``to=`` (small tables).

``partition_field`` is the response field whose value becomes the bronze ``date``
partition (an API ``Date`` partition field is stored only as ``date``: Delta column names
are case-insensitive; ``renames`` maps other colliding fields). ``days`` says which days a by-day endpoint is queried for: ``trading`` (the
calendar's trade dates) or ``calendar`` (every day, since disclosures and publications
also happen on non-trading days). ``dense`` endpoints must answer every trade date:
an empty page for a trading day is an error, not an empty partition.
``derives_publication``: rows without the partition field (weekly margin records) take
the publication date derived from their record date.

Plans (``PLANS``; jpx-jquants.com, plan table): each serves a subset of endpoints and a
history depth and has a requests-per-minute limit; a resource outside the plan answers
HTTP 403. ``Endpoint.plan`` is the cheapest plan that includes it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from gogooku3.jpx.calendar import TradingCalendar
from gogooku3.jpx.margin import DAILY_FROM, weekly_records_published_on

QueryStyle = Literal["by_date", "by_pub", "by_range"]


@dataclass(frozen=True)
class Plan:
    """A J-Quants subscription plan: its rank (higher serves more), requests per minute and
    history depth (documentation only: the service decides what it answers)."""

    name: str
    rank: int
    requests_per_minute: int
    history: str


PLANS: dict[str, Plan] = {
    p.name: p
    for p in (
        Plan("free", 0, 5, "about 2 years, delayed 12 weeks"),
        Plan("light", 1, 60, "about 5 years"),
        Plan("standard", 2, 120, "about 10 years"),
        Plan("premium", 3, 500, "from 2008"),
    )
}


class UnknownEndpointError(KeyError):
    """An endpoint name that the catalogue does not define."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Endpoint:
    """One ingested J-Quants endpoint and the bronze table it lands in."""

    name: str
    path: str
    table: str
    silver: str | None
    plan: str
    partition_field: str
    style: QueryStyle
    days: Literal["trading", "calendar"] = "trading"
    dense: bool = False
    renames: tuple[tuple[str, str], ...] = ()
    derives_publication: bool = False

    def bronze_name(self, field: str) -> str:
        """Bronze column of API ``field``: the partition field is ``date``; see ``renames``."""
        if field == self.partition_field and field == "Date":
            return "date"
        return dict(self.renames).get(field, field)

    def day_queries(self, day: dt.date, cal: TradingCalendar) -> list[dict[str, str]]:
        """Queries of a by-day endpoint whose rows belong to ``day`` (``YYYY-MM-DD``);
        possibly none (a weekly-era margin day that published nothing)."""
        if self.style == "by_date":
            return [{"date": day.isoformat()}]
        if self.style == "by_pub":
            out = [{"published_date": day.isoformat()}] if day >= DAILY_FROM else []
            return out + [{"date": r.isoformat()} for r in weekly_records_published_on(day, cal)]
        raise ValueError(f"{self.name}: {self.path} is queried by range, not by day")

    def params_for_range(self, start: dt.date, end: dt.date) -> dict[str, str]:
        """Query of a by-range endpoint for ``[start, end]``."""
        if self.style != "by_range":
            raise ValueError(f"{self.name}: {self.path} is queried by day, not by range")
        return {"from": start.isoformat(), "to": end.isoformat()}


ENDPOINTS: dict[str, Endpoint] = {
    e.name: e
    for e in (
        Endpoint("calendar", "/markets/calendar", "bronze.markets_calendar", None, "free",
                 "Date", "by_range", days="calendar"),
        Endpoint("master", "/equities/master", "bronze.equities_master",
                 "silver.equities_master_asof", "free", "Date", "by_date", dense=True),
        Endpoint("bars_daily", "/equities/bars/daily", "bronze.equities_bars_daily",
                 "silver.equities_prices_daily", "free", "Date", "by_date", dense=True),
        Endpoint("topix", "/indices/bars/daily/topix", "bronze.indices_topix",
                 "silver.indices_topix_daily", "light", "Date", "by_range", dense=True),
        Endpoint("fins_summary", "/fins/summary", "bronze.fins_summary",
                 "silver.fins_statements", "free", "DiscDate", "by_date", days="calendar"),
        Endpoint("investor_types", "/equities/investor-types", "bronze.investor_types",
                 "silver.investor_flows", "light", "PubDate", "by_range", days="calendar"),
        Endpoint("margin_interest", "/markets/margin-interest", "bronze.margin_interest",
                 "silver.margin_interest", "standard", "PubDate", "by_pub", days="calendar",
                 renames=(("Date", "AsOfDate"),), derives_publication=True),
    )
}

DEFAULT_ENDPOINTS: tuple[str, ...] = tuple(ENDPOINTS)
#: the endpoints fetched per trade date (the calendar is refreshed before them)
FETCHED_ENDPOINTS: tuple[str, ...] = tuple(n for n in ENDPOINTS if n != "calendar")
BRONZE_TABLES: tuple[str, ...] = tuple(ENDPOINTS[n].table for n in FETCHED_ENDPOINTS)
SILVER_TABLES: tuple[str, ...] = tuple(
    e.silver for e in ENDPOINTS.values() if e.silver is not None)


def plan(name: str) -> Plan:
    """The plan called ``name`` (free, light, standard, premium); raises naming them."""
    try:
        return PLANS[name]
    except KeyError:
        raise ValueError(f"unknown J-Quants plan {name!r}; known: {', '.join(PLANS)}") from None


def requests_per_minute(plan_name: str | None, explicit: int | None = None) -> int | None:
    """The client's pace: ``explicit`` (setting ``jquants_requests_per_minute``) if set,
    else the plan's limit; None (no pace) without either."""
    if explicit is not None:
        return explicit
    return None if plan_name is None else plan(plan_name).requests_per_minute


def plan_endpoints(plan_name: str | None) -> tuple[str, ...]:
    """Endpoints a plan serves, in catalogue order (every endpoint when ``plan_name`` is
    None: the simulated server, which has no plans unless configured)."""
    if plan_name is None:
        return DEFAULT_ENDPOINTS
    rank = plan(plan_name).rank
    return tuple(n for n, e in ENDPOINTS.items() if PLANS[e.plan].rank <= rank)


def endpoint(name: str) -> Endpoint:
    """The endpoint called ``name`` (e.g. ``bars_daily``); raises naming the known ones."""
    try:
        return ENDPOINTS[name]
    except KeyError:
        raise UnknownEndpointError(
            f"unknown J-Quants endpoint {name!r}; known: {', '.join(ENDPOINTS)}"
        ) from None
