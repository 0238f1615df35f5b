"""Ingest a date range: calendar -> fetch -> bronze -> quality gate -> silver, in chunks.

Public entry points (Airflow tasks and ``make demo`` call these):

* ``ingest_range(start, end, source="api"|"files", path=None, endpoints=None,
  lake_root=None, ...) -> IngestSummary`` — the whole pipeline for a range.
* ``ingest_day(day, ...)`` — the daily increment (one trade date, all codes).
* Stages, for callers that split the work: ``fetch_api``/``fetch_files`` (source ->
  ``Fetched`` bronze tables in memory), ``process_chunk`` (gate -> bronze -> silver ->
  ledger for those dates), ``build_master_asof`` (whole-table rebuild), and
  ``gogooku3.quality.gate.passed_dates`` (which dates may be consumed downstream).

Guarantees:

* Idempotent: every write replaces exactly the dates it owns; re-running a range with
  unchanged source data leaves the tables' content unchanged.
* A date is *published* (written to silver) only when every selected table passed the
  gate for it; a failing date is recorded in ``quality.validations`` (and its rows in
  ``quality.quarantine``), logged, and listed in the summary — other dates still publish.
* Resumable: results are written chunk by chunk, ``quality.validations`` last, so it is
  the ledger of completed dates. With ``resume=True`` dates that already passed for
  every selected table are skipped and the skip is logged; failed dates are retried.
* Silver prices of a chunk continue the ``cum_adj_factor`` of the latest earlier silver
  row per code, so chunks must be processed in date order (they are).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa

from gogooku3.ingest import bronze as bz
from gogooku3.ingest import silver as sv
from gogooku3.jquants.client import JQuantsClient
from gogooku3.jquants.endpoints import DEFAULT_ENDPOINTS, Endpoint, endpoint
from gogooku3.jquants.errors import JQuantsError
from gogooku3.lake import catalog, deltars
from gogooku3.market.calendar import TradingCalendar
from gogooku3.quality import gate as qg
from gogooku3.quality.suites import SuiteContext
from gogooku3.settings import get_settings

log = logging.getLogger(__name__)

SILVER_OF = {
    "bars_daily": "silver.equities_prices_daily",
    "topix": "silver.indices_topix_daily",
    "fins_summary": "silver.fins_statements",
    "investor_types": "silver.investor_flows",
    "margin_interest": "silver.margin_interest",
    "master": "silver.equities_master_asof",
}


@dataclass
class IngestSummary:
    """What a run did: rows per table, published and failed dates, client counters."""

    start: dt.date
    end: dt.date
    trading_days: int = 0
    skipped: list[dt.date] = field(default_factory=list)
    published: list[dt.date] = field(default_factory=list)
    failed: dict[dt.date, list[str]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    fetch_seconds: float = 0.0
    gx_seconds: float = 0.0
    requests: int = 0
    retries: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed

    def add_rows(self, table: str, n: int) -> None:
        self.rows[table] = self.rows.get(table, 0) + n

    def table_lines(self, lake_root: str | None = None) -> list[str]:
        """One line per bronze/silver/quality table: rows, dates, version (for the CLI)."""
        out = []
        for spec in catalog.tables():
            if spec.layer not in ("bronze", "silver", "quality"):
                continue
            info = deltars.table_info(spec, lake_root=lake_root)
            if info.version is None:
                continue
            span = f"{info.first_date}..{info.last_date}" if info.first_date else "(whole)"
            out.append(f"{spec.name:34s} {info.rows:>10,d} rows  {span:24s} "
                       f"{info.dates:>4d} dates  v{info.version}")
        return out


def _endpoints(names: Iterable[str] | None) -> list[Endpoint]:
    return [endpoint(n) for n in (names or DEFAULT_ENDPOINTS)]


# ---- fetching ---------------------------------------------------------------------------

@dataclass
class Fetched:
    """Bronze tables of one chunk per endpoint, the dates they own, and per-date errors."""

    tables: dict[str, pa.Table] = field(default_factory=dict)
    owned: dict[str, list[dt.date]] = field(default_factory=dict)
    errors: dict[str, dict[dt.date, str]] = field(default_factory=dict)


def query_days(ep: Endpoint, days: Sequence[dt.date], cal: TradingCalendar) -> list[dt.date]:
    """Days an endpoint is asked about for trade ``days``: the days themselves, or every
    calendar day after the previous trade date up to the last one (publications and
    disclosures also happen on holidays)."""
    if ep.days == "trading":
        return list(days)
    first = cal.previous_trading_day(days[0]) + dt.timedelta(days=1)
    n = (days[-1] - first).days + 1
    return [first + dt.timedelta(days=i) for i in range(n)]


async def fetch_api(
    client: JQuantsClient,
    eps: Sequence[Endpoint],
    days: Sequence[dt.date],
    cal: TradingCalendar,
    progress: bool = False,
) -> Fetched:
    """Fetch ``eps`` for trade ``days`` (one query per day for by-day endpoints, one per
    range otherwise) into bronze tables. Per-date failures (empty trading day, retries
    exhausted, malformed rows) are collected, not raised; auth errors raise."""
    out = Fetched()
    now = dt.datetime.now(dt.UTC)
    trading = set(days)

    async def one(ep: Endpoint) -> None:
        qdays = query_days(ep, days, cal)
        errors: dict[dt.date, str] = {}
        source = f"api:{ep.path}"
        if ep.style == "by_range":
            res = await client.get_many(ep.path, [ep.params_for_range(qdays[0], qdays[-1])],
                                        return_errors=True)
            if isinstance(res[0], JQuantsError):
                errors = {d: str(res[0]) for d in qdays}
                table = catalog.table(ep.table).arrow_schema().empty_table()
            else:
                table = bz.rows_to_bronze(res[0], ep, source=source, ingested_at=now)
        else:
            desc = f"{ep.name} {qdays[0]}..{qdays[-1]}" if progress else None
            res = await client.get_many(ep.path, [ep.params_for_day(d) for d in qdays],
                                        progress=desc, return_errors=True)
            parts = []
            for d, rows in zip(qdays, res, strict=True):
                if isinstance(rows, JQuantsError):
                    errors[d] = str(rows)
                    continue
                try:
                    parts.append(bz.rows_to_bronze(rows, ep, source=source, ingested_at=now, day=d))
                except bz.BronzeError as exc:
                    errors[d] = str(exc)
            table = pa.concat_tables(parts) if parts else \
                catalog.table(ep.table).arrow_schema().empty_table()
        _finish(out, ep, table, qdays, trading, errors)

    await asyncio.gather(*(one(ep) for ep in eps))
    return out


def _finish(out: Fetched, ep: Endpoint, table: pa.Table, qdays, trading, errors) -> None:
    if ep.dense:
        have = set(table.column("date").to_pylist()) if table.num_rows else set()
        for d in qdays:
            if d in trading and d not in have and d not in errors:
                errors[d] = (f"{ep.table} on {d}: {ep.path} returned no rows for a trading day")
    owned = [d for d in qdays if d not in errors]
    if errors:
        import pyarrow.compute as pc

        keep = pc.invert(pc.is_in(table.column("date"), pa.array(sorted(errors), pa.date32())))
        table = table.filter(keep)
    out.tables[ep.name] = table
    out.owned[ep.name] = owned
    out.errors[ep.name] = errors


def fetch_files(files: dict[str, pa.Table], eps: Sequence[Endpoint], days: Sequence[dt.date],
                cal: TradingCalendar) -> Fetched:
    """The chunk's rows from tables loaded by ``bronze.load_files`` (same checks as the API)."""
    import pyarrow.compute as pc

    out = Fetched()
    trading = set(days)
    for ep in eps:
        qdays = query_days(ep, days, cal)
        t = files.get(ep.name, catalog.table(ep.table).arrow_schema().empty_table())
        t = t.filter(pc.is_in(t.column("date"), pa.array(qdays, pa.date32())))
        _finish(out, ep, t, qdays, trading, {})
    return out


# ---- the per-chunk pipeline ---------------------------------------------------------------

def _owner(day: dt.date, cal: TradingCalendar) -> dt.date:
    return day if cal.is_trading_day(day) else cal.shift(day, 1)


def _previous_silver(days: Sequence[dt.date], cal: TradingCalendar, lake_root: str | None):
    """(prev_cum, prev_close) per code from silver rows before ``days[0]`` (last ~30 days)."""
    start = cal.trading_days_back(cal.previous_trading_day(days[0]), 30)
    try:
        prev = deltars.read_table("silver.equities_prices_daily", start,
                                  days[0] - dt.timedelta(days=1),
                                  columns=["date", "code", "close", "cum_adj_factor"],
                                  lake_root=lake_root).to_pandas()
    except deltars.TableNotFound:
        return {}, {}
    prev = prev.sort_values(["code", "date"])
    cum = prev.groupby("code")["cum_adj_factor"].last().to_dict()
    close = prev.dropna(subset=["close"]).groupby("code")["close"].last().to_dict()
    return cum, close


def _read(table: str, start: dt.date, end: dt.date, lake_root: str | None) -> pd.DataFrame:
    try:
        return deltars.read_table(table, start, end, lake_root=lake_root).to_pandas()
    except deltars.TableNotFound:
        return catalog.table(table).arrow_schema().empty_table().to_pandas()


def _to_arrow(df: pd.DataFrame, table: str) -> pa.Table:
    spec = catalog.table(table)
    if df.empty:
        return spec.arrow_schema().empty_table()
    return pa.Table.from_pandas(df[spec.column_names], schema=spec.arrow_schema(),
                                preserve_index=False)


def process_chunk(
    days: Sequence[dt.date],
    fetched: Fetched,
    eps: Sequence[Endpoint],
    cal: TradingCalendar,
    quality: qg.QualityGate,
    summary: IngestSummary,
    lake_root: str | None,
) -> None:
    """The gate, bronze writes, silver for passing dates, then the validation ledger."""
    names = {e.name for e in eps}
    # 1. silver prices are computed before the gate: the AdjC cross-check needs them
    prev_cum, prev_close = _previous_silver(days, cal, lake_root)
    prices = None
    ctx = SuiteContext(prev_close=prev_close)
    if "bars_daily" in names and fetched.tables["bars_daily"].num_rows:
        bars = fetched.tables["bars_daily"].to_pandas()
        prices = sv.adjust_prices(bars, prev_cum)
        bad = sv.adjustment_mismatches(prices, bars)
        ctx.adj_mismatch = set(zip(bad["date"], bad["Code"], strict=True))
        if "master" in names and fetched.tables["master"].num_rows:
            m = fetched.tables["master"].to_pandas()
            ctx.universe = m.groupby("date")["Code"].agg(set).to_dict()

    # 2. the gate, per table over the chunk (before bronze: keys must be unique there)
    results: list[qg.DayResult] = []
    quarantine: list[pd.DataFrame] = []
    blocked: dict[dt.date, list[str]] = {}
    run_at = dt.datetime.now(dt.UTC)
    for ep in eps:
        owned, errors = fetched.owned[ep.name], fetched.errors[ep.name]
        for d, msg in errors.items():
            results.append(qg.failed_day(ep.table, d, "fetch", msg))
            blocked.setdefault(_owner(d, cal), []).append(msg)
        if not owned:
            continue
        report = quality.validate(ep.table, fetched.tables[ep.name].to_pandas(), owned, ctx,
                                  run_at=run_at)
        results.extend(report.days.values())
        quarantine.append(report.quarantine)
        for d in report.failed:
            try:
                report.raise_for(d)
            except qg.QualityGateFailed as exc:
                blocked.setdefault(_owner(d, cal), []).append(str(exc))
        # 3. bronze keeps failing dates too (as received), except those whose keys are
        #    not unique/non-null: the table cannot hold them, their rows are in quarantine
        unkeyed = {d for d in report.failed
                   if {"unique_key", "not_null_key"} & set(report.days[d].failed_checks)}
        keep = [d for d in owned if d not in unkeyed]
        if keep:
            t = fetched.tables[ep.name]
            if unkeyed:
                import pyarrow.compute as pc

                t = t.filter(pc.is_in(t.column("date"), pa.array(keep, pa.date32())))
            bz.write_bronze(t, ep, keep, lake_root=lake_root)
            summary.add_rows(ep.table, t.num_rows)
    publish = [d for d in days if d not in blocked]

    # 4. silver for passing dates only
    if publish:
        _write_silver(publish, days, names, prices, cal, summary, lake_root)

    # 5. the ledger last: a crash before this line redoes the chunk on resume
    ledger_days = sorted({r.date for r in results} | set(days))
    qg.write_results(results, quarantine, ledger_days, lake_root=lake_root, run_at=run_at)
    for d, msgs in blocked.items():
        if d in set(days):
            summary.failed[d] = msgs
            log.error("%s not published: %s", d, "; ".join(msgs))
    summary.published.extend(publish)


def _write_silver(publish, days, names, prices, cal, summary, lake_root) -> None:
    pub = set(publish)
    window_start = cal.previous_trading_day(days[0])

    def write(df: pd.DataFrame, table: str) -> None:
        df = df[df["date"].isin(pub)]
        deltars.write_dates(_to_arrow(df, table), table, publish, lake_root=lake_root)
        summary.add_rows(table, len(df))

    if "bars_daily" in names and prices is not None:
        write(prices, "silver.equities_prices_daily")
    if "topix" in names:
        write(sv.topix(_read("bronze.indices_topix", days[0], days[-1], lake_root)),
              "silver.indices_topix_daily")
    if "fins_summary" in names:
        fins = _read("bronze.fins_summary", window_start, days[-1], lake_root)
        write(sv.statements(fins, cal), "silver.fins_statements")
    if "investor_types" in names:
        inv = _read("bronze.investor_types", window_start, days[-1], lake_root)
        write(sv.investor_flows(inv, cal), "silver.investor_flows")
    if "margin_interest" in names:
        mi = _read("bronze.margin_interest", window_start, days[-1], lake_root)
        write(sv.margin_interest(mi, cal), "silver.margin_interest")


def build_master_asof(lake_root: str | None = None) -> int:
    """Rebuild ``silver.equities_master_asof`` from bronze snapshots that passed the gate."""
    try:
        m = deltars.read_table("bronze.equities_master", lake_root=lake_root).to_pandas()
    except deltars.TableNotFound:
        return 0
    if m.empty:
        return 0
    good = qg.passed_dates("bronze.equities_master", m["date"].min(), m["date"].max(), lake_root)
    out = sv.master_asof(m[m["date"].isin(good)])
    deltars.write_dates(_to_arrow(out, "silver.equities_master_asof"),
                        "silver.equities_master_asof", None, lake_root=lake_root)
    return len(out)


# ---- calendar and the range driver ------------------------------------------------------

async def _fetch_calendar(client: JQuantsClient, start: dt.date, end: dt.date,
                          lake_root: str | None) -> None:
    ep = endpoint("calendar")
    rows = await client.get(ep.path, ep.params_for_range(start, end))
    t = bz.rows_to_bronze(rows, ep, source=f"api:{ep.path}", ingested_at=dt.datetime.now(dt.UTC))
    if not t.num_rows:
        log.warning("calendar: %s returned nothing for %s..%s; using the offline JPX calendar",
                    ep.path, start, end)
        return
    covered = sorted(set(t.column("date").to_pylist()))
    bz.write_bronze(t, ep, covered, lake_root=lake_root)


def _done_dates(eps, start, end, lake_root) -> set[dt.date]:
    done: set[dt.date] | None = None
    for ep in eps:
        if ep.days != "trading":
            continue  # sparse endpoints: covered by the trade dates' own ledger rows
        passed = qg.passed_dates(ep.table, start, end, lake_root)
        done = passed if done is None else done & passed
    return done or set()


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
    ``client`` (optional) is used as is (tests, benchmarks); otherwise one is built from
    settings. Raises ``JQuantsAuthError``/``JQuantsRequestError`` at once; per-date
    problems end up in ``summary.failed``.
    """
    return asyncio.run(_ingest_range(start, end, source=source, path=path,
                                     endpoints=endpoints, lake_root=lake_root, client=client,
                                     chunk_days=chunk_days, resume=resume, progress=progress))


def ingest_day(day: dt.date, **kwargs: Any) -> IngestSummary:
    """The daily increment: one trade date, all codes (``ingest_range(day, day)``)."""
    return ingest_range(day, day, **kwargs)


async def _ingest_range(start, end, *, source, path, endpoints, lake_root, client, chunk_days,
                        resume, progress) -> IngestSummary:
    t0 = time.perf_counter()
    lake_root = lake_root or get_settings().lake_uri
    eps = _endpoints(endpoints)
    summary = IngestSummary(start, end)
    own_client = client is None and source == "api"
    if own_client:
        client = JQuantsClient.from_settings()
    files: dict[str, pa.Table] = {}
    try:
        if source == "api":
            assert client is not None
            if "calendar" in {e.name for e in eps}:
                await _fetch_calendar(client, start - dt.timedelta(days=10), end, lake_root)
        elif source == "files":
            if not path:
                raise ValueError("--source files needs a PATH")
            lo = start - dt.timedelta(days=15)
            files = bz.load_files(path, eps, lo, end, ingested_at=dt.datetime.now(dt.UTC))
            if "calendar" in files and files["calendar"].num_rows:
                cal_t = files["calendar"]
                bz.write_bronze(cal_t, endpoint("calendar"),
                                sorted(set(cal_t.column("date").to_pylist())), lake_root)
        else:
            raise ValueError(f"unknown source {source!r}; use 'api' or 'files'")
        cal = TradingCalendar.from_lake(lake_root)
        eps = [e for e in eps if e.name != "calendar"]
        days = cal.trading_days(start, end)
        summary.trading_days = len(days)
        if resume and days:
            done = _done_dates(eps, start, end, lake_root)
            summary.skipped = [d for d in days if d in done]
            if summary.skipped:
                log.info("resume: %d of %d trade dates already ingested and validated; "
                         "skipping them (resume=False to redo)", len(summary.skipped), len(days))
            days = [d for d in days if d not in done]
        quality = qg.QualityGate()
        for i in range(0, len(days), chunk_days):
            chunk = days[i:i + chunk_days]
            f0 = time.perf_counter()
            if source == "api":
                fetched = await fetch_api(client, eps, chunk, cal, progress=progress)
            else:
                fetched = fetch_files(files, eps, chunk, cal)
            summary.fetch_seconds += time.perf_counter() - f0
            await asyncio.to_thread(process_chunk, chunk, fetched, eps, cal, quality, summary,
                                    lake_root)
            log.info("ingest: %s..%s done (%d/%d dates)", chunk[0], chunk[-1],
                     min(i + chunk_days, len(days)), len(days))
        if "master" in {e.name for e in eps} and days:
            summary.add_rows("silver.equities_master_asof", build_master_asof(lake_root))
        summary.gx_seconds = quality.gx_seconds
    finally:
        if client is not None:
            summary.requests = client.stats.requests
            summary.retries = client.stats.retries
        if client is not None:
            # the session belongs to this run's event loop (asyncio.run): close it here;
            # a caller's client reopens a fresh session on its next use
            await client.close()
    summary.seconds = time.perf_counter() - t0
    return summary
