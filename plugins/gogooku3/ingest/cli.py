"""``gogooku3 ingest``: bronze + quality + silver for a date range (thin wrapper over the runner)."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)

#: exit status: some trade dates failed the gate or their fetch (they are not published)
EXIT_FAILED_DATES = 1
#: exit status: every date published, but endpoints outside the plan (HTTP 403) were skipped
EXIT_ENDPOINTS_SKIPPED = 3


def _ingest(args: argparse.Namespace) -> int:
    from gogooku3.ingest.context import not_in_plan_line
    from gogooku3.ingest.driver import ingest_range
    from gogooku3.jpx.calendar import parse_date
    from gogooku3.jquants.endpoints import endpoint, plan_endpoints
    from gogooku3.settings import get_settings

    start = parse_date(args.start, "--start")
    end = parse_date(args.end or args.start, "--end")
    source, *rest = args.source
    if source not in ("api", "files") or (source == "files") != bool(rest) or len(rest) > 1:
        raise ValueError("--source is 'api' or 'files PATH'")
    names = args.endpoints or list(plan_endpoints(get_settings().jquants_plan))
    for n in names:
        endpoint(n)  # fail early on a typo, naming the known endpoints
    summary = ingest_range(
        start, end, source=source, path=rest[0] if rest else None, endpoints=names,
        chunk_days=args.chunk_days, resume=not args.no_resume, progress=not args.quiet,
    )
    print(f"ingest {start}..{end}: {summary.trading_days} trade dates, "
          f"{len(summary.published)} published, {len(summary.skipped)} skipped (already done), "
          f"{len(summary.failed)} failed; {summary.requests} requests, {summary.retries} retries; "
          f"{summary.seconds:.1f}s (fetch {summary.fetch_seconds:.1f}s, GX {summary.gx_seconds:.1f}s)")
    for line in summary.table_lines():
        print("  " + line)
    for day, msgs in sorted(summary.failed.items()):
        print(f"  FAILED {day}: {msgs[0]}" + (f" (+{len(msgs) - 1} more)" if len(msgs) > 1 else ""))
    for name in summary.not_in_plan:
        print(f"  SKIPPED {not_in_plan_line(name)}")
    if not summary.ok:
        return EXIT_FAILED_DATES
    return EXIT_ENDPOINTS_SKIPPED if summary.not_in_plan else 0


def add_commands(subparsers) -> None:
    """Register ``ingest`` on the ``gogooku3`` command line."""
    p = subparsers.add_parser(
        "ingest", help="fetch J-Quants data into bronze, run the quality gate, build silver",
        epilog=f"exit status: 0 all published; {EXIT_FAILED_DATES} some dates failed; "
               f"{EXIT_ENDPOINTS_SKIPPED} endpoints outside the plan (HTTP 403) skipped")
    p.add_argument("--start", required=True, metavar="YYYY-MM-DD")
    p.add_argument("--end", metavar="YYYY-MM-DD", help="default: --start")
    p.add_argument("--source", nargs="+", default=["api"], metavar="api|files PATH",
                   help="'api' (J-Quants or the simulated server) or 'files PATH' "
                        "(J-Quants-shaped CSV/Parquet)")
    p.add_argument("--endpoints", nargs="+", metavar="NAME",
                   help="subset of: calendar master bars_daily topix fins_summary "
                        "investor_types margin_interest (default: those of JQUANTS_PLAN, "
                        "all when unset)")
    p.add_argument("--chunk-days", type=int, default=60,
                   help="trade dates per bronze/silver commit (default 60)")
    p.add_argument("--no-resume", action="store_true",
                   help="redo dates that already passed the gate")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_ingest)
