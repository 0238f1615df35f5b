"""Ingest a date range: calendar -> fetch -> gate -> bronze -> silver, chunk by chunk.

``ingest_range(start, end, source="api"|"files", ...) -> IngestSummary`` is what
``gogooku3 ingest`` and ``make demo`` call; the Airflow DAG runs the same stages as
separate tasks (``gogooku3.ingest.staging``).

Guarantees:

* Idempotent: every write replaces exactly the dates it owns; re-running a range with
  unchanged source data leaves the tables' content unchanged.
* A date is *published* (written to silver) when every selected table passed the gate
  for it (rejected rows quarantined within ``quality_max_bad_share``); a failing date is
  recorded in ``quality.validations`` (its rows in ``quality.quarantine``), logged, and
  listed in the summary — other dates still publish.
* Resumable: results are written chunk by chunk, ``quality.validations`` last, so it is
  the ledger of completed dates. With ``resume=True`` dates that already passed for
  every selected table are skipped and the skip is logged; failed dates are retried.
* An endpoint outside the user's plan (HTTP 403) is skipped with one line and listed in
  ``summary.not_in_plan``; the others are ingested.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Iterable, Sequence

import pyarrow as pa

from gogooku3.ingest import bronze as bz
from gogooku3.ingest.chunk import build_master_asof, process_chunk
from gogooku3.ingest.context import IngestContext, IngestSummary, endpoints_named
from gogooku3.ingest.fetch import fetch_api, fetch_calendar, fetch_files
from gogooku3.jpx.calendar import TradingCalendar
from gogooku3.jquants.client import JQuantsClient
from gogooku3.jquants.endpoints import Endpoint
from gogooku3.quality import gate as qg
from gogooku3.settings import get_settings

log = logging.getLogger(__name__)


def _done_dates(eps, start, end, lake_root) -> set[dt.date]:
    done: set[dt.date] | None = None
    for ep in eps:
        if ep.days != "trading":
            continue  # sparse endpoints: covered by the trade dates' own ledger rows
        passed = qg.passed_dates(ep.table, start, end, lake_root)
        done = passed if done is None else done & passed
    return done or set()


def plan_days(
    start: dt.date,
    end: dt.date,
    eps: Sequence[Endpoint],
    cal: TradingCalendar,
    lake_root: str | None,
    resume: bool = True,
) -> tuple[list[dt.date], list[dt.date]]:
    """(trade dates to ingest, trade dates skipped) for ``[start, end]``.

    With ``resume`` a date is skipped when every selected by-trade-date table already
    passed the gate for it (``quality.validations`` is written last, after silver).
    """
    days = cal.trading_days(start, end)
    if not (resume and days):
        return days, []
    done = _done_dates([e for e in eps if e.name != "calendar"], start, end, lake_root)
    skipped = [d for d in days if d in done]
    if skipped:
        log.info("resume: %d of %d trade dates already ingested and validated; "
                 "skipping them (resume=False to redo)", len(skipped), len(days))
    return [d for d in days if d not in done], skipped


def ingest_range(
    start: dt.date,
    end: dt.date,
    *,
    source: str = "api",
    path: str | None = None,
    endpoints: Iterable[str] | None = None,
    lake_root: str | None = None,
    client: JQuantsClient | None = None,
    chunk_days: int = 60,
    resume: bool = True,
    progress: bool = False,
) -> IngestSummary:
    """Ingest ``[start, end]`` into bronze, quality and silver; see the module docstring.

    ``source="files"`` reads J-Quants-shaped CSV/Parquet under ``path`` instead of the API.
    ``endpoints`` default to the plan's (setting ``jquants_plan``; all when unset).
    ``client`` (optional) is used as is (tests, benchmarks); otherwise one is built from
    settings. Raises ``JQuantsAuthError`` (a refused key) and ``JQuantsRequestError`` at
    once; per-date problems end up in ``summary.failed``.
    """
    if source not in ("api", "files"):
        raise ValueError(f"unknown source {source!r}; use 'api' or 'files'")
    if source == "files" and not path:
        raise ValueError("--source files needs a PATH")
    return asyncio.run(_ingest_range(start, end, source=source, path=path,
                                     endpoints=endpoints, lake_root=lake_root, client=client,
                                     chunk_days=chunk_days, resume=resume, progress=progress))


def _load_files(path: str, eps: list[Endpoint], start: dt.date, end: dt.date,
                lake_root: str) -> dict[str, pa.Table]:
    """Files under ``path``: the calendar first (written to bronze, so that weekly margin
    publication dates can be derived), then every other selected endpoint's rows."""
    lo, now = start - dt.timedelta(days=15), dt.datetime.now(dt.UTC)
    cal_ep = [e for e in eps if e.name == "calendar"]
    cal_t = bz.load_files(path, cal_ep, lo, end, ingested_at=now).get("calendar")
    if cal_t is not None and cal_t.num_rows:
        bz.write_bronze(cal_t, cal_ep[0], sorted(set(cal_t.column("date").to_pylist())),
                        lake_root)
    return bz.load_files(path, [e for e in eps if e.name != "calendar"], lo, end,
                         ingested_at=now, calendar=TradingCalendar.from_lake(lake_root))


async def _ingest_range(start, end, *, source, path, endpoints, lake_root, client, chunk_days,
                        resume, progress) -> IngestSummary:
    t0 = time.perf_counter()
    lake_root = lake_root or get_settings().lake_uri
    eps = endpoints_named(endpoints)
    summary = IngestSummary(start, end)
    if client is None and source == "api":
        client = JQuantsClient.from_settings()
    files: dict[str, pa.Table] = {}
    try:
        if source == "api" and "calendar" in {e.name for e in eps}:
            await fetch_calendar(client, start - dt.timedelta(days=10), end, lake_root)
        elif source == "files":
            files = _load_files(path, eps, start, end, lake_root)
        run = IngestContext(eps, TradingCalendar.from_lake(lake_root), lake_root, summary)
        days, summary.skipped = plan_days(start, end, run.eps, run.cal, lake_root, resume)
        summary.trading_days = len(days) + len(summary.skipped)
        for i in range(0, len(days), chunk_days):
            chunk = days[i:i + chunk_days]
            f0 = time.perf_counter()
            if source == "api":
                fetched = await fetch_api(client, run.eps, chunk, run.cal, progress=progress)
                run.drop_not_in_plan(fetched.not_in_plan)
            else:
                fetched = fetch_files(files, run.eps, chunk, run.cal)
            summary.fetch_seconds += time.perf_counter() - f0
            await asyncio.to_thread(process_chunk, chunk, fetched, run)
            log.info("ingest: %s..%s done (%d/%d dates)", chunk[0], chunk[-1],
                     min(i + chunk_days, len(days)), len(days))
        if "master" in run.names and days:
            summary.add_rows("silver.equities_master_asof", build_master_asof(lake_root))
        summary.gx_seconds = run.quality.gx_seconds
    finally:
        if client is not None:
            summary.requests = client.stats.requests
            summary.retries = client.stats.retries
            # the session belongs to this run's event loop (asyncio.run): close it here;
            # a caller's client reopens a fresh session on its next use
            await client.close()
    summary.seconds = time.perf_counter() - t0
    return summary
