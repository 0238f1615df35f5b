"""Great Expectations Data Docs from the stored gate results (``quality.validations``).

``build(start, end)`` renders every GX validation stored for trade dates in
``[start, end]`` into a static HTML site (GX's own Data Docs renderer, one file-backed
GX project under ``out_dir``) and returns the path of its ``index.html``:

* a batch validation (the gate validates a batch of dates at once; its first passing
  date stores the batch's result with ``"batch": "first..last"``, the others point to
  that date) is one page, run name = the batch — also for a range that starts after the
  storing date;
* a date validated on its own (a failing date) is one page, run name = the date;
* a stored failure that never reached GX (``{"error": ...}``, e.g. an empty trading
  day) has no GX result to render: it is counted in ``DocsSummary.not_rendered`` and
  still listed by ``quality.validations``.

The site is rebuilt from the lake each time: the lake is the record, the site a view.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from gogooku3.lake import deltars
from gogooku3.settings import get_settings

log = logging.getLogger(__name__)

COLUMNS = ["date", "table_name", "success", "result_json", "run_at"]


@dataclass(frozen=True)
class DocsSummary:
    index: Path
    rendered: int
    not_rendered: int
    failed: int


def default_out_dir() -> Path:
    return get_settings().resolved_path("cache_dir") / "data_docs"


def _parsed(rows):
    """``((table, run name), row, GX result without its batch label)`` in table/date order."""
    for row in sorted(rows, key=lambda r: (r["table_name"], r["date"])):
        result = json.loads(row["result_json"] or "{}")
        yield (row["table_name"], result.pop("batch", None) or row["date"].isoformat()), row, result


def stored_results(start: dt.date, end: dt.date, lake_root: str | None = None):
    """``(table, run name, run time, GX result dict)`` per distinct stored GX validation,
    and how many stored rows had none."""
    try:
        rows = deltars.read_table("quality.validations", start, end, columns=COLUMNS,
                                  lake_root=lake_root).to_pylist()
    except deltars.TableNotFound as exc:
        raise LookupError(f"quality.validations has not been written ({exc})") from None
    seen: dict[tuple[str, str], tuple] = {}
    pointers: dict[tuple[str, str], dt.date] = {}  # (table, batch) -> the date storing it
    missing = 0
    for key, row, result in _parsed(rows):
        if "results" in result:
            seen.setdefault(key, (*key, row["run_at"], result))
        elif "stored_on" in result:
            pointers.setdefault(key, dt.date.fromisoformat(result["stored_on"]))
        else:
            missing += 1
    # a batch stored on a date before ``start``: read that date too
    away = {k: d for k, d in pointers.items() if k not in seen}
    if away:
        more = deltars.read_table("quality.validations", min(away.values()), max(away.values()),
                                  columns=COLUMNS, lake_root=lake_root).to_pylist()
        for key, row, result in _parsed(more):
            if key in away and row["date"] == away[key] and "results" in result:
                seen.setdefault(key, (*key, row["run_at"], result))
    missing += sum(k not in seen for k in away)  # its home row is gone (not written by the gate)
    return list(seen.values()), missing


def build(start: dt.date, end: dt.date, out_dir: str | Path | None = None,
          lake_root: str | None = None) -> DocsSummary:
    """Render the Data Docs site for ``[start, end]`` (module docstring)."""
    if start > end:
        raise ValueError(f"data docs: start {start} is after end {end}")
    results, missing = stored_results(start, end, lake_root)
    if not results:
        raise LookupError(f"quality.validations holds no GX result for {start}..{end}")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResultSchema,
    )
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    root = Path(out_dir or default_out_dir()).resolve()
    root.mkdir(parents=True, exist_ok=True)
    ctx = gx.get_context(mode="file", project_root_dir=str(root))
    schema = ExpectationSuiteValidationResultSchema()
    failed = 0
    for table, run, run_at, result in results:
        run_time = run_at if run_at.tzinfo else run_at.replace(tzinfo=dt.UTC)
        run_id = RunIdentifier(run_name=run, run_time=run_time)
        validation = schema.load(result)
        validation.meta["run_id"] = run_id  # the page's "Run Name" / "Run Time"
        key = ValidationResultIdentifier(ExpectationSuiteIdentifier(table), run_id, run)
        ctx.validation_results_store.set(key, validation)
        failed += not result.get("success", False)
    site = ctx.build_data_docs()
    index = Path(next(iter(site.values())).removeprefix("file://"))
    log.info("data docs: %d validations (%d failed) -> %s", len(results), failed, index)
    return DocsSummary(index, len(results), missing, failed)


def _docs(args) -> int:
    from gogooku3.jpx.calendar import parse_date

    start = parse_date(args.start, "--start")
    end = parse_date(args.end or args.start, "--end")
    s = build(start, end, args.out)
    print(f"data docs {start}..{end}: {s.rendered} GX validations ({s.failed} failed)"
          + (f", {s.not_rendered} stored failures without a GX result" if s.not_rendered else "")
          + f"\n  {s.index}")
    return 0


def add_commands(subparsers) -> None:
    """Register ``quality docs`` on the ``gogooku3`` command line."""
    q = subparsers.add_parser("quality", help="quality-gate results").add_subparsers(
        dest="quality_command", required=True)
    p = q.add_parser("docs", help="build GX Data Docs (HTML) from quality.validations")
    p.add_argument("--start", required=True, metavar="YYYY-MM-DD")
    p.add_argument("--end", metavar="YYYY-MM-DD", help="default: --start")
    p.add_argument("--out", help="site directory (default: <cache_dir>/data_docs)")
    p.set_defaults(func=_docs)
