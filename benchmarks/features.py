"""Feature-build benchmark: the Spark job vs pandas + TA-Lib per stock vs Polars.

Simulates N stocks × Y years (``gogooku3.market.sim``), loads it into silver (Delta,
through the same silver transforms ingestion uses), then measures in one run, each engine
in its own process (wall clock and peak RSS of its whole process tree, JVM included):

* Spark full build: ``spark_jobs/build_features.py --start --end`` over every date
  (read silver → write gold), rows/s = price rows written;
* Spark daily incremental: the same job for the last date only, Spark start-up included;
* pandas + TA-Lib: a straightforward per-stock loop computing the price/technical/volume
  features (read silver → write Parquet);
* Polars: a representative subset (returns, volatilities, SMA/EMA gaps, RSI, Bollinger,
  volume ratios) with ``over("code")`` expressions (read silver → write Parquet).

    .venv/bin/python benchmarks/features.py [--stocks 4000] [--years 5] [--write]

``--repeat N`` runs every engine N times (interleaved). ``--write`` saves the table to
``benchmarks/results/features.md`` (``--results`` another file). Goals (issue 22), on this
2-core machine: full build of 4,000 stocks x 5 years >= 15,000 rows/s and >= 0.25x the
pandas + TA-Lib reference of the same run; one date at 4,000 stocks, Spark start-up
included, < 45 s; peak RSS < 12 GiB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


# ---- simulated market -> silver ---------------------------------------------------------


def _dates(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s).dt.date


def _master_asof(master: pd.DataFrame, days: list[dt.date]) -> pd.DataFrame:
    """``silver.master_asof`` for the simulator's master, vectorized.

    The simulated attributes of a code change at most once and never revert, and a code
    is listed on one contiguous range of days, so each attribute combination of a code is
    one interval: ``[first day, trading day after its last day)``.
    """
    from gogooku3.ingest import silver

    m = master.assign(date=_dates(master["Date"]))
    if len(m) < 200_000:
        return silver.master_asof(m)
    keys = ["Code", "CoName", "S17", "S33", "S33Nm", "Mkt", "ScaleCat"]
    g = m.groupby(keys, sort=False)["date"].agg(["min", "max"]).reset_index()
    nxt = {d: days[i + 1] if i + 1 < len(days) else None for i, d in enumerate(days)}
    return pd.DataFrame({
        "code": g["Code"], "valid_from": g["min"], "valid_to": g["max"].map(nxt),
        "company_name": g["CoName"], "sector17_code": g["S17"], "sector33_code": g["S33"],
        "sector33_name": g["S33Nm"], "market_code": g["Mkt"], "scale_category": g["ScaleCat"],
    })


def silver_frames(market) -> dict[str, pd.DataFrame]:
    """The simulated market as silver tables (pandas), via ``gogooku3.ingest.silver``."""
    from gogooku3.ingest import silver
    from gogooku3.jpx.calendar import TradingCalendar

    cal = TradingCalendar()
    bars = market.bars.rename(columns={"Date": "date"})
    bars["date"] = _dates(bars["date"])
    fins = market.fins.copy()
    for col in ("DiscDate", "CurPerSt", "CurPerEn", "CurFYSt", "CurFYEn"):
        fins[col] = _dates(fins[col].replace("", None))
    for col in ("Sales", "OP", "OdP", "NP", "EPS", "TA", "Eq", "BPS", "FSales", "FOP", "FOdP",
                "FNP", "FEPS", "ShOutFY"):
        fins[col] = pd.to_numeric(fins[col], errors="coerce")
    inv = market.investor_types.copy()
    for col in ("PubDate", "StDate", "EnDate"):
        inv[col] = _dates(inv[col])
    margin = market.margin.rename(columns={"Date": "AsOfDate"})
    for col in ("PubDate", "AsOfDate"):
        margin[col] = _dates(margin[col])
    topix = market.topix.rename(columns={"Date": "date"})
    topix["date"] = _dates(topix["date"])
    return {
        "silver.equities_prices_daily": silver.adjust_prices(bars),
        "silver.indices_topix_daily": silver.topix(topix),
        "silver.equities_master_asof": _master_asof(market.master, market.days),
        "silver.fins_statements": silver.statements(fins, cal),
        "silver.investor_flows": silver.investor_flows(inv, cal),
        "silver.margin_interest": silver.margin_interest(margin, cal),
    }


def write_silver(frames: dict[str, pd.DataFrame], lake_root: str) -> None:
    """Write silver frames to Delta under ``lake_root`` (delta-rs, no JVM)."""
    import pyarrow as pa

    from gogooku3.lake import catalog, deltars

    for name, df in frames.items():
        spec = catalog.table(name)
        table = pa.Table.from_pandas(df[spec.column_names], preserve_index=False)
        table = table.cast(spec.arrow_schema())
        dates = sorted(set(df["date"])) if spec.partition_by else None
        deltars.write_dates(table, spec, dates, lake_root=lake_root)


def build_sim_lake(lake_root: str, stocks: int, start: dt.date, end: dt.date, seed: int = 7):
    """Simulate and load silver; returns the ``SimulatedMarket``."""
    from gogooku3.market.sim import MarketConfig, simulate_market

    market = simulate_market(MarketConfig(stocks=stocks, start=start, end=end, seed=seed))
    write_silver(silver_frames(market), lake_root)
    return market


# ---- engines (each runs in its own process: python benchmarks/features.py --engine X) -----

def _read_prices(lake_root: str) -> pd.DataFrame:
    from gogooku3.lake import deltars

    cols = ["date", "code", "adj_open", "adj_high", "adj_low", "adj_close", "adj_volume",
            "turnover", "upper_limit_hit", "lower_limit_hit"]
    df = deltars.read_table("silver.equities_prices_daily", columns=cols,
                            lake_root=lake_root).to_pandas()
    return df.sort_values(["code", "date"], kind="stable").reset_index(drop=True)


def _talib_one(g: pd.DataFrame) -> dict[str, np.ndarray]:
    """Price/technical/volume features of one stock with TA-Lib (the per-stock reference)."""
    import talib

    o, h, lo, c = (g[k].to_numpy(float) for k in ("adj_open", "adj_high", "adj_low", "adj_close"))
    v = g["adj_volume"].to_numpy(float)
    tv = g["turnover"].to_numpy(float)
    cs = pd.Series(c).ffill()
    f: dict[str, np.ndarray] = {}
    lr = np.log(cs / cs.shift(1)).to_numpy()
    for n in (1, 2, 3, 5, 10, 20, 60):
        f[f"ret_{n}d"] = (c / cs.shift(n)).to_numpy() - 1
    f["log_ret_1d"] = lr
    for n in (5, 10, 20, 60):
        f[f"vol_{n}d"] = pd.Series(lr).rolling(n).std().to_numpy()
    hl = np.log(h / lo) ** 2
    f["parkinson_vol_20d"] = np.sqrt(pd.Series(hl).rolling(20).mean().to_numpy() / (4 * np.log(2)))
    gk = 0.5 * hl - (2 * np.log(2) - 1) * np.log(c / o) ** 2
    f["gk_vol_20d"] = np.sqrt(pd.Series(gk).rolling(20).mean().to_numpy())
    for n in (5, 10, 20, 60, 120):
        f[f"sma_gap_{n}"] = c / talib.SMA(c, n) - 1
        f[f"ema_gap_{n}"] = c / talib.EMA(c, n) - 1
    macd, sig, hist = talib.MACD(c, 12, 26, 9)
    f["macd_12_26_9"], f["macd_signal_12_26_9"], f["macd_hist_12_26_9"] = macd, sig, hist
    f["rsi_2"], f["rsi_14"] = talib.RSI(c, 2), talib.RSI(c, 14)
    up, mid, dn = talib.BBANDS(c, 20, 2, 2)
    f["bb_pctb_20"] = (c - dn) / (up - dn)
    f["bb_width_20"] = (up - dn) / mid
    f["atr_14"] = talib.ATR(h, lo, c, 14) / c
    f["adx_14"] = talib.ADX(h, lo, c, 14)
    f["stoch_k_14"], f["stoch_d_14"] = talib.STOCH(h, lo, c, 14, 3, 0, 3, 0)
    f["willr_14"] = talib.WILLR(h, lo, c, 14)
    f["cci_20"] = talib.CCI(h, lo, c, 20)
    f["mfi_14"] = talib.MFI(h, lo, c, v, 14)
    obv = pd.Series(talib.OBV(c, v))
    f["obv_z_20"] = ((obv - obv.rolling(20).mean()) / obv.rolling(20).std()).to_numpy()
    f["roc_10"] = talib.ROC(c, 10)
    vs = pd.Series(v)
    f["volume_ratio_5"] = (vs / vs.rolling(5).mean()).to_numpy()
    f["volume_ratio_20"] = (vs / vs.rolling(20).mean()).to_numpy()
    ts = pd.Series(tv)
    f["turnover_z_20"] = ((ts - ts.rolling(20).mean()) / ts.rolling(20).std()).to_numpy()
    f["amihud_20"] = (pd.Series(np.abs(f["ret_1d"]) / tv).rolling(20).mean() * 1e9).to_numpy()
    f["dist_52w_high"] = c / pd.Series(h).rolling(245, min_periods=1).max().to_numpy() - 1
    f["dist_52w_low"] = c / pd.Series(lo).rolling(245, min_periods=1).min().to_numpy() - 1
    return f


def engine_pandas(lake_root: str, out: str) -> int:
    """Straightforward per-stock loop: groupby(code) -> TA-Lib -> concat -> Parquet."""
    df = _read_prices(lake_root)
    parts = []
    for _, g in df.groupby("code", sort=False):
        feats = pd.DataFrame(_talib_one(g), index=g.index)
        parts.append(pd.concat([g[["date", "code"]], feats], axis=1))
    res = pd.concat(parts, ignore_index=True)
    res.to_parquet(out, index=False)
    return len(res)


def engine_polars(lake_root: str, out: str) -> int:
    """A representative subset with Polars window expressions over each code."""
    import polars as pl

    df = pl.from_pandas(_read_prices(lake_root)).sort("code", "date")
    c = pl.col("adj_close").forward_fill().over("code")
    lr = (c / c.shift(1)).log().over("code")
    exprs = [(pl.col("adj_close") / c.shift(n).over("code") - 1).alias(f"ret_{n}d")
             for n in (1, 2, 3, 5, 10, 20, 60)]
    exprs += [lr.rolling_std(n).over("code").alias(f"vol_{n}d") for n in (5, 10, 20, 60)]
    exprs += [(pl.col("adj_close") / pl.col("adj_close").rolling_mean(n).over("code") - 1)
              .alias(f"sma_gap_{n}") for n in (5, 10, 20, 60, 120)]
    exprs += [(pl.col("adj_close") / pl.col("adj_close").ewm_mean(span=n, adjust=False)
               .over("code") - 1).alias(f"ema_gap_{n}") for n in (5, 10, 20, 60, 120)]
    d = pl.col("adj_close").diff().over("code")
    gain = d.clip(lower_bound=0).ewm_mean(alpha=1 / 14, adjust=False).over("code")
    loss = (-d).clip(lower_bound=0).ewm_mean(alpha=1 / 14, adjust=False).over("code")
    exprs.append((100 - 100 / (1 + gain / loss)).alias("rsi_14"))
    m20 = pl.col("adj_close").rolling_mean(20).over("code")
    s20 = pl.col("adj_close").rolling_std(20, ddof=0).over("code")
    exprs.append(((pl.col("adj_close") - (m20 - 2 * s20)) / (4 * s20)).alias("bb_pctb_20"))
    exprs.append((4 * s20 / m20).alias("bb_width_20"))
    for n in (5, 20):
        exprs.append((pl.col("adj_volume") / pl.col("adj_volume").rolling_mean(n).over("code"))
                     .alias(f"volume_ratio_{n}"))
    res = df.select("date", "code", *exprs)
    res.write_parquet(out)
    return res.height


# ---- orchestration -------------------------------------------------------------------------


class PeakRSS:
    """Samples the summed RSS of a process and all its descendants (JVM, Python workers)."""

    def __init__(self, pid: int, every: float = 0.2):
        import psutil

        self.proc, self.every, self.peak = psutil.Process(pid), every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
                total = 0
                for p in procs:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, total)
            except psutil.Error:
                pass
            self._stop.wait(self.every)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def measure(cmd: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """(wall seconds, peak RSS bytes of the process tree, stdout) of one engine process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)
    rss = PeakRSS(proc.pid)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    peak = rss.stop()
    if proc.returncode != 0:
        log = Path(tempfile.mkstemp(prefix="bench-features-", suffix=".stderr.log")[1])
        log.write_text(stderr)
        errors = [ln for ln in stderr.splitlines() if "Error" in ln or "Caused by" in ln][:10]
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}); whole stderr in {log};"
                           " first error lines:\n" + "\n".join(errors))
    return wall, peak, stdout


def _engine_main(args) -> None:
    if args.engine == "pandas":
        n = engine_pandas(args.lake, args.out)
    else:
        n = engine_polars(args.lake, args.out)
    print(json.dumps({"rows": n}))


def _available_gib() -> float:
    import psutil

    return psutil.virtual_memory().available / 2**30


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stocks", type=int, default=4000)
    ap.add_argument("--years", type=int, default=5)
    ap.add_argument("--workdir", default=str(ROOT / ".cache" / "bench-features"))
    ap.add_argument("--reuse-lake", action="store_true", help="skip simulation if the lake exists")
    ap.add_argument("--engines", default="spark,spark-incremental,pandas,polars")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each engine (interleaved)")
    ap.add_argument("--write", action="store_true", help="write the results file")
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "features.md"))
    ap.add_argument("--engine", help=argparse.SUPPRESS)
    ap.add_argument("--lake", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--start", help=argparse.SUPPRESS)
    ap.add_argument("--end", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.engine:
        _engine_main(args)
        return 0

    work = Path(args.workdir)
    lake = work / f"lake_{args.stocks}x{args.years}"
    end = dt.date(2025, 12, 30)
    start = end - dt.timedelta(days=round(365.25 * args.years))
    t0 = time.perf_counter()
    if not (args.reuse_lake and (lake / "silver").exists()):
        build_sim_lake(str(lake), args.stocks, start, end)
    load_s = time.perf_counter() - t0
    from gogooku3.lake import deltars

    info = deltars.table_info("silver.equities_prices_daily", lake_root=str(lake))
    days = sorted(deltars.read_table("silver.indices_topix_daily", columns=["date"],
                                     lake_root=str(lake)).column("date").to_pylist())
    first_build = days[0]
    env = {**os.environ, "GOGOOKU_LAKE": str(lake), "SPARK_EVENT_LOG_DIR": str(work / "events"),
           "PYSPARK_PYTHON": PY}
    rows_out = []
    load = os.getloadavg()
    mem = _available_gib()
    print(f"start {dt.datetime.now(dt.UTC):%H:%M:%S} UTC: load average {load[0]:.2f} {load[1]:.2f}"
          f" {load[2]:.2f}, {mem:.1f} GiB available", flush=True)
    for rep in range(1, args.repeat + 1):
        for eng in args.engines.split(","):
            out = str(work / f"out_{eng}")
            if eng in ("spark", "spark-incremental"):
                lo = days[-1] if eng == "spark-incremental" else first_build
                cmd = [PY, "-m", "spark_jobs.build_features", "--start", lo.isoformat(),
                       "--end", days[-1].isoformat()]
                wall, peak, _ = measure(cmd, env)
                n = (info.rows // max(info.dates, 1)) if eng == "spark-incremental" else info.rows
                what = "one date" if eng == "spark-incremental" else "full build"
                label = (f"Spark build_features.py (all features + normalization + labels + "
                         f"peer graph), {what}")
            else:
                cmd = [PY, __file__, "--engine", eng, "--lake", str(lake), "--out",
                       out + ".parquet", "--start", first_build.isoformat(),
                       "--end", days[-1].isoformat()]
                wall, peak, stdout = measure(cmd, env)
                n = json.loads(stdout.strip().splitlines()[-1])["rows"]
                label = {"pandas": "pandas + TA-Lib per stock (price/technical/volume, ~50 features)",
                         "polars": "Polars over(code) (subset: ~30 price/technical features)"}[eng]
            rows_out.append((f"{label}, run {rep}", n, wall, peak))
            print(f"{rows_out[-1][0]}: {wall:.1f} s, peak RSS {peak / 2**30:.2f} GiB, load"
                  f" average now {os.getloadavg()[0]:.2f}", flush=True)

    lines = [
        f"features benchmark: {args.stocks} stocks x {args.years} years simulated "
        f"({info.rows:,} silver price rows, {info.dates} dates); silver load {load_s:.0f} s",
        f"machine: {os.cpu_count()} cores; load average at start {load[0]:.2f} {load[1]:.2f} "
        f"{load[2]:.2f}, {mem:.1f} GiB memory available; load at end "
        f"{os.getloadavg()[0]:.2f}; finished {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        "| engine | rows | wall s (incl. start-up) | rows/s | rows/s vs pandas + TA-Lib |"
        " peak RSS (tree) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    pandas = [n / wall for label, n, wall, _ in rows_out if label.startswith("pandas")]
    ref = sum(pandas) / len(pandas) if pandas else None  # mean of this invocation's runs
    for label, n, wall, peak in rows_out:
        ratio = f"{n / wall / ref:.2f}x" if ref else "-"
        lines.append(f"| {label} | {n:,} | {wall:.1f} | {n / wall:,.0f} | {ratio} |"
                     f" {peak / 2**30:.2f} GiB |")
    text = "\n".join(lines)
    print(text)
    if args.write:
        Path(args.results).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
