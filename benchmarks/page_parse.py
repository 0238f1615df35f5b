"""Where the ingest client's time goes: decoding one J-Quants page, parser by parser.

    .venv/bin/python benchmarks/page_parse.py [--stocks 4000] [--repeat 40]

Builds one ``/equities/bars/daily`` page for a whole trade date as the simulated server
sends it (``{"data": [...]}``, gzip level 1) and times, on one thread, every way this
environment has to turn it into columns for bronze:

* the client's decoder (``_ArrowDecoder``: inflate + Arrow's JSON reader, typed);
* Arrow's JSON reader on the page rewritten as NDJSON (rows split at ``},{``);
* Polars' NDJSON reader on that text (one thread, like the others); orjson to dicts, then ``pa.Table.from_pylist``;
* orjson to dicts alone and the gzip inflate alone (lower parts of the above).

The ratio column is each time over the client decoder's. At concurrency 150 the
client spends most of its CPU here (``benchmarks/results/ingest.md``), so this table
bounds what a different parser could gain. Timings only; ``make test`` does not run it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import io
import os
import time

# one thread for every parser: the client already decodes pages in parallel, one per core
os.environ["POLARS_MAX_THREADS"] = "1"

import orjson  # noqa: E402
import polars as pl  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.json as pajson  # noqa: E402

from gogooku3.ingest.bronze import page_fields  # noqa: E402
from gogooku3.jquants import pages  # noqa: E402
from gogooku3.jquants.endpoints import endpoint  # noqa: E402
from gogooku3.market.queries import records  # noqa: E402
from gogooku3.market.server import GZIP_LEVEL  # noqa: E402
from gogooku3.market.sim import MarketConfig, simulate_market  # noqa: E402


def _ndjson(text: bytes) -> bytes:
    return text[text.index(b"[") + 1: text.rindex(b"]")].replace(b"},{", b"}\n{")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stocks", type=int, default=4000)
    p.add_argument("--repeat", type=int, default=40)
    args = p.parse_args(argv)

    market = simulate_market(MarketConfig(stocks=args.stocks, start=dt.date(2023, 1, 4),
                                          end=dt.date(2023, 3, 31), seed=7))
    text = orjson.dumps({"data": records(market.bars_for_date(market.days[-1]))})
    body = gzip.compress(text, compresslevel=GZIP_LEVEL)
    fields = page_fields(endpoint("bars_daily"))
    decoder = pages.ArrowDecoder(fields)
    row_schema = pa.schema(list(fields))
    nd_options = pajson.ParseOptions(explicit_schema=row_schema)
    pl_schema = pl.Schema(pl.from_arrow(row_schema.empty_table()).schema)

    def arrow_ndjson():
        nd = _ndjson(text)
        return pajson.read_json(pa.BufferReader(nd), parse_options=nd_options,
                                read_options=pajson.ReadOptions(use_threads=False,
                                                                block_size=len(nd) + 1))

    cases = {
        "client decoder: inflate + Arrow JSON (typed)": lambda: pages.decode(
            decoder, body, True),
        "Arrow JSON on the page as NDJSON": arrow_ndjson,
        "Polars NDJSON reader": lambda: pl.read_ndjson(io.BytesIO(_ndjson(text)),
                                                       schema=pl_schema).to_arrow(),
        "orjson dicts + pa.Table.from_pylist": lambda: pa.Table.from_pylist(
            orjson.loads(text)["data"], schema=row_schema),
        "orjson dicts only (no columns)": lambda: orjson.loads(text),
        "gzip inflate only (ISA-L)": lambda: pages.inflate(body),
    }
    timings = {}
    for name, fn in cases.items():
        fn()
        t0 = time.perf_counter()
        for _ in range(args.repeat):
            fn()
        timings[name] = (time.perf_counter() - t0) / args.repeat
    ref = timings["client decoder: inflate + Arrow JSON (typed)"]
    rows = len(orjson.loads(text)["data"])
    print(f"one /equities/bars/daily page: {rows:,} rows, {len(text) / 1e3:,.0f} kB JSON,"
          f" {len(body) / 1e3:,.0f} kB gzip; {args.repeat} repeats, one thread")
    print()
    print("| decoder | ms per page | MB/s of JSON | x client decoder |")
    print("|---|---:|---:|---:|")
    for name, secs in timings.items():
        print(f"| {name} | {secs * 1e3:.1f} | {len(text) / secs / 1e6:,.0f} | {secs / ref:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
