"""CLI: ``gogooku3 mock-jquants`` (serve the simulated market) and ``gogooku3 sim export``."""

from __future__ import annotations

import argparse
import logging
import os

log = logging.getLogger(__name__)


def _market_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stocks", type=int, default=500)
    p.add_argument("--start", default="2023-01-04", metavar="YYYY-MM-DD")
    p.add_argument("--end", default="2025-12-30", metavar="YYYY-MM-DD")
    p.add_argument("--seed", type=int, default=7)


def _market(args):
    from gogooku3.jpx.calendar import parse_date
    from gogooku3.market.sim import MarketConfig, simulate_market

    cfg = MarketConfig(stocks=args.stocks, start=parse_date(args.start, "--start"),
                       end=parse_date(args.end, "--end"), seed=args.seed)
    return simulate_market(cfg)


def _bad_rows(specs: list[str]):
    """``["2024-11-06:negative_price", ...]`` → ``BadRows`` (raises ``SystemExit`` on junk)."""
    from gogooku3.jpx.calendar import CalendarError, parse_date
    from gogooku3.market.server import BadRows

    by_date = {}
    for spec in specs:
        day, _, kind = spec.partition(":")
        try:
            by_date[parse_date(day, "--bad-row")] = kind
        except CalendarError as exc:
            raise SystemExit(f"--bad-row {spec!r}: {exc}") from None
    try:
        return BadRows(by_date)
    except ValueError as exc:
        raise SystemExit(f"--bad-row: {exc}") from None


def _serve(args: argparse.Namespace) -> int:
    from gogooku3.market.server import FaultConfig, run_server

    bad_rows = _bad_rows(args.bad_row)
    market = _market(args)
    faults = FaultConfig(rate_limit_per_s=args.rate_limit, retry_after_s=args.retry_after,
                         error_rate=args.error_rate, drop_rate=args.drop_rate,
                         latency_ms=args.latency_ms, seed=args.seed)
    print(f"simulated J-Quants v2: http://{args.host}:{args.port}/v2 "
          f"({args.stocks} stocks, {market.days[0]}..{market.days[-1]}, seed {args.seed}); "
          "Ctrl-C stops", flush=True)
    run_server(market, args.api_key, args.host, args.port, faults=faults,
               page_size=args.page_size, bad_rows=bad_rows, plan=args.plan)
    return 0


def _export(args: argparse.Namespace) -> int:
    from gogooku3.market.export import export_market

    for path in export_market(_market(args), args.out, args.format):
        print(path)
    return 0


def add_commands(sub) -> None:
    serve = sub.add_parser("mock-jquants", help="serve a simulated market over the J-Quants v2 API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--api-key", default=os.environ.get("JQUANTS_API_KEY", "demo-key"),
                       help="key clients must send as x-api-key (default: $JQUANTS_API_KEY or demo-key)")
    _market_args(serve)
    serve.add_argument("--page-size", type=int, default=5000)
    serve.add_argument("--plan", choices=["free", "light", "standard", "premium"],
                       help="answer 403 for endpoints outside this J-Quants plan "
                            "(default: serve every endpoint)")
    serve.add_argument("--latency-ms", type=float, default=0.0)
    serve.add_argument("--error-rate", type=float, default=0.0)
    serve.add_argument("--drop-rate", type=float, default=0.0)
    serve.add_argument("--rate-limit", type=float, default=None, help="requests/s before 429")
    serve.add_argument("--retry-after", type=float, default=1.0, help="Retry-After seconds on 429")
    serve.add_argument("--bad-row", action="append", default=[], metavar="DATE:KIND",
                       help="plant bad bars on DATE (negative_price, high_below_low, duplicate, "
                            "missing_day, bad_adjfactor); repeatable")
    serve.set_defaults(func=_serve)

    sim = sub.add_parser("sim", help="simulated market tools").add_subparsers(
        dest="sim_command", required=True)
    export = sim.add_parser("export", help="write the market as J-Quants-shaped files")
    export.add_argument("--out", required=True)
    export.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    _market_args(export)
    export.set_defaults(func=_export)
