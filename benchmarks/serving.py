"""Serving latency and analytics speed, each against a reference measured in the same run.

    .venv/bin/python benchmarks/serving.py [--codes 4000] [--years 5] [--repeat 200]

1. Online lookup: gold.features and gold.predictions for ``--codes`` codes (the full
   catalogue schema, written with delta-rs into a temporary lake) are materialized into a
   private redis-server; then requests of 1, 100 and all codes for every served value
   (``feature_views.online_refs()``: the packed z-score, raw and forecast vectors and the
   model labels, 144 numbers per code) are timed
   through Feast (``FeatureStore.get_online_features(...).to_dict()``) and through
   ``online_lookup`` (the same plus the per-code rows the CLI prints), against reading the
   same columns of the same codes' latest date from the gold Delta tables (delta-rs,
   partition-pruned to that date). p50/p99 per request, milliseconds, and the median CPU
   time of a request in this process (what a request costs, apart from the machine's
   load).
2. Analytics: ``--years`` of 245 trade dates x ``--codes`` codes x 5 horizons of
   predictions in chdb; the ``top_decile`` query (one horizon, the whole span) against the
   same result computed with pandas on an in-memory DataFrame; both results are checked
   equal.

Prints markdown tables (saved in benchmarks/results/serving.md). Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "serving"))

HORIZONS = (1, 2, 3, 5, 10)


def _pct(samples: list[float]) -> tuple[float, float]:
    arr = np.asarray(samples) * 1000
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


def _timed(fn, repeat: int) -> list[float]:
    return _timed_cpu(fn, repeat)[0]


def _timed_cpu(fn, repeat: int) -> tuple[list[float], list[float]]:
    """Wall seconds and this process's CPU seconds of each of ``repeat`` calls."""
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


def _gold(root: str, codes: list[str], dates: list[dt.date]) -> None:
    from conftest import predictions_spec

    from gogooku3.lake import catalog, deltars

    rng = np.random.default_rng(7)
    for spec in (catalog.table("gold.features"), predictions_spec()):
        for day in dates:
            cols = {"date": pa.array([day] * len(codes), pa.date32()), "code": codes}
            for name, typ in spec.columns[2:]:
                cols[name] = (rng.normal(size=len(codes)) if typ in ("double", "float")
                              else ["atft_gat_fan" if name == "model_name" else "1"] * len(codes))
            table = pa.table(cols).cast(spec.arrow_schema())
            deltars.write_dates(table, spec, [day], lake_root=root)


def online(n_codes: int, repeat: int) -> list[tuple[str, int, float, float]]:
    """p50/p99 rows per (path, request size) over a temporary lake and redis-server."""
    codes = [f"{10000 + i:05d}" for i in range(n_codes)]
    dates = [d.date() for d in pd.bdate_range("2025-03-10", periods=3)]
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        return _online(Path(tmp), codes, dates, repeat)


def _online(tmp: Path, codes: list[str], dates: list[dt.date], repeat: int):
    from gogooku3.lake import deltars
    from gogooku3.serving import feast_store
    from gogooku3.serving.feature_views import (
        CS_Z_VIEW,
        FORECAST_VIEW,
        RAW_VIEW,
        online_refs,
        view_columns,
    )
    from gogooku3.serving.redis_server import RedisServer, free_port
    from gogooku3.settings import load_settings

    n_codes = len(codes)
    _gold(str(tmp / "lake"), codes, dates)
    server = RedisServer(free_port(), tmp / "redis").start()
    try:
        settings = load_settings(lake_root=str(tmp / "lake"), redis_url=server.url,
                                 feast_data_dir=str(tmp / "feast"))
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # Feast prints its progress
            feast_store.materialize(dates[-1], dates[0], settings=settings)
        print(f"materialize {n_codes} codes x 3 dates: {time.perf_counter() - t0:.1f} s",
              file=sys.stderr)
        store = feast_store.feature_store(settings)
        refs = online_refs()
        feat_cols = [*view_columns()[CS_Z_VIEW], *view_columns()[RAW_VIEW]]
        pred_cols = list(view_columns()[FORECAST_VIEW])
        rows = []
        for size in sorted({1, min(100, n_codes), n_codes}):
            reps = repeat if size <= 100 else max(5, repeat // 20)

            def pick(size=size):
                return random.sample(codes, size)

            def feast_raw():
                store.get_online_features(
                    features=refs, entity_rows=[{"code": c} for c in pick()]).to_dict(True)

            def lookup():
                feast_store.online_lookup(pick(), store)

            def delta():
                wanted = pa.array(pick())
                for table, cols in (("gold.features", feat_cols), ("gold.predictions", pred_cols)):
                    data = deltars.read_table(table, dates[-1], dates[-1], ["code", *cols],
                                              lake_root=settings.lake_uri)
                    data.filter(pa.compute.is_in(data.column("code"), wanted))

            for name, fn in (("Feast get_online_features (Redis)", feast_raw),
                             ("online_lookup (Feast + rows)", lookup),
                             ("gold Delta read (delta-rs)", delta)):
                fn()  # warm-up
                n = reps if "Delta" not in name else max(5, reps // 10)
                wall, cpu = _timed_cpu(fn, n)
                rows.append((name, size, *_pct(wall), _pct(cpu)[0]))
                print(f"{name}, {size} codes, {n} requests: p50/p99 {rows[-1][2]:.1f}/"
                      f"{rows[-1][3]:.1f} ms, CPU p50 {rows[-1][4]:.1f} ms", file=sys.stderr,
                      flush=True)
        print(f"Feast values per code: {len(refs)} ({len(feat_cols) + len(pred_cols)} numbers "
              "and labels)", file=sys.stderr)
        return rows
    finally:
        server.stop()


def analytics(n_codes: int, years: int) -> list[tuple[str, float]]:
    from gogooku3.serving.clickhouse import ClickHouse

    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2020-01-06", periods=245 * years).date
    codes = pd.Categorical([f"{10000 + i:05d}" for i in range(n_codes)])
    n = len(dates) * n_codes
    frames = []
    for h in HORIZONS:
        point = rng.normal(size=n)
        frames.append(pd.DataFrame({
            "date": np.repeat(dates, n_codes), "code": np.tile(codes, len(dates)),
            "horizon": np.uint8(h), "point": point, "q10": point - 1, "q90": point + 1,
            "model_name": "atft_gat_fan", "model_version": "1"}))
    df = pd.concat(frames, ignore_index=True)
    start, end = dates[0], dates[-1]
    print(f"predictions: {len(df):,} rows ({years} years x {n_codes} codes x 5 horizons)",
          file=sys.stderr)
    out = []
    with tempfile.TemporaryDirectory(prefix="bench-chdb-") as tmp, \
            ClickHouse(f"chdb://{tmp}") as ch:
        t0 = time.perf_counter()
        table = pa.Table.from_pandas(df.astype({"code": str}), preserve_index=False)
        ch.replace_dates("predictions", table, start, end)
        del table
        out.append(("load into chdb (once)", time.perf_counter() - t0))
        got = None

        def chdb_query():
            nonlocal got
            got = ch.query("top_decile", horizon=5, start=start, end=end)

        def pandas_query():
            sub = df[(df.horizon == 5) & (df.date >= start) & (df.date <= end)
                     & df.point.notna()]
            sub = sub.sort_values(["date", "point", "code"], ascending=[True, False, True])
            rank = sub.groupby("date").cumcount()
            size = sub.groupby("date")["code"].transform("size")
            return sub[rank < np.ceil(size / 10)]

        want = pandas_query()
        out.append(("top_decile: chdb", float(np.median(_timed(chdb_query, 3)))))
        out.append(("top_decile: pandas", float(np.median(_timed(pandas_query, 3)))))
        assert len(got) == len(want) == len(dates) * math.ceil(n_codes / 10)
        assert list(got.code.astype(str)) == list(want.code.astype(str))
    return out


def _stop_on_signal() -> None:
    import signal

    def _raise(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _raise)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codes", type=int, default=4000)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=100,
                        help="requests per size up to 100 codes (1/20 of it, >= 5, for all)")
    parser.add_argument("--skip-analytics", action="store_true")
    args = parser.parse_args(argv)
    _stop_on_signal()
    print(f"machine: {os.cpu_count()} cores, load averages {_load()} at start")
    rows = online(args.codes, args.repeat)
    print(f"\nload averages {_load()} after the online lookups")
    print("\n| path | codes per request | p50 ms | p99 ms | CPU ms p50 | p99 / Feast p99 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    ref = {size: p99 for name, size, _, p99, _ in rows if name.startswith("Feast")}
    for name, size, p50, p99, cpu in rows:
        print(f"| {name} | {size} | {p50:.1f} | {p99:.1f} | {cpu:.1f} | {p99 / ref[size]:.2f} |")
    if not args.skip_analytics:
        res = analytics(args.codes, args.years)
        pandas_s = dict(res)["top_decile: pandas"]
        print("\n| step | seconds | / pandas |")
        print("| --- | ---: | ---: |")
        for name, secs in res:
            print(f"| {name} | {secs:.2f} | {secs / pandas_s:.2f} |")
    print(f"\nload averages {_load()} at the end")


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
