"""Task bodies of ``spark_features_daily``: plan the window, check gold after the build."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from gogooku3.airflow.dates import triggered_window

log = logging.getLogger(__name__)


def plan_features(context: Mapping[str, Any]) -> dict[str, str] | None:
    """``{"start", "end"}`` (ISO) of the run's trading days, or None when there are none."""
    from gogooku3.jpx.calendar import TradingCalendar
    from gogooku3.settings import get_settings

    start, end = triggered_window(context)
    days = TradingCalendar.from_lake(get_settings().lake_uri).trading_days(start, end)
    if not days:
        log.info("features %s..%s: no JPX trading day; skipping", start, end)
        return None
    log.info("features for %d trade date(s) %s..%s", len(days), days[0], days[-1])
    return {"start": days[0].isoformat(), "end": days[-1].isoformat()}


def check(window: Mapping[str, str], context: Mapping[str, Any]) -> dict[str, Any]:
    """The gold check over the window; the gold Asset events carry its ``trade_dates``
    (what ``daily_inference`` predicts) and the rows and empty groups found."""
    from gogooku3.airflow.assets import GOLD_TABLES, lake_asset
    from gogooku3.quality.gold_check import check_gold

    start, end = dt.date.fromisoformat(window["start"]), dt.date.fromisoformat(window["end"])
    summary = check_gold(start, end).summary()
    events = context.get("outlet_events")
    if events is not None:
        for t in GOLD_TABLES:
            events[lake_asset(t)].extra = {
                "trade_dates": summary["trade_dates"], "start": window["start"],
                "end": window["end"], "rows": summary["rows"].get(t, 0),
                "empty_groups": summary["empty_groups"]}
    return summary
