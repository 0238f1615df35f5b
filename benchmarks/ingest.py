"""Ingestion throughput: this async client vs the official synchronous ClientV2.

Run against the simulated J-Quants-compatible server with added latency (20 ms in the
issue), e.g.::

    <start the simulated server on 127.0.0.1:8765 with 20 ms latency>
    .venv/bin/python benchmarks/ingest.py --url http://127.0.0.1:8765/v2 \\
        --start 2023-01-04 --end 2023-03-31 --key demo

Prints rows/s of ``/equities/bars/daily`` fetched one query per trade date (all codes)
for: the official client (``ClientV2.get_eq_bars_daily_range``, 5 threads, one query per
calendar day, a DataFrame) and this client at concurrency 1/10/50/150 into Arrow tables
typed for bronze (``get_many(as_table=True)``, what ingestion uses), plus once into dicts,
and the ratios, after one untimed warm-up pass (the server caches encoded pages). Writes the table to
``benchmarks/results/ingest.md`` with ``--write``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import time
from pathlib import Path

from gogooku3.ingest.bronze import page_fields
from gogooku3.jpx.calendar import TradingCalendar, parse_date
from gogooku3.jquants.client import JQuantsClient
from gogooku3.jquants.endpoints import endpoint

PATH = "/equities/bars/daily"


async def ours(url: str, key: str, days: list[dt.date], concurrency: int,
               as_table: bool = True) -> tuple[int, float, int]:
    """Rows, seconds and peak in-flight requests of one fan-out over ``days``: into Arrow
    tables typed as bronze asks (what ingestion uses), or into dicts (``as_table=False``)."""
    fields = page_fields(endpoint("bars_daily"))
    async with JQuantsClient(url, key, max_concurrent=concurrency) as client:
        t0 = time.perf_counter()
        pages = await client.get_many(PATH, [{"date": d.isoformat()} for d in days],
                                      as_table=as_table, fields=fields)
        secs = time.perf_counter() - t0
        rows = sum(p.num_rows if as_table else len(p) for p in pages)
        return rows, secs, client.stats.in_flight.peak


def official(url: str, key: str, start: dt.date, end: dt.date) -> tuple[int, float]:
    from jquantsapi import ClientV2

    class Local(ClientV2):
        JQUANTS_API_BASE = url.rstrip("/")

    client = Local(api_key=key)
    t0 = time.perf_counter()
    df = client.get_eq_bars_daily_range(start.isoformat(), end.isoformat())
    return len(df), time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--key", default="demo")
    p.add_argument("--start", required=True)
    p.add_argument("--end", required=True)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 50, 150])
    p.add_argument("--skip-official", action="store_true")
    p.add_argument("--write", action="store_true", help="write benchmarks/results/ingest.md")
    args = p.parse_args(argv)
    start, end = parse_date(args.start), parse_date(args.end)
    days = TradingCalendar().trading_days(start, end)
    rows_out = []
    base = None
    # one untimed pass first: the simulated server encodes each page once and caches it, so
    # every timed client below sees the same (warm) server and the table compares clients
    asyncio.run(ours(args.url, args.key, days, 50))
    if not args.skip_official:
        n, secs = official(args.url, args.key, start, end)
        base = n / secs
        rows_out.append(("official ClientV2 (5 threads)", n, secs, base, "-"))
    for c in args.concurrency:
        n, secs, peak = asyncio.run(ours(args.url, args.key, days, c))
        rows_out.append((f"gogooku3 async, concurrency {c} (peak {peak})", n, secs, n / secs, c))
    c = max(args.concurrency)
    n, secs, peak = asyncio.run(ours(args.url, args.key, days, c, as_table=False))
    rows_out.append((f"gogooku3 async, concurrency {c}, rows as dicts", n, secs, n / secs, c))
    lines = [f"ingest benchmark: {PATH}, {len(days)} trade dates {start}..{end}, {args.url}", "",
             "| client | rows | seconds | rows/s | x official |", "|---|---:|---:|---:|---:|"]
    for name, n, secs, rate, _ in rows_out:
        ratio = f"{rate / base:.1f}" if base else "-"
        lines.append(f"| {name} | {n:,} | {secs:.2f} | {rate:,.0f} | {ratio} |")
    text = "\n".join(lines)
    print(text)
    if args.write:
        out = Path(__file__).parent / "results" / "ingest.md"
        out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
