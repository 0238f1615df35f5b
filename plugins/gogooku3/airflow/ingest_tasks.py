"""Task bodies of ``jquants_daily_ingest``: plan -> fetch (per endpoint) -> gate -> silver.

Each function takes the Airflow context (or the plan the first task pushed) and calls
the ingestion stages of ``gogooku3.ingest.staging`` — the same code ``gogooku3 ingest``
runs; nothing here touches data itself. The plan is a small JSON dict passed by XCom:
``{"start", "end", "days": [ISO dates], "staging": URI, "endpoints": [names]}``, where
``endpoints`` are those of the configured J-Quants plan (setting ``jquants_plan``; all
when unset): the DAG maps one fetch task per catalogue endpoint, and those outside the
plan skip.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from gogooku3.airflow.assets import lake_asset
from gogooku3.airflow.dates import run_window

log = logging.getLogger(__name__)


class IngestGateFailed(Exception):
    """The quality gate blocked trade dates of this run (message: table, date, check)."""


def _days(plan: Mapping[str, Any]) -> list[dt.date]:
    return [dt.date.fromisoformat(d) for d in plan["days"]]


def _lake_root() -> str:
    from gogooku3.settings import get_settings

    return get_settings().lake_uri


def plan_run(context: Mapping[str, Any], conn_id: str = "jquants_default") -> dict | None:
    """Decide what the run ingests; ``None`` (short-circuit: skip the rest) when its window
    holds no JPX trading day. The calendar is refreshed from J-Quants first (HolDiv "1"
    and "2" trade); if that fails the lake's copy, then the offline JPX calendar, answer."""
    from gogooku3.airflow.hooks import JQuantsHook
    from gogooku3.ingest.driver import plan_days
    from gogooku3.ingest.staging import refresh_calendar, staging_uri
    from gogooku3.jpx.calendar import TradingCalendar
    from gogooku3.jquants.endpoints import endpoint
    from gogooku3.jquants.errors import JQuantsAuthError, JQuantsError

    start, end = run_window(context)
    lake_root = _lake_root()
    try:
        cal = refresh_calendar(JQuantsHook(conn_id).get_conn(), start, end, lake_root)
    except JQuantsAuthError:
        raise
    except JQuantsError as exc:
        log.warning("calendar refresh failed (%s); using the lake's calendar", exc)
        cal = TradingCalendar.from_lake(lake_root)
    params = context.get("params") or {}
    resume = bool(params.get("resume", False))
    names = plan_fetched_endpoints()
    eps = [endpoint(n) for n in names]
    days, skipped = plan_days(start, end, eps, cal, lake_root, resume=resume)
    if not days:
        why = "already ingested (resume)" if skipped else "no JPX trading day (HolDiv 1/2)"
        log.info("trade dates %s..%s: %s; skipping the run", start, end, why)
        return None
    run_id = context["run_id"]
    plan = {"start": start.isoformat(), "end": end.isoformat(),
            "days": [d.isoformat() for d in days],
            "staging": staging_uri(f"{context['dag'].dag_id}/{run_id}", lake_root),
            "endpoints": list(names)}
    log.info("ingesting %d trade date(s) %s..%s (%d skipped as done)", len(days), days[0],
             days[-1], len(skipped))
    return plan


def plan_fetched_endpoints() -> list[str]:
    """The fetched endpoints (catalogue order, no calendar) of the configured plan."""
    from gogooku3.jquants.endpoints import FETCHED_ENDPOINTS, plan_endpoints
    from gogooku3.settings import get_settings

    served = set(plan_endpoints(get_settings().jquants_plan))
    return [n for n in FETCHED_ENDPOINTS if n in served]


def fetch(endpoint_name: str, plan: Mapping[str, Any] | None, context: Mapping[str, Any],
          conn_id: str = "jquants_default") -> dict[str, Any]:
    """Fetch one endpoint for the plan's dates into staging; raises (so Airflow retries)
    when requests still fail after the client's own retries.

    Without a plan (``airflow tasks test`` of this task alone: no upstream XCom) the task
    plans its own run's dates first, skipping on a non-trading day. An endpoint outside
    the configured plan skips, saying so.
    """
    from airflow.exceptions import AirflowSkipException

    from gogooku3.airflow.hooks import JQuantsHook
    from gogooku3.ingest.staging import stage_fetch

    if plan is None:
        plan = plan_run(context, conn_id)
        if plan is None:
            raise AirflowSkipException("no JPX trading day to fetch for this run")
    if endpoint_name not in plan["endpoints"]:
        from gogooku3.settings import get_settings

        raise AirflowSkipException(
            f"{endpoint_name} is not in the J-Quants plan {get_settings().jquants_plan!r} "
            "(setting jquants_plan / JQUANTS_PLAN): skipped")
    out = stage_fetch(endpoint_name, _days(plan), client=JQuantsHook(conn_id).get_conn(),
                      staging=plan["staging"], lake_root=_lake_root())
    log.info("%s: %d rows over %d dates staged; %d per-date errors", out["table"], out["rows"],
             out["dates"], len(out["errors"]))
    return {k: v for k, v in out.items() if k != "errors"} | {"errors": len(out["errors"])}


def gate(plan: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """Quality gate + bronze writes. Raises ``IngestGateFailed`` naming table, date and
    check of every blocked date (their ledger rows are written first); on success the
    bronze Asset events carry the trade dates."""
    from gogooku3.airflow.assets import BRONZE_TABLES
    from gogooku3.ingest.staging import record_failures, stage_gate

    days = _days(plan)
    outcome = stage_gate(days, staging=plan["staging"], endpoints=plan["endpoints"],
                         lake_root=_lake_root())
    if outcome.blocked:
        record_failures(outcome, _lake_root())
        lines = [f"{d}: {m}" for d, msgs in sorted(outcome.blocked.items()) for m in msgs]
        raise IngestGateFailed(f"quality gate blocked {len(outcome.blocked)} of {len(days)} "
                               "trade date(s); nothing of this run is published:\n  "
                               + "\n  ".join(lines))
    _asset_extra(context, BRONZE_TABLES, days)
    return {"passed": [d.isoformat() for d in outcome.publish]}


def silver(plan: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """Silver for the gated dates, the master as-of table, then the validation ledger;
    the silver Asset events carry ``trade_dates`` (what the feature DAG builds)."""
    from gogooku3.airflow.assets import SILVER_TABLES
    from gogooku3.ingest.staging import stage_silver

    summary = stage_silver(staging=plan["staging"], endpoints=plan["endpoints"],
                           lake_root=_lake_root())
    if summary.failed:  # the gate task raises before this; kept as a guard
        raise IngestGateFailed(f"not published: {sorted(summary.failed)}")
    _asset_extra(context, SILVER_TABLES, summary.published)
    log.info("silver published %d trade date(s); rows %s", len(summary.published), summary.rows)
    return {"published": [d.isoformat() for d in summary.published], "rows": summary.rows}


def _asset_extra(context: Mapping[str, Any], tables, days: list[dt.date]) -> None:
    events = context.get("outlet_events")
    if events is None or not days:
        return
    extra = {"trade_dates": [d.isoformat() for d in sorted(days)],
             "start": min(days).isoformat(), "end": max(days).isoformat()}
    for t in tables:
        events[lake_asset(t)].extra = extra
