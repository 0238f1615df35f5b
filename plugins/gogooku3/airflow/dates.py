"""Trade dates of Airflow runs, on the Tokyo clock.

Both DAGs use Airflow 3's ``CronTriggerTimetable`` (the cron default): a run is
triggered *at* the cron time and stands for that moment; it has no data interval. Its
trade date is therefore the JST calendar date of the run's ``logical_date`` —
``30 18 * * 1-5`` in Asia/Tokyo fires at 18:30 JST on 2026-11-24 with logical date
2026-11-24T09:30Z, trade date 2026-11-24. Runs without a logical date (asset-triggered
or manual runs in Airflow 3 may have none) use ``run_after``. Never ``.date()`` on a UTC
value: 2026-11-23T20:00Z is already 2026-11-24 in Tokyo.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from gogooku3.jpx.calendar import TOKYO, parse_date, to_trade_date

__all__ = ["TOKYO", "asset_event_window", "run_instant", "run_trade_date", "run_window",
           "triggered_window"]


def run_instant(context: Mapping[str, Any]) -> dt.datetime:
    """The moment a run stands for: ``logical_date``, else the run's ``run_after``."""
    instant = context.get("logical_date")
    if instant is None:
        run = context.get("dag_run")
        instant = getattr(run, "run_after", None) or getattr(run, "logical_date", None)
    if instant is None:
        raise ValueError("run has neither a logical_date nor a run_after")
    return instant


def run_trade_date(context: Mapping[str, Any]) -> dt.date:
    """JST trade date of the run (``pendulum``, Asia/Tokyo)."""
    return to_trade_date(run_instant(context))


def run_window(context: Mapping[str, Any]) -> tuple[dt.date, dt.date]:
    """``[start, end]`` trade dates of a run: the ``start``/``end`` params when given (a
    history load in one run), else the run's own trade date."""
    params = context.get("params") or {}
    day = run_trade_date(context)
    start = params.get("start")
    end = params.get("end")
    start_d = parse_date(str(start), "params.start") if start else None
    end_d = parse_date(str(end), "params.end") if end else None
    if start_d is None and end_d is None:
        return day, day
    start_d = start_d or end_d
    end_d = end_d or start_d
    if start_d > end_d:
        raise ValueError(f"params: start {start_d} is after end {end_d}")
    return start_d, end_d


def asset_event_window(context: Mapping[str, Any]) -> tuple[dt.date, dt.date] | None:
    """``[first, last]`` of the ``trade_dates`` carried by the asset events that
    triggered the run (``None`` when it was not triggered by events with dates)."""
    events = context.get("triggering_asset_events") or {}
    days: set[dt.date] = set()
    for evs in events.values():
        for ev in evs:
            for d in (getattr(ev, "extra", None) or {}).get("trade_dates", []):
                days.add(parse_date(str(d), "asset event trade_dates"))
    return (min(days), max(days)) if days else None


def triggered_window(context: Mapping[str, Any]) -> tuple[dt.date, dt.date]:
    """Trade dates an asset-scheduled run works on (features, inference):
    ``params.start``/``end``, else the dates the triggering events carry, else the run's
    own JST trade date."""
    params = context.get("params") or {}
    if params.get("start") or params.get("end"):
        return run_window(context)
    return asset_event_window(context) or run_window(context)
