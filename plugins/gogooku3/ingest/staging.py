"""The ingestion stages as separate tasks, handing work over through a staging area.

One Airflow run = one trade date (or a range, for a history load) split into tasks:
``refresh_calendar`` -> ``stage_fetch`` (one task per endpoint) -> ``stage_gate`` ->
``stage_silver``. They call the same functions as ``ingest_range`` (``fetch_endpoint``,
``gate_and_bronze``, ``publish_silver``, ``build_master_asof``); only the hand-over
differs: the fetched bronze rows and the gate's outcome are written under
``<lake>/_staging/ingest/<key>/`` as Parquet (tables) and JSON (dates, messages,
validation results) instead of being passed in memory.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs

from gogooku3.ingest.chunk import (
    GateOutcome,
    PriceCarry,
    build_master_asof,
    gate_and_bronze,
    publish_silver,
)
from gogooku3.ingest.context import (
    IngestContext,
    IngestSummary,
    endpoints_named,
    not_in_plan_line,
)
from gogooku3.ingest.fetch import Fetched, fetch_calendar, fetch_endpoint, slice_fetched
from gogooku3.jpx.calendar import TradingCalendar
from gogooku3.jquants.client import JQuantsClient
from gogooku3.jquants.endpoints import FETCHED_ENDPOINTS, endpoint
from gogooku3.jquants.errors import JQuantsAuthError
from gogooku3.lake import catalog
from gogooku3.quality import gate as qg
from gogooku3.settings import get_settings

log = logging.getLogger(__name__)


class FetchIncomplete(RuntimeError):
    """Requests of one endpoint still failed after the client's retries (429/5xx/timeouts);
    raised by ``stage_fetch`` so that the orchestrator retries the task."""


def _run_with(client: JQuantsClient, make_coro):
    async def go():
        try:
            return await make_coro()
        finally:
            await client.close()
    return asyncio.run(go())


def refresh_calendar(client: JQuantsClient, start: dt.date, end: dt.date,
                     lake_root: str | None = None) -> TradingCalendar:
    """Fetch ``/markets/calendar`` around ``[start, end]`` into bronze and return the
    lake's calendar (offline JPX calendar where J-Quants has no rows; logged)."""
    lake_root = lake_root or get_settings().lake_uri
    _run_with(client, lambda: fetch_calendar(client, start - dt.timedelta(days=10), end,
                                             lake_root, only_if_changed=True))
    return TradingCalendar.from_lake(lake_root)


def staging_uri(key: str, lake_root: str | None = None) -> str:
    """Where a run's hand-over files live: ``<lake>/_staging/ingest/<key>``."""
    lake_root = (lake_root or get_settings().lake_uri).rstrip("/")
    return f"{lake_root}/_staging/ingest/{re.sub(r'[^A-Za-z0-9_.-]+', '_', key)}"


def _fs(uri: str):
    if "://" not in uri:
        os.makedirs(uri, exist_ok=True)
        return fs.LocalFileSystem(), uri
    filesystem, path = fs.FileSystem.from_uri(uri)
    filesystem.create_dir(path, recursive=True)
    return filesystem, path


def _write_bytes(uri: str, name: str, data: bytes) -> None:
    filesystem, base = _fs(uri)
    parent = f"{base}/{name}".rsplit("/", 1)[0]
    filesystem.create_dir(parent, recursive=True)
    with filesystem.open_output_stream(f"{base}/{name}") as fh:
        fh.write(data)


def _read_bytes(uri: str, name: str) -> bytes:
    filesystem, base = _fs(uri)
    try:
        with filesystem.open_input_stream(f"{base}/{name}") as fh:
            return fh.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"staging: {uri}/{name} is missing (did the stage before "
                                "this one run for the same run?)") from None


def _write_table(uri: str, name: str, table: pa.Table) -> None:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    _write_bytes(uri, name, buf.getvalue())


def _read_table(uri: str, name: str) -> pa.Table:
    return pq.read_table(io.BytesIO(_read_bytes(uri, name)))


def _write_json(uri: str, name: str, data: Any) -> None:
    _write_bytes(uri, name, json.dumps(data, default=str).encode())


def _read_json(uri: str, name: str) -> Any:
    return json.loads(_read_bytes(uri, name))


def _run_context(endpoints: Iterable[str] | None, lake_root: str,
                 summary: IngestSummary) -> IngestContext:
    return IngestContext(endpoints_named(endpoints or FETCHED_ENDPOINTS),
                         TradingCalendar.from_lake(lake_root), lake_root, summary)


def stage_fetch(name: str, days: Sequence[dt.date], *, client: JQuantsClient, staging: str,
                lake_root: str | None = None) -> dict[str, Any]:
    """Fetch endpoint ``name`` for trade ``days`` and stage its bronze rows.

    Raises ``FetchIncomplete`` when requests failed after the client's retries (so the
    task is retried); malformed pages and empty trading days are staged as per-date
    errors for the gate to record; a 403 (outside the plan) is staged as such, and the
    gate and silver stages leave the endpoint out. Returns counts for the task log / XCom
    (``not_in_plan``: the one line, when skipped).
    """
    lake_root = lake_root or get_settings().lake_uri
    ep = endpoint(name)
    cal = TradingCalendar.from_lake(lake_root)
    try:
        fetched = _run_with(client, lambda: fetch_endpoint(client, ep, list(days), cal))
    except JQuantsAuthError as exc:
        if exc.status != 403:
            raise
        log.warning("%s", not_in_plan_line(name))
        _write_table(staging, f"fetch/{name}.parquet",
                     catalog.table(ep.table).arrow_schema().empty_table())
        _write_json(staging, f"fetch/{name}.json",
                    {"owned": [], "errors": {}, "not_in_plan": str(exc)})
        return {"endpoint": name, "table": ep.table, "rows": 0, "dates": 0, "errors": {},
                "not_in_plan": not_in_plan_line(name)}
    transient = fetched.transient[name]
    if transient:
        first = fetched.errors[name][transient[0]]
        raise FetchIncomplete(f"{ep.table}: {len(transient)} of {ep.path}'s requests failed "
                              f"after retries ({transient[0]}..{transient[-1]}), e.g. {first}")
    _write_table(staging, f"fetch/{name}.parquet", fetched.tables[name])
    meta = {"owned": [d.isoformat() for d in fetched.owned[name]],
            "errors": {d.isoformat(): m for d, m in fetched.errors[name].items()}}
    _write_json(staging, f"fetch/{name}.json", meta)
    return {"endpoint": name, "table": ep.table, "rows": fetched.tables[name].num_rows,
            "dates": len(meta["owned"]), "errors": meta["errors"]}


def _load_fetched(staging: str, names: Iterable[str]) -> Fetched:
    out = Fetched()
    for name in names:
        spec = catalog.table(endpoint(name).table)
        out.tables[name] = _read_table(staging, f"fetch/{name}.parquet").cast(spec.arrow_schema())
        meta = _read_json(staging, f"fetch/{name}.json")
        out.owned[name] = [dt.date.fromisoformat(d) for d in meta["owned"]]
        out.errors[name] = {dt.date.fromisoformat(d): m for d, m in meta["errors"].items()}
        out.transient[name] = []
        if "not_in_plan" in meta:
            out.not_in_plan[name] = meta["not_in_plan"]
    return out


def _write_outcome(staging: str, outcome: GateOutcome) -> None:
    """The gate's outcome as ``gate/outcome.json`` plus quarantine and prices Parquet."""
    _write_json(staging, "gate/outcome.json", {
        "days": [d.isoformat() for d in outcome.days],
        "blocked": {d.isoformat(): m for d, m in outcome.blocked.items()},
        "run_at": outcome.run_at.isoformat(),
        "not_in_plan": outcome.not_in_plan,
        "results": [{"table": r.table, "date": r.date.isoformat(), "success": r.success,
                     "rows": r.rows, "failed_rows": r.failed_rows,
                     "failed_checks": r.failed_checks, "result": r.result}
                    for r in outcome.results],
    })
    qspec = catalog.table("quality.quarantine")
    q = [x for x in outcome.quarantine if len(x)]
    qdf = pd.concat(q, ignore_index=True) if q else pd.DataFrame(columns=qspec.column_names)
    _write_table(staging, "gate/quarantine.parquet",
                 pa.Table.from_pandas(qdf, schema=qspec.arrow_schema(), preserve_index=False))
    if outcome.prices is not None:
        _write_table(staging, "gate/prices.parquet",
                     pa.Table.from_pandas(outcome.prices, preserve_index=False))


def staged_outcome(staging: str) -> GateOutcome | None:
    """The gate outcome staged for a run, or None when the gate never got that far."""
    try:
        meta = _read_json(staging, "gate/outcome.json")
    except FileNotFoundError:
        return None
    results = [qg.DayResult(r["table"], dt.date.fromisoformat(r["date"]), r["success"],
                            r["rows"], r["failed_rows"], r["failed_checks"], r["result"])
               for r in meta["results"]]
    try:
        prices = _read_table(staging, "gate/prices.parquet").to_pandas()
    except FileNotFoundError:
        prices = None
    return GateOutcome(
        days=[dt.date.fromisoformat(d) for d in meta["days"]],
        results=results,
        quarantine=[_read_table(staging, "gate/quarantine.parquet").to_pandas()],
        blocked={dt.date.fromisoformat(d): m for d, m in meta["blocked"].items()},
        prices=prices,
        run_at=dt.datetime.fromisoformat(meta["run_at"]),
        not_in_plan=meta["not_in_plan"],
    )


def stage_gate(days: Sequence[dt.date], *, staging: str, endpoints: Iterable[str] | None = None,
               lake_root: str | None = None, chunk_days: int = 60) -> GateOutcome:
    """The quality gate and the bronze writes for staged fetches of trade ``days``.

    Chunks of ``chunk_days`` go through ``gate_and_bronze`` in date order, the adjusted
    prices carried from chunk to chunk; the combined outcome is staged for
    ``stage_silver`` and returned (``outcome.blocked`` names table, date and check of
    every date that may not be published).
    """
    lake_root = lake_root or get_settings().lake_uri
    days = sorted(days)
    run = _run_context(endpoints, lake_root, IngestSummary(days[0], days[-1]))
    fetched = _load_fetched(staging, [e.name for e in run.eps])
    run.drop_not_in_plan(fetched.not_in_plan)
    carry = PriceCarry.from_silver(days, run.cal, lake_root)
    outcome: GateOutcome | None = None
    for i in range(0, len(days), chunk_days):
        chunk = days[i:i + chunk_days]
        part = gate_and_bronze(chunk, slice_fetched(fetched, run.eps, chunk, run.cal), run,
                               carry=carry)
        outcome = part if outcome is None else outcome.extend(part)
    assert outcome is not None
    outcome.not_in_plan = dict(fetched.not_in_plan)
    _write_outcome(staging, outcome)
    log.info("gate: %d of %d trade dates passed; bronze rows written: %s",
             len(outcome.publish), len(days), run.summary.rows)
    return outcome


def record_failures(outcome: GateOutcome, lake_root: str | None = None) -> list[dt.date]:
    """Write the ledger rows (and quarantine) of the dates the gate blocked, for a stage
    that stops there; passing dates stay unrecorded until their silver is written."""
    lake_root = lake_root or get_settings().lake_uri
    if not outcome.blocked:
        return []
    run = _run_context(None, lake_root, IngestSummary(outcome.days[0], outcome.days[-1]))
    blocked = set(outcome.blocked)
    results = [r for r in outcome.results if r.date in blocked or run.owner(r.date) in blocked]
    dates = sorted({r.date for r in results} | blocked)
    quarantine = [q[q["date"].isin(set(dates))] for q in outcome.quarantine if len(q)]
    qg.write_results(results, quarantine, dates, lake_root=lake_root, run_at=outcome.run_at)
    return sorted(blocked)


def stage_silver(*, staging: str, endpoints: Iterable[str] | None = None,
                 lake_root: str | None = None, cleanup: bool = True) -> IngestSummary:
    """Silver for the staged dates that passed the gate, the master as-of table, then the
    validation ledger (last, as in ``ingest_range``). Failed dates are in the summary."""
    lake_root = lake_root or get_settings().lake_uri
    outcome = staged_outcome(staging)
    if outcome is None:
        raise FileNotFoundError(f"staging: no gate outcome under {staging}")
    summary = IngestSummary(outcome.days[0], outcome.days[-1], trading_days=len(outcome.days))
    run = _run_context(endpoints, lake_root, summary)
    run.drop_not_in_plan(outcome.not_in_plan)
    publish_silver(outcome, run)
    if "master" in run.names and summary.published:
        summary.add_rows("silver.equities_master_asof", build_master_asof(lake_root))
    if cleanup:
        remove_staging(staging)
    return summary


def remove_staging(staging: str) -> None:
    """Delete a run's hand-over files (after its silver stage)."""
    filesystem, base = _fs(staging)
    filesystem.delete_dir(base)
