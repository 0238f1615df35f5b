"""One chunk of trade dates: quality gate -> bronze -> silver -> validation ledger.

``gate_and_bronze`` runs the gate over the fetched tables (rejected rows are quarantined,
accepted ones written to bronze) and returns a ``GateOutcome``; ``publish_silver`` writes
silver for the dates that passed and then the ledger (``quality.validations``), last,
so that it records completed dates. ``process_chunk`` is both, in memory; the Airflow
stages run them in separate tasks with the outcome staged in between
(``gogooku3.ingest.staging``). Silver prices of a chunk continue the ``cum_adj_factor``
of the latest earlier silver row per code (``PriceCarry``), so chunks go in date order.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa

from gogooku3.ingest import bronze as bz
from gogooku3.ingest import silver as sv
from gogooku3.ingest.context import IngestContext
from gogooku3.ingest.fetch import Fetched
from gogooku3.jpx.calendar import TradingCalendar
from gogooku3.lake import catalog, deltars
from gogooku3.quality import gate as qg
from gogooku3.quality.suites import SuiteContext

log = logging.getLogger(__name__)


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
    silver prices of the accepted rows, ``not_in_plan`` the endpoints that answered 403
    (their stages are skipped).
    """

    days: list[dt.date]
    results: list[qg.DayResult] = field(default_factory=list)
    quarantine: list[pd.DataFrame] = field(default_factory=list)
    blocked: dict[dt.date, list[str]] = field(default_factory=dict)
    prices: pd.DataFrame | None = None
    run_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    not_in_plan: dict[str, str] = field(default_factory=dict)

    @property
    def publish(self) -> list[dt.date]:
        """The trade dates that passed the gate, ascending."""
        return [d for d in self.days if d not in self.blocked]

    def extend(self, other: GateOutcome) -> GateOutcome:
        """Append a later chunk's outcome (dates ascending)."""
        self.days += other.days
        self.results += other.results
        self.quarantine += other.quarantine
        self.not_in_plan.update(other.not_in_plan)
        for d, msgs in other.blocked.items():
            self.blocked.setdefault(d, []).extend(msgs)
        if other.prices is not None:
            self.prices = other.prices if self.prices is None else \
                pd.concat([self.prices, other.prices], ignore_index=True)
        return self


def gate_and_bronze(days: Sequence[dt.date], fetched: Fetched, run: IngestContext,
                    carry: PriceCarry | None = None) -> GateOutcome:
    """The gate over one chunk of trade ``days``, then the bronze writes; nothing reaches
    silver here.

    ``carry`` gives the prices of the last published rows before ``days`` (default: read
    from silver). Returns the outcome that ``publish_silver`` completes.
    """
    names, cal, lake_root = run.names, run.cal, run.lake_root
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
    for ep in run.eps:
        owned, errors = fetched.owned[ep.name], fetched.errors[ep.name]
        for d, msg in errors.items():
            outcome.results.append(qg.failed_day(ep.table, d, "fetch", msg))
            outcome.blocked.setdefault(run.owner(d), []).append(msg)
        if not owned:
            continue
        report = run.quality.validate(ep.table, fetched.tables[ep.name].to_pandas(), owned,
                                      ctx, run_at=run_at)
        outcome.results.extend(report.days.values())
        outcome.quarantine.append(report.quarantine)
        for d in report.failed:
            try:
                report.raise_for(d)
            except qg.QualityGateFailed as exc:
                outcome.blocked.setdefault(run.owner(d), []).append(str(exc))
        # 3. bronze holds the accepted rows; the rejected ones are in quarantine
        t = fetched.tables[ep.name]
        if report.rejected.any():
            t = t.filter(pa.array(~report.rejected))
        bz.write_bronze(t, ep, owned, lake_root=lake_root)
        run.summary.add_rows(ep.table, t.num_rows)
        if ep.name == "bars_daily":
            # 4. silver prices from the accepted rows, a null no-trade row per missing code
            accepted = sv.with_missing_codes(t.to_pandas(), ctx.universe)
            outcome.prices = sv.adjust_prices(accepted, carry.cum)
    # a holiday's failure blocks the next trade date: keep only this chunk's own dates
    outcome.blocked = {d: m for d, m in outcome.blocked.items() if d in set(days)}
    carry.advance(outcome.prices, outcome.publish)
    return outcome


def publish_silver(outcome: GateOutcome, run: IngestContext) -> None:
    """Silver for the dates that passed the gate, then the validation ledger (last)."""
    days, publish = outcome.days, outcome.publish
    if publish:
        _write_silver(publish, days, outcome.prices, run)
    # the ledger last: a crash before this line redoes the dates on resume
    ledger_days = sorted({r.date for r in outcome.results} | set(days))
    qg.write_results(outcome.results, outcome.quarantine, ledger_days, lake_root=run.lake_root,
                     run_at=outcome.run_at)
    for d, msgs in outcome.blocked.items():
        if d in set(days):
            run.summary.failed[d] = msgs
            log.error("%s not published: %s", d, "; ".join(msgs))
    run.summary.published.extend(publish)


def process_chunk(days: Sequence[dt.date], fetched: Fetched, run: IngestContext) -> None:
    """The gate, bronze writes, silver for passing dates, then the validation ledger."""
    publish_silver(gate_and_bronze(days, fetched, run), run)


def _write_silver(publish, days, prices, run: IngestContext) -> None:
    """Each run endpoint's silver table for the ``publish`` dates (a silver row belongs to
    the trade date it becomes usable on; rows usable later wait for their chunk)."""
    names, cal, lake_root, summary = run.names, run.cal, run.lake_root, run.summary
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
