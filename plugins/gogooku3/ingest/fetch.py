"""Fetching: J-Quants endpoints (or J-Quants-shaped files) -> bronze tables of a chunk.

``fetch_endpoint``/``fetch_api`` ask the API (one query per day for by-day endpoints, one
per range otherwise) and ``fetch_files`` cuts a chunk out of loaded files; both return a
``Fetched``: bronze Arrow tables per endpoint, the dates each owns, and per-date errors
(empty trading days of dense endpoints, malformed pages, requests that failed after the
client's retries). An endpoint that answers 403 is reported in ``not_in_plan``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from gogooku3.ingest import bronze as bz
from gogooku3.jpx.calendar import TradingCalendar
from gogooku3.jquants.client import JQuantsClient
from gogooku3.jquants.endpoints import Endpoint, endpoint
from gogooku3.jquants.errors import JQuantsAuthError, JQuantsError
from gogooku3.lake import catalog, deltars

log = logging.getLogger(__name__)


@dataclass
class Fetched:
    """Bronze tables of one chunk per endpoint, the dates they own, and per-date errors.

    ``transient`` lists, per endpoint, the dates whose request failed after the client's
    own retries (429/5xx/timeouts): an Airflow fetch task raises on them so that Airflow
    retries the task; the CLI records them as failed dates.
    """

    tables: dict[str, pa.Table] = field(default_factory=dict)
    owned: dict[str, list[dt.date]] = field(default_factory=dict)
    errors: dict[str, dict[dt.date, str]] = field(default_factory=dict)
    transient: dict[str, list[dt.date]] = field(default_factory=dict)
    not_in_plan: dict[str, str] = field(default_factory=dict)

    def merge(self, other: Fetched) -> Fetched:
        """This chunk with ``other``'s endpoints added (one fetch task per endpoint)."""
        for attr in ("tables", "owned", "errors", "transient", "not_in_plan"):
            getattr(self, attr).update(getattr(other, attr))
        return self


def query_days(ep: Endpoint, days: Sequence[dt.date], cal: TradingCalendar) -> list[dt.date]:
    """Days an endpoint is asked about for trade ``days``: the days themselves, or every
    calendar day after the previous trade date up to the last one (publications and
    disclosures also happen on holidays)."""
    if ep.days == "trading":
        return list(days)
    first = cal.previous_trading_day(days[0]) + dt.timedelta(days=1)
    n = (days[-1] - first).days + 1
    return [first + dt.timedelta(days=i) for i in range(n)]


async def fetch_endpoint(
    client: JQuantsClient,
    ep: Endpoint,
    days: Sequence[dt.date],
    cal: TradingCalendar,
    progress: bool = False,
) -> Fetched:
    """Fetch one endpoint for trade ``days`` (one query per day for by-day endpoints, one
    per range otherwise) into its bronze table. Per-date failures (empty trading day,
    retries exhausted, malformed rows) are collected, not raised; auth errors raise."""
    out = Fetched()
    now = dt.datetime.now(dt.UTC)
    qdays = query_days(ep, days, cal)
    errors: dict[dt.date, str] = {}
    transient: list[dt.date] = []
    source = f"api:{ep.path}"
    fields = bz.page_fields(ep)
    if ep.style == "by_range":
        res = await client.get_many(ep.path, [ep.params_for_range(qdays[0], qdays[-1])],
                                    return_errors=True, as_table=True, fields=fields)
        if isinstance(res[0], JQuantsError):
            errors = {d: str(res[0]) for d in qdays}
            transient = list(qdays)
            table = catalog.table(ep.table).arrow_schema().empty_table()
        else:
            table = bz.typed_table(res[0], ep, source=source, ingested_at=now)
    else:
        asked = [(d, q) for d in qdays for q in ep.day_queries(d, cal)]
        desc = f"{ep.name} {qdays[0]}..{qdays[-1]}" if progress else None
        with Progress(desc, len(asked)) as bar:
            res = await client.get_many(ep.path, [q for _, q in asked], return_errors=True,
                                        as_table=True, fields=fields, on_rows=bar.rows,
                                        on_done=bar.done)
        parts = []
        for (d, _), raw in zip(asked, res, strict=True):
            if d in errors:
                continue
            if isinstance(raw, JQuantsError):
                errors[d] = str(raw)
                transient.append(d)
                continue
            try:
                parts.append(bz.typed_table(raw, ep, source=source, ingested_at=now, day=d,
                                            calendar=cal))
            except bz.BronzeError as exc:
                errors[d] = str(exc)
        table = pa.concat_tables(parts) if parts else \
            catalog.table(ep.table).arrow_schema().empty_table()
    _finish(out, ep, table, qdays, set(days), errors)
    out.transient[ep.name] = transient
    return out


async def fetch_api(
    client: JQuantsClient,
    eps: Sequence[Endpoint],
    days: Sequence[dt.date],
    cal: TradingCalendar,
    progress: bool = False,
) -> Fetched:
    """``fetch_endpoint`` for every endpoint in ``eps`` at once, merged into one chunk.

    An endpoint that answers 403 (outside the user's plan) is listed in ``not_in_plan``
    instead of failing the others; other auth errors raise.
    """

    async def one(ep: Endpoint) -> Fetched:
        try:
            return await fetch_endpoint(client, ep, days, cal, progress)
        except JQuantsAuthError as exc:
            if exc.status != 403:
                raise
            return Fetched(not_in_plan={ep.name: str(exc)})

    parts = await asyncio.gather(*(one(ep) for ep in eps))
    out = Fetched()
    for part in parts:
        out.merge(part)
    return out


def _finish(out: Fetched, ep: Endpoint, table: pa.Table, qdays, trading, errors) -> None:
    for d in bz.empty_trading_days(table, ep, [d for d in qdays if d in trading]):
        errors.setdefault(d, f"{ep.table} on {d}: {ep.path} returned no rows for a trading day")
    owned = [d for d in qdays if d not in errors]
    if errors:
        keep = pc.invert(pc.is_in(table.column("date"), pa.array(sorted(errors), pa.date32())))
        table = table.filter(keep)
    out.tables[ep.name] = table
    out.owned[ep.name] = owned
    out.errors[ep.name] = errors


def fetch_files(files: dict[str, pa.Table], eps: Sequence[Endpoint], days: Sequence[dt.date],
                cal: TradingCalendar) -> Fetched:
    """The chunk's rows from tables loaded by ``bronze.load_files`` (same checks as the API)."""
    out = Fetched()
    trading = set(days)
    for ep in eps:
        qdays = query_days(ep, days, cal)
        t = files.get(ep.name, catalog.table(ep.table).arrow_schema().empty_table())
        t = t.filter(pc.is_in(t.column("date"), pa.array(qdays, pa.date32())))
        _finish(out, ep, t, qdays, trading, {})
    return out


# ---- the per-chunk pipeline ---------------------------------------------------------------


def slice_fetched(fetched: Fetched, eps: Sequence[Endpoint], chunk: Sequence[dt.date],
                  cal: TradingCalendar) -> Fetched:
    """The part of a range's fetch that belongs to trade dates ``chunk``."""
    out = Fetched()
    for ep in eps:
        qd = set(query_days(ep, chunk, cal))
        t = fetched.tables[ep.name]
        out.tables[ep.name] = t.filter(pc.is_in(t.column("date"), pa.array(sorted(qd),
                                                                            pa.date32())))
        out.owned[ep.name] = [d for d in fetched.owned[ep.name] if d in qd]
        out.errors[ep.name] = {d: m for d, m in fetched.errors[ep.name].items() if d in qd}
        out.transient[ep.name] = []
    return out


async def fetch_calendar(client: JQuantsClient, start: dt.date, end: dt.date,
                         lake_root: str | None, only_if_changed: bool = False) -> None:
    """``/markets/calendar`` for ``[start, end]`` into bronze (with ``only_if_changed``,
    no commit when the lake already holds the same rows); nothing answered: logged, the
    offline JPX calendar answers instead."""
    ep = endpoint("calendar")
    rows = await client.get(ep.path, ep.params_for_range(start, end))
    t = bz.rows_to_bronze(rows, ep, source=f"api:{ep.path}", ingested_at=dt.datetime.now(dt.UTC))
    if not t.num_rows:
        log.warning("calendar: %s returned nothing for %s..%s; using the offline JPX calendar",
                    ep.path, start, end)
        return
    covered = sorted(set(t.column("date").to_pylist()))
    if only_if_changed:
        fresh = dict(zip(t.column("date").to_pylist(), t.column("HolDiv").to_pylist(),
                         strict=True))
        try:
            old = deltars.read_table(ep.table, covered[0], covered[-1],
                                     columns=["date", "HolDiv"], lake_root=lake_root)
            if dict(zip(old.column("date").to_pylist(), old.column("HolDiv").to_pylist(),
                        strict=True)) == fresh:
                return  # a daily run should not commit an unchanged calendar
        except deltars.TableNotFound:
            pass
    bz.write_bronze(t, ep, covered, lake_root=lake_root)


class Progress:
    """A rich progress bar of one endpoint's requests (done, rows, rows/s), or a no-op when
    ``description`` is None."""

    def __init__(self, description: str | None, total: int):
        self._bar = None
        self._task = None
        self._rows = 0
        self._start = time.monotonic()
        if description:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import Progress as Bar

            self._bar = Bar(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rows]:,} rows  {task.fields[rate]:,.0f} rows/s"),
                TimeElapsedColumn(), transient=False,
            )
            self._task = self._bar.add_task(description, total=total, rows=0, rate=0.0)

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()

    def rows(self, n: int) -> None:
        """``n`` more rows received."""
        self._rows += n

    def done(self) -> None:
        """One more request finished."""
        if self._bar is not None:
            rate = self._rows / max(1e-9, time.monotonic() - self._start)
            self._bar.update(self._task, advance=1, rows=self._rows, rate=rate)
