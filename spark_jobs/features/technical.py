"""Technical indicators with TA-Lib's definitions, on split-adjusted prices.

Bounded-window indicators (SMA gaps, Bollinger, stochastics, Williams %R, CCI, MFI, ROC)
are Spark window expressions over the code's traded series (``prices.series_window``).

Recursive indicators — EMA gaps, MACD, RSI, ATR, ADX — and the OBV z-score are computed by
one grouped-map pandas UDF per code (``recursive_indicators``). Why a UDF: each value
is a recursion over all earlier values (``y_t = a·x_t + (1-a)·y_{t-1}``, seeded with an
SMA), and MACD's signal and ADX nest one recursion inside another; Spark's window
functions have no recursive frame, and the exact closed form as a weighted sum needs
``(1-a)^-t`` factors that overflow doubles within a few hundred rows for RSI-2. In numpy
the recursion is one ``scipy.signal.lfilter`` call (C speed).

Seeding (so that a daily run equals a full rebuild bit for bit and reads only
``LOOKBACK`` days): trading days are cut into calendar-anchored *epochs* of
``EPOCH = 60`` trading days (``_tidx // EPOCH``). For a row in epoch ``b`` the
indicators are TA-Lib's, run on the code's series starting at the first traded row with
``_tidx >= b·EPOCH − WARMUP`` (``WARMUP = 200``): every value uses 200–259 trading days
of history, never more than ``LOOKBACK``, and never anything after its date. Within that
series the values equal TA-Lib's exactly, including TA-Lib's warm-up (null before
TA-Lib's lookback); against TA-Lib run on a stock's whole history they differ only by the
seed's decayed weight ``(1-a)^200``: below 1e-6 relative for EMA ≤ 20, RSI-2/14 and ATR-14
(Wilder-14: ``(13/14)^200 ≈ 4e-7``); the longer memories — EMA-60/120, MACD's EMA-26 and
ADX's two nested Wilder sums — keep up to ~1e-5 relative (tests/spark_jobs/
test_technical_talib.py checks both statements against the TA-Lib package).

Price-level indicators are scale-free: MACD lines and ATR are divided by the day's
adjusted close; EMA/SMA are stored as gaps ``close / MA − 1``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, StructField, StructType
from scipy.signal import lfilter

from spark_jobs.features.prices import div, finish, full, prepare, rows_window, series_window

MA_WINDOWS = (5, 10, 20, 60, 120)
EPOCH = 60
WARMUP = 200

RECURSIVE: list[str] = [
    *[f"ema_gap_{n}" for n in MA_WINDOWS],
    "macd_12_26_9", "macd_signal_12_26_9", "macd_hist_12_26_9",
    "rsi_2", "rsi_14", "atr_14", "adx_14", "obv_z_20",
]
WINDOWED: list[str] = [
    *[f"sma_gap_{n}" for n in MA_WINDOWS],
    "bb_pctb_20", "bb_width_20", "stoch_k_14", "stoch_d_14", "willr_14", "cci_20",
    "mfi_14", "roc_12",
]
FEATURES: list[str] = [
    *[f"sma_gap_{n}" for n in MA_WINDOWS],
    *[f"ema_gap_{n}" for n in MA_WINDOWS],
    "macd_12_26_9", "macd_signal_12_26_9", "macd_hist_12_26_9",
    "rsi_2", "rsi_14", "bb_pctb_20", "bb_width_20", "atr_14", "adx_14",
    "stoch_k_14", "stoch_d_14", "willr_14", "cci_20", "mfi_14", "obv_z_20", "roc_12",
]


# ---- TA-Lib definitions on one contiguous series (numpy) ------------------------------


def ema(x: np.ndarray, n: int, alpha: float | None = None, first: int = 0) -> np.ndarray:
    """TA-Lib EMA: the mean of ``x[first:first+n]`` at ``first+n-1``, then
    ``y_t = a·x_t + (1-a)·y_{t-1}`` with ``a = 2/(n+1)`` (``alpha`` overrides: Wilder uses
    ``1/n``). NaN before ``first+n-1``."""
    a = 2.0 / (n + 1) if alpha is None else alpha
    out = np.full(len(x), np.nan)
    s = first + n - 1
    if len(x) <= s:
        return out
    seed = x[first : s + 1].mean()
    out[s] = seed
    if len(x) > s + 1:
        out[s + 1 :] = lfilter([a], [1.0, -(1.0 - a)], x[s + 1 :], zi=[(1.0 - a) * seed])[0]
    return out


def wilder(x: np.ndarray, n: int, first: int) -> np.ndarray:
    """Wilder's smoothing (``a = 1/n``) seeded with the mean of ``x[first:first+n]``."""
    return ema(x, n, alpha=1.0 / n, first=first)


def macd(c: np.ndarray, fast: int = 12, slow: int = 26, signal: int = 9):
    """TA-Lib MACD: both EMAs first valued at ``slow-1`` (the fast one seeded on
    ``c[slow-fast:slow]``), signal = EMA of the line seeded at ``slow-1``; all three NaN
    before ``slow+signal-2``."""
    line = ema(c, fast, first=slow - fast) - ema(c, slow)
    sig = ema(line, signal, first=slow - 1) if len(c) >= slow else np.full(len(c), np.nan)
    line = np.where(np.isnan(sig), np.nan, line)
    return line, sig, line - sig


def rsi(c: np.ndarray, n: int) -> np.ndarray:
    """TA-Lib RSI: Wilder averages of gains/losses seeded on the first ``n`` changes;
    ``100·G/(G+L)`` (0 when both are 0); first value at index ``n``."""
    d = np.diff(c, prepend=np.nan)
    g = wilder(np.maximum(d, 0.0), n, first=1)
    lo = wilder(np.maximum(-d, 0.0), n, first=1)
    tot = g + lo
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot != 0, 100.0 * g / tot, np.where(np.isnan(tot), np.nan, 0.0))


def true_range(h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> np.ndarray:
    pc = np.concatenate([[np.nan], c[:-1]])
    return np.fmax(h - lo, np.fmax(np.abs(h - pc), np.abs(lo - pc))) * np.where(np.isnan(pc), np.nan, 1)


def atr(h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: int) -> np.ndarray:
    """TA-Lib ATR: Wilder average of the true range seeded on ``TR[1..n]``; first at ``n``."""
    return wilder(true_range(h, lo, c), n, first=1)


def _wilder_sum(x: np.ndarray, n: int) -> np.ndarray:
    """TA-Lib's running-sum smoothing: ``S_{n-1} = Σ x[1..n-1]``, ``S_t = S_{t-1}·(1-1/n) + x_t``."""
    out = np.full(len(x), np.nan)
    if len(x) <= n:
        return out
    s0 = x[1:n].sum()
    out[n - 1] = s0
    k = 1.0 - 1.0 / n
    out[n:] = lfilter([1.0], [1.0, -k], x[n:], zi=[k * s0])[0]
    return out


def adx(h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: int) -> np.ndarray:
    """TA-Lib ADX: +DM/−DM (the larger move only) and TR smoothed by running Wilder sums,
    DX = 100·|+DI − −DI|/(+DI + −DI) from ``n``, ADX = mean of the first ``n`` DX (at
    ``2n−1``) then Wilder. A day with zero smoothed range counts DX = 0."""
    out = np.full(len(c), np.nan)
    if len(c) < 2 * n:
        return out
    up = np.diff(h, prepend=np.nan)
    dn = -np.diff(lo, prepend=np.nan)
    pdm = np.where((up > 0) & (up > dn), up, 0.0)
    mdm = np.where((dn > 0) & (dn > up), dn, 0.0)
    tr = true_range(h, lo, c)
    sp, sm, st = _wilder_sum(pdm, n), _wilder_sum(mdm, n), _wilder_sum(tr, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        pdi = 100.0 * sp / st
        mdi = 100.0 * sm / st
        dx = 100.0 * np.abs(pdi - mdi) / (pdi + mdi)
    dx = np.where(np.isfinite(dx), dx, 0.0)
    dx[:n] = np.nan
    return wilder(dx, n, first=n)


def obv_z(c: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    """z-score of TA-Lib's OBV against its last ``n`` values (population std); NaN for the
    first ``n-1`` values and where the window's OBV is constant."""
    step = np.sign(np.diff(c, prepend=c[:1])) * v
    step[0] = v[0]
    obv = np.cumsum(step)
    out = np.full(len(c), np.nan)
    if len(c) < n:
        return out
    win = np.lib.stride_tricks.sliding_window_view(obv, n)
    mu, sd = win.mean(axis=1), win.std(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[n - 1 :] = np.where(sd > 0, (obv[n - 1 :] - mu) / sd, np.nan)
    return out


def indicators(o, h, lo, c, v) -> dict[str, np.ndarray]:
    """The ``RECURSIVE`` columns for one contiguous series (TA-Lib semantics)."""
    out = {f"ema_gap_{n}": c / ema(c, n) - 1 for n in MA_WINDOWS}
    line, sig, hist = macd(c)
    out["macd_12_26_9"], out["macd_signal_12_26_9"], out["macd_hist_12_26_9"] = line / c, sig / c, hist / c
    out["rsi_2"], out["rsi_14"] = rsi(c, 2), rsi(c, 14)
    out["atr_14"] = atr(h, lo, c, 14) / c
    out["adx_14"] = adx(h, lo, c, 14)
    out["obv_z_20"] = obv_z(c, v, 20)
    return out


def epoch_indicators(pdf: pd.DataFrame, since: dt.date | None = None) -> pd.DataFrame:
    """One code's traded rows (sorted here) → ``RECURSIVE`` columns, epoch-seeded.

    Rows of epoch ``b`` take their values from the series that starts at the first row
    with ``_tidx >= b·EPOCH − WARMUP`` (module docstring). With ``since``, only rows dated
    ``>= since`` are returned and only their epochs computed (each epoch's values depend
    on its own series only, so they are the same as without ``since``)."""
    pdf = pdf.sort_values("date", kind="stable").reset_index(drop=True)
    first = 0  # position of the first row returned
    if since is not None:
        first = int(np.searchsorted(pdf["date"].to_numpy(), since, side="left"))
        tidx = pdf["_tidx"].to_numpy(dtype=np.int64)
        seed = (tidx[first] // EPOCH) * EPOCH - WARMUP if first < len(pdf) else np.inf
        pdf = pdf[tidx >= seed].reset_index(drop=True)  # rows are in date order: a suffix
        first -= len(tidx) - len(pdf)
    tidx = pdf["_tidx"].to_numpy(dtype=np.int64)
    arrays = [pdf[k].to_numpy(dtype=float) for k in ("adj_open", "adj_high", "adj_low", "adj_close", "adj_volume")]
    res = {k: np.full(len(pdf), np.nan) for k in RECURSIVE}
    epochs = tidx // EPOCH
    for b in np.unique(epochs[first:]):
        lo_pos = np.searchsorted(tidx, b * EPOCH - WARMUP, side="left")
        hi_pos = np.searchsorted(tidx, (b + 1) * EPOCH, side="left")
        keep = np.searchsorted(tidx, b * EPOCH, side="left")
        vals = indicators(*[a[lo_pos:hi_pos] for a in arrays])
        for k, arr in vals.items():
            res[k][keep:hi_pos] = arr[keep - lo_pos :]
    cols = {"date": pdf["date"].to_numpy()[first:], "code": pdf["code"].to_numpy()[first:]}
    cols |= {k: np.where(np.isfinite(res[k]), res[k], np.nan)[first:] for k in RECURSIVE}
    return pd.DataFrame(cols)  # one dict: inserting 13 columns one by one cost more than the maths


def recursive_indicators(df: DataFrame, since: dt.date | None = None) -> DataFrame:
    """``(date, code, RECURSIVE...)`` for the traded rows of ``df`` (needs ``_tidx``,
    ``_traded``) dated ``>= since`` (all without it); a grouped-map pandas UDF per code —
    see the module docstring for why."""
    schema = StructType(
        [df.schema["date"], df.schema["code"], *[StructField(k, DoubleType()) for k in RECURSIVE]]
    )
    rows = df.filter(F.col("_traded")).select(
        "date", "code", "_tidx", "adj_open", "adj_high", "adj_low", "adj_close", "adj_volume"
    )
    return rows.groupBy("code").applyInPandas(lambda pdf: epoch_indicators(pdf, since), schema)


# ---- bounded windows (Spark) ----------------------------------------------------------


def _windowed(df: DataFrame) -> DataFrame:
    w = series_window()
    c, h, lo, v = (F.col(k) for k in ("adj_close", "adj_high", "adj_low", "adj_volume"))
    tp = (h + lo + c) / 3
    cols: dict[str, Column] = {}
    for n in MA_WINDOWS:
        cols[f"sma_gap_{n}"] = F.when(full(n), c / F.avg(c).over(rows_window(n)) - 1)
    mid = F.avg(c).over(rows_window(20))
    sd = F.stddev_pop(c).over(rows_window(20))
    cols["bb_pctb_20"] = F.when(full(20), div(c - (mid - 2 * sd), 4 * sd))
    cols["bb_width_20"] = F.when(full(20), div(4 * sd, mid))
    hh, ll = F.max(h).over(rows_window(14)), F.min(lo).over(rows_window(14))
    rng = hh - ll
    cols["_stoch_k"] = F.when(full(14), F.when(rng != 0, 100 * (c - ll) / rng).otherwise(0.0))
    cols["willr_14"] = F.when(full(14), F.when(rng != 0, -100 * (hh - c) / rng).otherwise(0.0))
    cols["_tp"] = tp
    cols["_tp_prev"] = F.lag(tp, 1).over(w)
    cols["roc_12"] = F.when(full(13), 100 * (c / F.lag(c, 12).over(w) - 1))
    out = df.select("*", *[e.alias(k) for k, e in cols.items()])

    tp, tpp = F.col("_tp"), F.col("_tp_prev")
    flow = tp * v
    sma_tp = F.avg(tp).over(rows_window(20))
    more = {
        "stoch_k_14": F.col("_stoch_k"),
        "stoch_d_14": F.when(full(16), F.avg("_stoch_k").over(rows_window(3))),
        "_tp_sma": F.when(full(20), sma_tp),
        "_tp_list": F.collect_list(tp).over(rows_window(20)),
        "_pos": F.sum(F.when(tp > tpp, flow).otherwise(0.0)).over(rows_window(14)),
        "_neg": F.sum(F.when(tp < tpp, flow).otherwise(0.0)).over(rows_window(14)),
    }
    out = out.select("*", *[e.alias(k) for k, e in more.items()])
    mean_dev = F.aggregate(
        "_tp_list", F.lit(0.0), lambda acc, x: acc + F.abs(x - F.col("_tp_sma"))
    ) / 20
    pos, neg = F.col("_pos"), F.col("_neg")
    out = out.withColumn(
        "cci_20",
        F.when(F.col("_tp_sma").isNotNull(),
               F.when(mean_dev != 0, (tp - F.col("_tp_sma")) / (0.015 * mean_dev)).otherwise(0.0)),
    ).withColumn(
        "mfi_14", F.when(full(15), F.when(pos + neg >= 1, 100 * pos / (pos + neg)).otherwise(0.0))
    )
    return out


def add_technical_features(df: DataFrame, since: dt.date | None = None) -> DataFrame:
    """``df`` (silver price rows) plus ``FEATURES`` (definitions in ``configs/features.yaml``).

    Rows without a trade get nulls; values on ``T`` use rows ``<= T`` within the
    look-back only (see ``prices`` and this module's docstring). With ``since`` the
    recursive indicators are computed for rows dated ``>= since`` only (null before):
    for a build whose earlier rows are look-back, read to be cut away."""
    base = prepare(df)
    rec = recursive_indicators(base, since)
    out = _windowed(base).join(rec, on=["date", "code"], how="left")
    return finish(df, out, FEATURES)
