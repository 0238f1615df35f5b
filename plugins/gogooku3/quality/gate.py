"""The quality gate: validate bronze per table and trade date with Great Expectations 1.x.

Contract:

* ``QualityGate.validate(table, bronze, dates, ctx)`` runs the table's suite
  (``gogooku3.quality.suites``) over a batch of trade dates and returns a
  ``TableReport`` with one ``DayResult`` per date and the rows to quarantine.
* Rows that fail a row check are **rejected**: quarantined with their reason, never
  published. A listed code without a row is quarantined as ``missing_codes`` (the runner
  publishes a null no-trade row for it). A date passes when GX passes on its accepted
  rows and its rejected rows plus missing codes are at most ``max_bad_share`` (setting
  ``quality_max_bad_share``, default 1%) of its listed codes; past that it fails whole.
  To keep GX cost bounded, one GX validation covers the batch's accepted rows (one
  ephemeral context per gate, ~0.1-0.2 s per validation); a date is validated alone only
  when the batch fails or the date fails, so every failing date has its own GX result.
* ``TableReport.raise_for(date)`` raises ``QualityGateFailed(table, date, checks)``; the
  runner publishes silver only for passing dates.
* ``write_results`` stores outcomes in ``quality.validations`` (per table and date: the
  date's own GX result JSON; the passing dates of a batch store the batch's result,
  with ``"batch": "first..last"`` added, on the first of them and
  ``{"success", "batch", "stored_on": <that date>}`` on the others) and
  failing rows in ``quality.quarantine`` with their reason, replacing only the given
  tables' rows for those dates; ``gogooku3.quality.data_docs`` renders them as Data Docs.
  Re-validating a date that holds a batch's result first moves that result to the next
  date of the batch that points to it, so the rest of the batch stays rendered.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from gogooku3.lake import catalog, deltars
from gogooku3.quality import suites
from gogooku3.quality.suites import SuiteContext

log = logging.getLogger(__name__)


class QualityGateFailed(Exception):
    """A table failed its quality suite for a trade date; nothing downstream is published."""

    def __init__(self, table: str, date: dt.date, checks: dict[str, int] | Sequence[str]):
        self.table = table
        self.date = date
        self.checks = dict(checks) if isinstance(checks, dict) else {c: 0 for c in checks}
        shown = ", ".join(f"{k} ({v} rows)" if v else k for k, v in self.checks.items())
        super().__init__(f"quality gate: {table} on {date} failed: {shown}")


@dataclass
class DayResult:
    """Outcome of one table on one trade date."""

    table: str
    date: dt.date
    success: bool
    rows: int
    failed_rows: int = 0
    failed_checks: dict[str, int] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)


@dataclass
class TableReport:
    """Per-date results of one table for one batch, its quarantine rows, and ``rejected``:
    per input row (positionally), True when it failed a row check (never published)."""

    table: str
    days: dict[dt.date, DayResult]
    quarantine: pd.DataFrame
    rejected: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    @property
    def passed(self) -> list[dt.date]:
        return sorted(d for d, r in self.days.items() if r.success)

    @property
    def failed(self) -> list[dt.date]:
        return sorted(d for d, r in self.days.items() if not r.success)

    def raise_for(self, date: dt.date) -> None:
        """Raise ``QualityGateFailed`` if ``date`` failed (or was never validated)."""
        res = self.days.get(date)
        if res is None:
            raise QualityGateFailed(self.table, date, ["not_validated"])
        if not res.success:
            raise QualityGateFailed(self.table, date, res.failed_checks)


def failed_day(table: str, date: dt.date, check: str, reason: str) -> DayResult:
    """A date that failed before validation could run (e.g. an empty trading day)."""
    return DayResult(table, date, False, 0, 0, {check: 0}, {"error": reason})


class QualityGate:
    """Runs suites with one ephemeral GX context for its lifetime (create one per run).

    ``max_bad_share`` (default: setting ``quality_max_bad_share``, 1%) is the share of a
    date's listed codes that may be quarantined (bad or missing rows) before it fails.
    """

    def __init__(self, max_bad_share: float | None = None) -> None:
        if max_bad_share is None:
            from gogooku3.settings import get_settings

            max_bad_share = get_settings().quality_max_bad_share
        self.max_bad_share = max_bad_share
        self._ctx = None
        self._batch_def = None
        self.gx_seconds = 0.0
        self.gx_validations = 0

    def _context(self):
        if self._ctx is None:
            os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig

            self._ctx = gx.get_context(mode="ephemeral")
            self._ctx.variables.progress_bars = ProgressBarsConfig(
                globally=False, metric_calculations=False)
            asset = self._ctx.data_sources.add_pandas("gogooku3").add_dataframe_asset("bronze")
            self._batch_def = asset.add_batch_definition_whole_dataframe("batch")
        return self._ctx

    def run_gx(self, table: str, frame: pd.DataFrame, ctx: SuiteContext) -> dict[str, Any]:
        """Validate ``frame`` with ``table``'s expectations; the GX result as a JSON dict."""
        import time

        import great_expectations as gx
        import great_expectations.expectations as gxe

        gctx = self._context()
        spec = catalog.table(table)
        expected = [c for c in spec.column_names if not c.startswith("_")]
        expected += [c for c in frame.columns if c.startswith("ok_")]
        exps = [gxe.ExpectTableColumnsToMatchSet(column_set=expected, exact_match=True),
                *suites.expectations(table, frame, ctx)]
        suite = gctx.suites.add_or_update(gx.ExpectationSuite(name=table, expectations=exps))
        t0 = time.perf_counter()
        batch = self._batch_def.get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(suite, result_format="SUMMARY")
        self.gx_seconds += time.perf_counter() - t0
        self.gx_validations += 1
        return result.to_json_dict()

    def validate(
        self,
        table: str,
        bronze: pd.DataFrame,
        dates: Iterable[dt.date],
        ctx: SuiteContext | None = None,
        run_at: dt.datetime | None = None,
    ) -> TableReport:
        """Validate ``bronze`` rows of ``table`` for ``dates`` (dates without rows pass empty).

        Rows failing a row check are rejected (``TableReport.rejected``) and quarantined;
        a date passes when GX passes on its accepted rows and its rejected rows plus
        missing listed codes are at most ``max_bad_share`` of its listed codes (of its
        rows when the table has no universe).
        """
        ctx = replace(ctx or SuiteContext(), max_bad_share=self.max_bad_share)
        run_at = run_at or dt.datetime.now(dt.UTC)
        dates = sorted(set(dates))
        prep = suites.prepare(table, bronze, ctx)
        frame = prep.frame.reset_index(drop=True)
        reasons = prep.failing_rows()
        reasons.index = frame.index
        rejected = (reasons != "").to_numpy()
        by_date = {d: idx for d, idx in frame.groupby("date").groups.items()} if len(frame) else {}
        accepted = frame[~rejected]
        batch_result = self.run_gx(table, accepted, ctx) if len(accepted) else {"success": True}
        own: dict[dt.date, dict] = {}
        if not batch_result["success"]:  # an aggregate failure: attribute it date by date
            for d in dates:
                idx = by_date.get(d)
                mine = None if idx is None else frame.loc[idx][~rejected[idx]]
                if mine is not None and len(mine):
                    own[d] = self.run_gx(table, mine, ctx)
        days: dict[dt.date, DayResult] = {}
        batch, home = f"{dates[0]}..{dates[-1]}" if dates else "", None
        for d in dates:
            idx = by_date.get(d)
            n = 0 if idx is None else len(idx)
            checks: dict[str, int] = {}
            if idx is not None:
                for names in reasons.loc[idx]:
                    for name in filter(None, names.split(",")):
                        checks[name] = checks.get(name, 0) + 1
            missing = 0
            for name, rows in prep.day_failures.get(d, {}).items():
                checks[name] = checks.get(name, 0) + len(rows)
                missing += len(rows)
            failed_rows = 0 if idx is None else int(rejected[idx].sum())
            within = self._within_share(failed_rows + missing, ctx, d, n)
            result = own.get(d)
            if result is not None and not result["success"] or not within:
                if result is None:  # the date's own result over all its rows shows why
                    result = self.run_gx(table, frame.loc[idx], ctx) if n else {"success": False}
                for r in result.get("results", []):
                    if not r["success"]:
                        name = "gx:" + r["expectation_config"]["type"]
                        checks.setdefault(name, r.get("result", {}).get("unexpected_count") or 0)
                days[d] = DayResult(table, d, False, n, failed_rows, checks, result)
                continue
            if result is None and home is None:  # the batch's whole GX result, stored once
                home = d
                result = {**batch_result, "batch": batch}
            elif result is None:  # a pointer to it (``gogooku3.quality.data_docs`` follows it)
                result = {"success": batch_result["success"], "batch": batch,
                          "stored_on": home.isoformat()}
            days[d] = DayResult(table, d, True, n, failed_rows, checks, result)
        quarantine = _quarantine_rows(table, frame, reasons, prep.day_failures, run_at)
        failed = [d for d, r in days.items() if not r.success]
        if failed:
            log.warning("quality: %s failed on %d of %d dates (%s)", table, len(failed),
                        len(days), ", ".join(str(d) for d in failed[:5]))
        kept = [d for d, r in days.items() if r.success and r.failed_checks]
        if kept:
            log.warning("quality: %s: %d dates publish with rows quarantined (%s)", table,
                        len(kept), ", ".join(str(d) for d in kept[:5]))
        return TableReport(table, days, quarantine, rejected)

    def _within_share(self, bad: int, ctx: SuiteContext, day: dt.date, rows: int) -> bool:
        base = len(ctx.universe.get(day, ())) if ctx.universe else rows
        return bad == 0 or (base > 0 and bad <= self.max_bad_share * base)


def _describe(names: str) -> str:
    return "; ".join(_REASONS.get(n, n) for n in names.split(","))


_REASONS = {
    "ohlc": "OHLC inconsistent (need prices > 0, L <= O,C <= H; untraded rows all null)",
    "volume": "negative volume or turnover",
    "adj_factor": "AdjFactor <= 0",
    "price_limits": "outside the TSE daily price limits, or a touched limit without its flag",
    "daily_return": "|return vs base price| > 50% not explained by AdjFactor",
    "adj_cross_check": "API AdjC disagrees with the forward adjustment",
    "known_code": "code not in that day's master",
    "unique_key": "duplicate primary key",
    "not_null_key": "null in a key column",
    "missing_codes": "listed code has no row",
    "code_format": "code is not 5 characters [0-9A-Z]",
    "sector": "sector code missing",
    "non_negative": "negative volume",
    "holdiv": "HolDiv not in 0-3",
}


def _json_default(v):
    if isinstance(v, dt.date | dt.datetime | pd.Timestamp):
        return v.isoformat()
    if v is pd.NA or (isinstance(v, float) and v != v):
        return None
    return str(v)


def _quarantine_rows(table, frame, reasons, day_failures, run_at) -> pd.DataFrame:
    cols = ["date", "table_name", "check", "reason", "row_json", "run_at"]
    out = []
    bad = frame[reasons != ""]
    data_cols = [c for c in bad.columns if not c.startswith("ok_")]
    for (_, row), names in zip(bad[data_cols].iterrows(), reasons[reasons != ""], strict=True):
        rec = {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
        out.append((row["date"], table, names, _describe(names),
                    json.dumps(rec, default=_json_default, sort_keys=True), run_at))
    for d, fails in day_failures.items():
        for check, rows in fails.items():
            for rec in rows:
                out.append((d, table, check, _describe(check),
                            json.dumps(rec, default=_json_default, sort_keys=True), run_at))
    q = pd.DataFrame(out, columns=cols)
    if len(q):
        # identical duplicate rows share one quarantine record
        q = q.drop_duplicates(["date", "table_name", "check", "row_json"])
    return q


def _replace_tables(target: str, new: pa.Table, dates: list[dt.date], tables: set[str],
                    lake_root: str | None) -> None:
    """Replace ``target`` rows of ``tables`` on ``dates``; rows of other tables are kept."""
    spec = catalog.table(target)
    try:
        old = deltars.read_table(spec, dates[0], dates[-1], lake_root=lake_root)
        keep = old.to_pandas()
        keep = keep[keep["date"].isin(dates) & ~keep["table_name"].isin(tables)]
        if len(keep):
            new = pa.concat_tables([new, pa.Table.from_pandas(
                keep, schema=spec.arrow_schema(), preserve_index=False)])
    except deltars.TableNotFound:
        pass
    deltars.write_dates(new, spec, dates, lake_root=lake_root)


def _batch_end(result: dict) -> dt.date:
    """Last date of the batch a stored GX result covers (``date.min`` for a one-date run)."""
    batch = result.get("batch")
    return dt.date.fromisoformat(batch.split("..")[1]) if batch else dt.date.min


def _rehome_pointers(dates: list[dt.date], tables: set[str], lake_root: str | None) -> None:
    """Before ``dates`` of ``tables`` are replaced: a batch result stored on one of them
    that dates outside ``dates`` still point to moves to the first of those dates, and the
    others point there (a commit per table, each leaving every pointer resolvable) — so
    re-running one day never orphans the rest of its batch."""
    spec = catalog.table("quality.validations")
    try:
        old = deltars.read_table(spec, dates[0], dates[-1], lake_root=lake_root).to_pylist()
    except deltars.TableNotFound:
        return
    owned = set(dates)
    homes = {}  # (table, ISO date of an owned home) -> the batch's full result stored there
    for row in old:
        result = json.loads(row["result_json"] or "{}")
        if row["table_name"] in tables and row["date"] in owned and "results" in result:
            if _batch_end(result) > row["date"]:
                homes[(row["table_name"], row["date"].isoformat())] = result
    if not homes:
        return
    last = max(_batch_end(r) for r in homes.values())
    if last > dates[-1]:  # pointers may also lie after the dates read above
        old += deltars.read_table(spec, dates[-1] + dt.timedelta(days=1), last,
                                  lake_root=lake_root).to_pylist()
    moved: dict[tuple[str, str], list[dict]] = {}  # (table, old home) -> its rows, by date
    for row in sorted(old, key=lambda r: (r["table_name"], r["date"])):
        result = json.loads(row["result_json"] or "{}")
        key = (row["table_name"], result.get("stored_on"))
        if row["date"] in owned or key not in homes or result.get("batch") != homes[key]["batch"]:
            continue
        mine = moved.setdefault(key, [])
        # the first pointing date becomes the batch's home, the others point to it
        result = {**result, "stored_on": mine[0]["date"].isoformat()} if mine else homes[key]
        mine.append({**row, "result_json": json.dumps(result, default=_json_default)})
    for table in sorted({t for t, _ in moved}):
        rows = [r for (t, _), rs in moved.items() if t == table for r in rs]
        log.info("quality: %s: %d stored batch result(s) moved off re-validated dates", table,
                 sum(t == table for t, _ in moved))
        _replace_tables(spec.name, pa.Table.from_pylist(rows, schema=spec.arrow_schema()),
                        sorted(r["date"] for r in rows), {table}, lake_root)


def write_results(
    results: Sequence[DayResult],
    quarantine: Sequence[pd.DataFrame],
    dates: Iterable[dt.date],
    lake_root: str | None = None,
    run_at: dt.datetime | None = None,
) -> None:
    """Store ``results`` in ``quality.validations`` and rows in ``quality.quarantine``.

    Only the tables present in ``results`` are replaced for ``dates`` (one commit each).
    """
    dates = sorted(set(dates))
    if not dates:
        return
    run_at = run_at or dt.datetime.now(dt.UTC)
    tables = {r.table for r in results}
    _rehome_pointers(dates, tables, lake_root)
    vspec = catalog.table("quality.validations")
    vrows = pd.DataFrame(
        [(r.date, r.table, r.success, r.rows, r.failed_rows,
          json.dumps(r.failed_checks, sort_keys=True),
          json.dumps(r.result, default=_json_default), run_at) for r in results],
        columns=vspec.column_names,
    )
    _replace_tables("quality.validations", pa.Table.from_pandas(
        vrows, schema=vspec.arrow_schema(), preserve_index=False), dates, tables, lake_root)
    qspec = catalog.table("quality.quarantine")
    q = [x for x in quarantine if len(x)]
    qdf = pd.concat(q, ignore_index=True) if q else pd.DataFrame(columns=qspec.column_names)
    qtable = pa.Table.from_pandas(qdf, schema=qspec.arrow_schema(), preserve_index=False)
    _replace_tables("quality.quarantine", qtable, dates, tables, lake_root)


def passed_dates(table: str, start: dt.date, end: dt.date,
                 lake_root: str | None = None) -> set[dt.date]:
    """Dates in ``[start, end]`` on which ``table`` passed the gate (from ``quality.validations``)."""
    try:
        v = deltars.read_table("quality.validations", start, end,
                               columns=["date", "table_name", "success"], lake_root=lake_root)
    except deltars.TableNotFound:
        return set()
    df = v.to_pandas()
    return set(df.loc[(df["table_name"] == table) & df["success"], "date"])
