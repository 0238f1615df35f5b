"""Benchmark the simulated market and its server.

Prints one table: generation of N stocks x Y years (goal < 60 s) and serving one full
trade date of /equities/bars/daily (goal < 0.5 s), each also as a ratio to its goal and
to a reference measured in the same run (a naive per-request pandas filter + to_dict of
the whole bars frame, i.e. what a server without the per-date index would do).

    .venv/bin/python benchmarks/sim.py [--stocks 4000] [--years 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time

import requests

from gogooku3.market.server import serve_in_thread
from gogooku3.market.sim import MarketConfig, simulate_market


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stocks", type=int, default=4000)
    ap.add_argument("--years", type=int, default=5)
    args = ap.parse_args()
    end = dt.date(2025, 12, 30)
    start = dt.date(end.year - args.years, 1, 5)
    t0 = time.perf_counter()
    market = simulate_market(MarketConfig(stocks=args.stocks, start=start, end=end, seed=7))
    gen = time.perf_counter() - t0
    day = market.days[-10]
    key = "bench-key-000000"
    with serve_in_thread(market, key, page_size=100_000) as (url, _):
        session = requests.Session()
        session.headers["x-api-key"] = key
        times = []
        for _ in range(5):
            t = time.perf_counter()
            rows = session.get(f"{url}/equities/bars/daily", params={"date": day.isoformat()}).json()["data"]
            times.append(time.perf_counter() - t)
        serve = statistics.median(times)
    t = time.perf_counter()
    market.bars[market.bars["Date"] == day.isoformat()].to_dict("records")
    ref = time.perf_counter() - t
    print(f"market: {args.stocks} stocks x {len(market.days)} trading days = {len(market.bars):,} bar rows")
    print(f"{'measure':44s} {'seconds':>9s} {'goal':>6s} {'goal/actual':>12s}")
    print(f"{'generate market':44s} {gen:9.2f} {60:6.1f} {60 / gen:11.1f}x")
    label = f"serve one date of bars ({len(rows)} rows, HTTP+JSON)"
    print(f"{label:44s} {serve:9.3f} {0.5:6.1f} {0.5 / serve:11.1f}x")
    print(f"{'reference: in-process filter+to_dict (no HTTP)':44s} {ref:9.3f} {'':6s} "
          f"{'serve/ref %.1f' % (serve / ref):>12s}")
    print("oracle RankIC by horizon: " + ", ".join(f"{h}d {v:.3f}" for h, v in market.oracle.items()))


if __name__ == "__main__":
    main()
