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
from gogooku3.jpx.calendar import TradingCalendar
from gogooku3.jquants.client import JQuantsClient
from gogooku3.jquants.endpoints import FETCHED_ENDPOINTS, Endpoint, endpoint
from gogooku3.jquants.errors import JQuantsAuthError, JQuantsError
from gogooku3.lake import catalog, deltars
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
    not_in_plan: dict[str, str] = field(default_factory=dict)

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
    return [endpoint(n) for n in (names or get_settings().ingest_endpoints)]


def not_in_plan_line(name: str) -> str:
    """The one line that says an endpoint answered 403 and was skipped."""
    return (f"{name} is not in your plan (HTTP 403): skipped; "
            "set JQUANTS_PLAN or --endpoints")


# ---- fetching ---------------------------------------------------------------------------

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
        desc = f"{ep.name} {qdays[0]}..{qdays[-1]}" if progress else None
        asked = [(d, q) for d in qdays for q in ep.day_queries(d, cal)]
        res = await client.get_many(ep.path, [q for _, q in asked], progress=desc,
                                    return_errors=True, as_table=True, fields=fields)
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


@dataclass
class PriceCarry:
    """Per code, the last published ``cum_adj_factor`` and close before a chunk.

    Read from silver before the first chunk; carried in memory from chunk to chunk when
    the gate runs ahead of the silver writes (one Airflow gate task over a range).
    """

    cum: dict[str, float] = field(default_factory=dict)
    close: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_silver(cls, days: Sequence[dt.date], cal: TradingCalendar,
                    lake_root: str | None) -> PriceCarry:
        cum, close = _previous_silver(days, cal, lake_root)
        return cls(cum, close)

    def advance(self, prices: pd.DataFrame | None, published: Sequence[dt.date]) -> None:
        """Move past a chunk: only rows of ``published`` dates count, as silver would."""
        if prices is None or prices.empty or not published:
            return
        p = prices[prices["date"].isin(set(published))].sort_values(["code", "date"])
        self.cum.update(p.groupby("code")["cum_adj_factor"].last().to_dict())
        self.close.update(p.dropna(subset=["close"]).groupby("code")["close"].last().to_dict())


@dataclass
class GateOutcome:
    """What the gate decided for a run of trade dates, waiting for the silver stage.

    ``results`` and ``quarantine`` go to the validation ledger, ``blocked`` maps each
    unpublishable trade date to its messages (table, date, check), ``prices`` are the
    adjusted silver prices computed for the gate's cross-check.
    """

    days: list[dt.date]
    results: list[qg.DayResult] = field(default_factory=list)
    quarantine: list[pd.DataFrame] = field(default_factory=list)
    blocked: dict[dt.date, list[str]] = field(default_factory=dict)
    prices: pd.DataFrame | None = None
    run_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def publish(self) -> list[dt.date]:
        return [d for d in self.days if d not in self.blocked]

    def extend(self, other: GateOutcome) -> GateOutcome:
        """Append a later chunk's outcome (dates ascending)."""
        self.days += other.days
        self.results += other.results
        self.quarantine += other.quarantine
        for d, msgs in other.blocked.items():
            self.blocked.setdefault(d, []).extend(msgs)
        if other.prices is not None:
            self.prices = other.prices if self.prices is None else \
                pd.concat([self.prices, other.prices], ignore_index=True)
        return self


def gate_and_bronze(
    days: Sequence[dt.date],
    fetched: Fetched,
    eps: Sequence[Endpoint],
    cal: TradingCalendar,
    quality: qg.QualityGate,
    summary: IngestSummary,
    lake_root: str | None,
    carry: PriceCarry | None = None,
) -> GateOutcome:
    """The gate over one chunk, then the bronze writes; nothing reaches silver here.

    ``carry`` gives the prices of the last published rows before ``days`` (default: read
    from silver). Returns the outcome that ``publish_silver`` completes.
    """
    names = {e.name for e in eps}
    carry = carry or PriceCarry.from_silver(days, cal, lake_root)
    outcome = GateOutcome(list(days))
    # 1. adjusted prices of every received row, for the gate's AdjC cross-check
    ctx = SuiteContext(prev_close=dict(carry.close))
    if "bars_daily" in names and fetched.tables["bars_daily"].num_rows:
        bars = fetched.tables["bars_daily"].to_pandas()
        outcome.prices = sv.adjust_prices(bars, carry.cum)
        bad = sv.adjustment_mismatches(outcome.prices, bars)
        ctx.adj_mismatch = set(zip(bad["date"], bad["Code"], strict=True))
        if "master" in names and fetched.tables["master"].num_rows:
            m = fetched.tables["master"].to_pandas()
            ctx.universe = m.groupby("date")["Code"].agg(set).to_dict()

    # 2. the gate, per table over the chunk (before bronze: keys must be unique there)
    run_at = outcome.run_at
    for ep in eps:
        owned, errors = fetched.owned[ep.name], fetched.errors[ep.name]
        for d, msg in errors.items():
            outcome.results.append(qg.failed_day(ep.table, d, "fetch", msg))
            outcome.blocked.setdefault(_owner(d, cal), []).append(msg)
        if not owned:
            continue
        report = quality.validate(ep.table, fetched.tables[ep.name].to_pandas(), owned, ctx,
                                  run_at=run_at)
        outcome.results.extend(report.days.values())
        outcome.quarantine.append(report.quarantine)
        for d in report.failed:
            try:
                report.raise_for(d)
            except qg.QualityGateFailed as exc:
                outcome.blocked.setdefault(_owner(d, cal), []).append(str(exc))
        # 3. bronze holds the accepted rows; the rejected ones are in quarantine
        t = fetched.tables[ep.name]
        if report.rejected.any():
            t = t.filter(pa.array(~report.rejected))
        bz.write_bronze(t, ep, owned, lake_root=lake_root)
        summary.add_rows(ep.table, t.num_rows)
        if ep.name == "bars_daily":
            # 4. silver prices from the accepted rows, a null no-trade row per missing code
            accepted = sv.with_missing_codes(t.to_pandas(), ctx.universe)
            outcome.prices = sv.adjust_prices(accepted, carry.cum)
    # a holiday's failure blocks the next trade date: keep only this chunk's own dates
    outcome.blocked = {d: m for d, m in outcome.blocked.items() if d in set(days)}
    carry.advance(outcome.prices, outcome.publish)
    return outcome


def publish_silver(
    outcome: GateOutcome,
    eps: Sequence[Endpoint],
    cal: TradingCalendar,
    summary: IngestSummary,
    lake_root: str | None,
) -> None:
    """Silver for the dates that passed the gate, then the validation ledger (last)."""
    names = {e.name for e in eps}
    days, publish = outcome.days, outcome.publish
    if publish:
        _write_silver(publish, days, names, outcome.prices, cal, summary, lake_root)
    # the ledger last: a crash before this line redoes the dates on resume
    ledger_days = sorted({r.date for r in outcome.results} | set(days))
    qg.write_results(outcome.results, outcome.quarantine, ledger_days, lake_root=lake_root,
                     run_at=outcome.run_at)
    for d, msgs in outcome.blocked.items():
        if d in set(days):
            summary.failed[d] = msgs
            log.error("%s not published: %s", d, "; ".join(msgs))
    summary.published.extend(publish)


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
    outcome = gate_and_bronze(days, fetched, eps, cal, quality, summary, lake_root)
    publish_silver(outcome, eps, cal, summary, lake_root)


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
                          lake_root: str | None, only_if_changed: bool = False) -> None:
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


def _drop_not_in_plan(eps: list[Endpoint], refused: dict[str, str],
                      summary: IngestSummary) -> list[Endpoint]:
    """``eps`` without the endpoints that answered 403, each reported in one line; when
    every endpoint answered 403 the key itself is refused: raise."""
    if not refused:
        return eps
    for name, message in refused.items():
        log.warning("%s", not_in_plan_line(name))
        summary.not_in_plan[name] = message
    left = [e for e in eps if e.name not in refused]
    if not left:
        raise JQuantsAuthError(
            f"every endpoint answered HTTP 403 ({', '.join(refused)}): check JQUANTS_API_KEY "
            "and JQUANTS_PLAN", path=eps[0].path, status=403)
    return left


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
            lo, now = start - dt.timedelta(days=15), dt.datetime.now(dt.UTC)
            cal_ep = [e for e in eps if e.name == "calendar"]
            cal_t = bz.load_files(path, cal_ep, lo, end, ingested_at=now).get("calendar")
            if cal_t is not None and cal_t.num_rows:
                bz.write_bronze(cal_t, cal_ep[0], sorted(set(cal_t.column("date").to_pylist())),
                                lake_root)
            files = bz.load_files(path, [e for e in eps if e.name != "calendar"], lo, end,
                                  ingested_at=now, calendar=TradingCalendar.from_lake(lake_root))
        else:
            raise ValueError(f"unknown source {source!r}; use 'api' or 'files'")
        cal = TradingCalendar.from_lake(lake_root)
        eps = [e for e in eps if e.name != "calendar"]
        days, summary.skipped = plan_days(start, end, eps, cal, lake_root, resume)
        summary.trading_days = len(days) + len(summary.skipped)
        quality = qg.QualityGate()
        for i in range(0, len(days), chunk_days):
            chunk = days[i:i + chunk_days]
            f0 = time.perf_counter()
            if source == "api":
                fetched = await fetch_api(client, eps, chunk, cal, progress=progress)
                eps = _drop_not_in_plan(eps, fetched.not_in_plan, summary)
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


# ---- stages for Airflow: the range driver's steps with a staging area between tasks -----
#
# One Airflow run = one trade date (or a range, for a history load) split into tasks:
#   refresh_calendar -> stage_fetch (one task per endpoint) -> stage_gate -> stage_silver.
# They call the same functions as ingest_range (fetch_endpoint, gate_and_bronze,
# publish_silver, build_master_asof); only the hand-over differs: the fetched bronze rows
# and the gate's outcome are written under <lake>/_staging/ingest/<key>/ instead of
# being passed in memory.



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
    _run_with(client, lambda: _fetch_calendar(client, start - dt.timedelta(days=10), end,
                                              lake_root, only_if_changed=True))
    return TradingCalendar.from_lake(lake_root)


def staging_uri(key: str, lake_root: str | None = None) -> str:
    """Where a run's hand-over files live: ``<lake>/_staging/ingest/<key>``."""
    import re

    lake_root = (lake_root or get_settings().lake_uri).rstrip("/")
    return f"{lake_root}/_staging/ingest/{re.sub(r'[^A-Za-z0-9_.-]+', '_', key)}"


def _fs(uri: str):
    from pyarrow import fs

    if "://" not in uri:
        import os

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


def stage_fetch(name: str, days: Sequence[dt.date], *, client: JQuantsClient, staging: str,
                lake_root: str | None = None) -> dict[str, Any]:
    """Fetch endpoint ``name`` for trade ``days`` and stage its bronze rows.

    Raises ``FetchIncomplete`` when requests failed after the client's retries (so the
    task is retried); malformed pages and empty trading days are staged as per-date
    errors for the gate to record. Returns counts for the task log / XCom.
    """
    import io
    import json

    import pyarrow.parquet as pq

    lake_root = lake_root or get_settings().lake_uri
    ep = endpoint(name)
    cal = TradingCalendar.from_lake(lake_root)
    fetched = _run_with(client, lambda: fetch_endpoint(client, ep, list(days), cal))
    transient = fetched.transient[name]
    if transient:
        first = fetched.errors[name][transient[0]]
        raise FetchIncomplete(f"{ep.table}: {len(transient)} of {ep.path}'s requests failed "
                              f"after retries ({transient[0]}..{transient[-1]}), e.g. {first}")
    buf = io.BytesIO()
    pq.write_table(fetched.tables[name], buf)
    _write_bytes(staging, f"fetch/{name}.parquet", buf.getvalue())
    meta = {"owned": [d.isoformat() for d in fetched.owned[name]],
            "errors": {d.isoformat(): m for d, m in fetched.errors[name].items()}}
    _write_bytes(staging, f"fetch/{name}.json", json.dumps(meta).encode())
    return {"endpoint": name, "table": ep.table, "rows": fetched.tables[name].num_rows,
            "dates": len(meta["owned"]), "errors": meta["errors"]}


def _load_fetched(staging: str, names: Iterable[str]) -> Fetched:
    import io
    import json

    import pyarrow.parquet as pq

    out = Fetched()
    for name in names:
        spec = catalog.table(endpoint(name).table)
        table = pq.read_table(io.BytesIO(_read_bytes(staging, f"fetch/{name}.parquet")))
        out.tables[name] = table.cast(spec.arrow_schema())
        meta = json.loads(_read_bytes(staging, f"fetch/{name}.json"))
        out.owned[name] = [dt.date.fromisoformat(d) for d in meta["owned"]]
        out.errors[name] = {dt.date.fromisoformat(d): m for d, m in meta["errors"].items()}
        out.transient[name] = []
    return out


def _slice(fetched: Fetched, eps: Sequence[Endpoint], chunk: Sequence[dt.date],
           cal: TradingCalendar) -> Fetched:
    """The part of a range's fetch that belongs to trade dates ``chunk``."""
    import pyarrow.compute as pc

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


def stage_gate(days: Sequence[dt.date], *, staging: str, endpoints: Iterable[str] | None = None,
               lake_root: str | None = None, chunk_days: int = 60) -> GateOutcome:
    """The quality gate and the bronze writes for staged fetches of trade ``days``.

    Chunks of ``chunk_days`` go through ``gate_and_bronze`` in date order, the adjusted
    prices carried from chunk to chunk; the combined outcome is staged for
    ``stage_silver`` and returned (``outcome.blocked`` names table, date and check of
    every date that may not be published).
    """
    import pickle

    lake_root = lake_root or get_settings().lake_uri
    eps = _endpoints(endpoints or FETCHED_ENDPOINTS)
    eps = [e for e in eps if e.name != "calendar"]
    cal = TradingCalendar.from_lake(lake_root)
    days = sorted(days)
    fetched = _load_fetched(staging, [e.name for e in eps])
    quality = qg.QualityGate()
    summary = IngestSummary(days[0], days[-1])
    carry = PriceCarry.from_silver(days, cal, lake_root)
    outcome: GateOutcome | None = None
    for i in range(0, len(days), chunk_days):
        chunk = days[i:i + chunk_days]
        part = gate_and_bronze(chunk, _slice(fetched, eps, chunk, cal), eps, cal, quality,
                               summary, lake_root, carry=carry)
        outcome = part if outcome is None else outcome.extend(part)
    assert outcome is not None
    _write_bytes(staging, "gate/outcome.pickle", pickle.dumps(outcome))
    log.info("gate: %d of %d trade dates passed; bronze rows written: %s",
             len(outcome.publish), len(days), summary.rows)
    return outcome


def record_failures(outcome: GateOutcome, lake_root: str | None = None) -> list[dt.date]:
    """Write the ledger rows (and quarantine) of the dates the gate blocked, for a stage
    that stops there; passing dates stay unrecorded until their silver is written."""
    lake_root = lake_root or get_settings().lake_uri
    if not outcome.blocked:
        return []
    cal = TradingCalendar.from_lake(lake_root)
    blocked = set(outcome.blocked)
    results = [r for r in outcome.results if r.date in blocked or _owner(r.date, cal) in blocked]
    dates = sorted({r.date for r in results} | blocked)
    quarantine = [q[q["date"].isin(set(dates))] for q in outcome.quarantine if len(q)]
    qg.write_results(results, quarantine, dates, lake_root=lake_root, run_at=outcome.run_at)
    return sorted(blocked)


def staged_outcome(staging: str) -> GateOutcome | None:
    """The gate outcome staged for a run, or None when the gate never got that far."""
    import pickle

    try:
        return pickle.loads(_read_bytes(staging, "gate/outcome.pickle"))
    except FileNotFoundError:
        return None


def stage_silver(*, staging: str, endpoints: Iterable[str] | None = None,
                 lake_root: str | None = None, cleanup: bool = True) -> IngestSummary:
    """Silver for the staged dates that passed the gate, the master as-of table, then the
    validation ledger (last, as in ``ingest_range``). Failed dates are in the summary."""
    lake_root = lake_root or get_settings().lake_uri
    outcome = staged_outcome(staging)
    if outcome is None:
        raise FileNotFoundError(f"staging: no gate outcome under {staging}")
    eps = [e for e in _endpoints(endpoints or FETCHED_ENDPOINTS) if e.name != "calendar"]
    cal = TradingCalendar.from_lake(lake_root)
    summary = IngestSummary(outcome.days[0], outcome.days[-1], trading_days=len(outcome.days))
    publish_silver(outcome, eps, cal, summary, lake_root)
    if "master" in {e.name for e in eps} and summary.published:
        summary.add_rows("silver.equities_master_asof", build_master_asof(lake_root))
    if cleanup:
        remove_staging(staging)
    return summary


def remove_staging(staging: str) -> None:
    """Delete a run's hand-over files (after its silver stage)."""
    filesystem, base = _fs(staging)
    filesystem.delete_dir(base)
