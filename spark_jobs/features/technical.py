"""Technical indicators with TA-Lib's definitions, on split-adjusted prices.

Everything is numpy over a bucket of codes, run inside the build's per-code pass
(``series``). Bounded-window indicators (SMA gaps, Bollinger, stochastics, Williams %R,
CCI, MFI, ROC) use the window kernels of ``windows`` over the code's traded series.

Recursive indicators — EMA gaps, MACD, RSI, ATR, ADX — and the OBV z-score are vectorized
over the codes of a bucket (a panel with one row per code). Why not Spark: each value
is a recursion over all earlier values (``y_t = a·x_t + (1-a)·y_{t-1}``, seeded with an
SMA), and MACD's signal and ADX nest one recursion inside another; Spark's window
functions have no recursive frame, and the exact closed form as a weighted sum needs
``(1-a)^-t`` factors that overflow doubles within a few hundred rows for RSI-2. In numpy
the recursion is a loop over time steps, each vectorized over the codes of a bucket.

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

from spark_jobs.features.windows import (
    CodePanel,
    div,
    rolling_max,
    rolling_mean,
    rolling_min,
    rolling_std,
    rolling_sum,
    shift,
)

MA_WINDOWS = (5, 10, 20, 60, 120)
EPOCH = 60
WARMUP = 200

RECURSIVE: list[str] = [
    *[f"ema_gap_{n}" for n in MA_WINDOWS],
    "macd_12_26_9", "macd_signal_12_26_9", "macd_hist_12_26_9",
    "rsi_2", "rsi_14", "atr_14", "adx_14", "obv_z_20",
]
FEATURES: list[str] = [
    *[f"sma_gap_{n}" for n in MA_WINDOWS],
    *[f"ema_gap_{n}" for n in MA_WINDOWS],
    "macd_12_26_9", "macd_signal_12_26_9", "macd_hist_12_26_9",
    "rsi_2", "rsi_14", "bb_pctb_20", "bb_width_20", "atr_14", "adx_14",
    "stoch_k_14", "stoch_d_14", "willr_14", "cci_20", "mfi_14", "obv_z_20", "roc_12",
]


# ---- TA-Lib definitions on a panel of series (numpy) ------------------------------------
#
# Each function takes arrays of shape (..., T): one series per row along the last axis, a
# shorter series padded with NaN after its end. The value at position t uses positions
# <= t of its own row only (recursions run forward, seeds sit at the start), so a row's
# values are the same whichever other rows share the panel and however wide it is.


def _prev(x: np.ndarray, fill: float | np.ndarray = np.nan) -> np.ndarray:
    """``x`` moved one position later along the last axis (``fill`` first)."""
    head = np.broadcast_to(np.asarray(fill, dtype=float), (*x.shape[:-1], 1))
    return np.concatenate([head, x[..., :-1]], axis=-1)


def _recurse(u: np.ndarray, k: float, y0: np.ndarray) -> np.ndarray:
    """``y_t = u_t + k·y_{t-1}`` along the last axis from ``y_{-1} = y0`` (one value per row).

    A loop over time steps, each one vectorized over the panel's rows (the arithmetic,
    and so every bit, of a first-order ``scipy.signal.lfilter``, without the seconds that
    importing scipy adds to every Python worker)."""
    out = np.empty(u.shape)
    ut, yt = np.moveaxis(u, -1, 0), np.moveaxis(out, -1, 0)
    prev = np.asarray(y0, dtype=float)
    for t in range(ut.shape[0]):
        prev = yt[t] = ut[t] + k * prev
    return out


def ema(x: np.ndarray, n: int, alpha: float | None = None, first: int = 0) -> np.ndarray:
    """TA-Lib EMA: the mean of ``x[first:first+n]`` at ``first+n-1``, then
    ``y_t = a·x_t + (1-a)·y_{t-1}`` with ``a = 2/(n+1)`` (``alpha`` overrides: Wilder uses
    ``1/n``). NaN before ``first+n-1``."""
    a = 2.0 / (n + 1) if alpha is None else alpha
    out = np.full(x.shape, np.nan)
    s = first + n - 1
    if x.shape[-1] <= s:
        return out
    seed = x[..., first : s + 1].mean(axis=-1)
    out[..., s] = seed
    out[..., s + 1 :] = _recurse(a * x[..., s + 1 :], 1.0 - a, seed)
    return out


def wilder(x: np.ndarray, n: int, first: int) -> np.ndarray:
    """Wilder's smoothing (``a = 1/n``) seeded with the mean of ``x[first:first+n]``."""
    return ema(x, n, alpha=1.0 / n, first=first)


def macd(c: np.ndarray, fast: int = 12, slow: int = 26, signal: int = 9):
    """TA-Lib MACD: both EMAs first valued at ``slow-1`` (the fast one seeded on
    ``c[slow-fast:slow]``), signal = EMA of the line seeded at ``slow-1``; all three NaN
    before ``slow+signal-2``."""
    line = ema(c, fast, first=slow - fast) - ema(c, slow)
    sig = ema(line, signal, first=slow - 1) if c.shape[-1] >= slow else np.full(c.shape, np.nan)
    line = np.where(np.isnan(sig), np.nan, line)
    return line, sig, line - sig


def rsi(c: np.ndarray, n: int) -> np.ndarray:
    """TA-Lib RSI: Wilder averages of gains/losses seeded on the first ``n`` changes;
    ``100·G/(G+L)`` (0 when both are 0); first value at index ``n``."""
    d = c - _prev(c)
    g = wilder(np.maximum(d, 0.0), n, first=1)
    lo = wilder(np.maximum(-d, 0.0), n, first=1)
    tot = g + lo
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot != 0, 100.0 * g / tot, np.where(np.isnan(tot), np.nan, 0.0))


def true_range(h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> np.ndarray:
    pc = _prev(c)
    return np.fmax(h - lo, np.fmax(np.abs(h - pc), np.abs(lo - pc))) * np.where(np.isnan(pc), np.nan, 1)


def atr(h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: int) -> np.ndarray:
    """TA-Lib ATR: Wilder average of the true range seeded on ``TR[1..n]``; first at ``n``."""
    return wilder(true_range(h, lo, c), n, first=1)


def _wilder_sum(x: np.ndarray, n: int) -> np.ndarray:
    """TA-Lib's running-sum smoothing: ``S_{n-1} = Σ x[1..n-1]``, ``S_t = S_{t-1}·(1-1/n) + x_t``."""
    out = np.full(x.shape, np.nan)
    if x.shape[-1] <= n:
        return out
    s0 = x[..., 1:n].sum(axis=-1)
    out[..., n - 1] = s0
    out[..., n:] = _recurse(x[..., n:], 1.0 - 1.0 / n, s0)
    return out


def adx(h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: int) -> np.ndarray:
    """TA-Lib ADX: +DM/−DM (the larger move only) and TR smoothed by running Wilder sums,
    DX = 100·|+DI − −DI|/(+DI + −DI) from ``n``, ADX = mean of the first ``n`` DX (at
    ``2n−1``) then Wilder. A day with zero smoothed range counts DX = 0."""
    out = np.full(c.shape, np.nan)
    if c.shape[-1] < 2 * n:
        return out
    up = h - _prev(h)
    dn = _prev(lo) - lo
    pdm = np.where((up > 0) & (up > dn), up, 0.0)
    mdm = np.where((dn > 0) & (dn > up), dn, 0.0)
    tr = true_range(h, lo, c)
    sp, sm, st = _wilder_sum(pdm, n), _wilder_sum(mdm, n), _wilder_sum(tr, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        pdi = 100.0 * sp / st
        mdi = 100.0 * sm / st
        dx = 100.0 * np.abs(pdi - mdi) / (pdi + mdi)
    dx = np.where(np.isfinite(dx), dx, 0.0)
    dx[..., :n] = np.nan
    return wilder(dx, n, first=n)


def obv_z(c: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    """z-score of TA-Lib's OBV against its last ``n`` values (population std); NaN for the
    first ``n-1`` values and where the window's OBV is constant."""
    step = np.sign(c - _prev(c, c[..., :1])) * v
    step[..., 0] = v[..., 0]
    obv = np.cumsum(step, axis=-1)
    out = np.full(c.shape, np.nan)
    if c.shape[-1] < n:
        return out
    win = np.lib.stride_tricks.sliding_window_view(obv, n, axis=-1)
    mu, sd = win.mean(axis=-1), win.std(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[..., n - 1 :] = np.where(sd > 0, (obv[..., n - 1 :] - mu) / sd, np.nan)
    return out


def indicators(o, h, lo, c, v) -> dict[str, np.ndarray]:
    """The ``RECURSIVE`` columns for series laid out along the last axis (TA-Lib semantics)."""
    out = {f"ema_gap_{n}": c / ema(c, n) - 1 for n in MA_WINDOWS}
    line, sig, hist = macd(c)
    out["macd_12_26_9"], out["macd_signal_12_26_9"], out["macd_hist_12_26_9"] = line / c, sig / c, hist / c
    out["rsi_2"], out["rsi_14"] = rsi(c, 2), rsi(c, 14)
    out["atr_14"] = atr(h, lo, c, 14) / c
    out["adx_14"] = adx(h, lo, c, 14)
    out["obv_z_20"] = obv_z(c, v, 20)
    return out


def _panel(values: np.ndarray, series: np.ndarray, pos: np.ndarray, n_series: int) -> np.ndarray:
    """Long rows → ``(n_series, longest)`` array, ``values[i]`` at ``[series[i], pos[i]]``,
    NaN after each series' end."""
    out = np.full((n_series, int(pos.max()) + 1), np.nan)
    out[series, pos] = values
    return out


def recursive_values(code_id: np.ndarray, tidx: np.ndarray, arrays: list[np.ndarray],
                     wanted: np.ndarray) -> dict[str, np.ndarray]:
    """``RECURSIVE`` for long traded rows sorted by ``(code, date)`` (``code_id`` numbers
    the codes, ``arrays`` = adjusted OHLCV), epoch-seeded; computed for the epochs of the
    ``wanted`` rows (NaN elsewhere). Per epoch, the codes' series are one panel (a row per
    code) and every indicator is one vectorized call over it: a loop over epochs, never
    over stocks; a code's values do not depend on which other codes share the call."""
    res = {k: np.full(len(tidx), np.nan) for k in RECURSIVE}
    epochs = tidx // EPOCH
    for b in np.unique(epochs[wanted]):
        span = np.flatnonzero((tidx >= b * EPOCH - WARMUP) & (tidx < (b + 1) * EPOCH))
        ids = code_id[span]
        starts = np.r_[0, np.flatnonzero(ids[1:] != ids[:-1]) + 1]
        lengths = np.diff(np.r_[starts, len(span)])
        series = np.repeat(np.arange(len(starts)), lengths)
        pos = np.arange(len(span)) - np.repeat(starts, lengths)
        vals = indicators(*[_panel(a[span], series, pos, len(starts)) for a in arrays])
        keep = epochs[span] == b
        for k, arr in vals.items():
            res[k][span[keep]] = arr[series[keep], pos[keep]]
    return {k: np.where(np.isfinite(v), v, np.nan) for k, v in res.items()}


def epoch_indicators(pdf: pd.DataFrame, since: dt.date | None = None) -> pd.DataFrame:
    """Traded rows of any number of codes (``date, code, _tidx``, adjusted OHLCV) →
    ``date, code, RECURSIVE...`` (``recursive_values``), rows dated ``>= since`` only (all
    without it); each epoch depends on its own series only, so the values are those of a
    call without ``since``."""
    pdf = pdf.sort_values(["code", "date"], kind="stable").reset_index(drop=True)
    dates = pdf["date"].to_numpy()
    out_rows = np.ones(len(pdf), bool) if since is None else dates >= since
    codes = pdf["code"].to_numpy()
    code_id = np.cumsum(np.r_[False, codes[1:] != codes[:-1]]) if len(pdf) else np.zeros(0, int)
    arrays = [pdf[k].to_numpy(dtype=float) for k in ("adj_open", "adj_high", "adj_low", "adj_close", "adj_volume")]
    res = recursive_values(code_id, pdf["_tidx"].to_numpy(dtype=np.int64), arrays, out_rows)
    cols = {"date": dates[out_rows], "code": codes[out_rows]}
    cols |= {k: res[k][out_rows] for k in RECURSIVE}
    return pd.DataFrame(cols)  # one dict: inserting 13 columns one by one cost more than the maths


# ---- bounded windows (numpy over the series view) ---------------------------------------


def windowed_indicators(p: CodePanel, bars: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The bounded-window indicators (SMA gaps, Bollinger, stochastics, Williams %R, CCI,
    MFI, ROC) in the series view, TA-Lib's definitions; ``bars`` holds the series views of
    ``adj_high``, ``adj_low``, ``adj_close``, ``adj_volume``. Null until the window is full."""
    h, lo, c, v = (bars[k] for k in ("adj_high", "adj_low", "adj_close", "adj_volume"))
    nan = np.nan
    out: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for n in MA_WINDOWS:
            out[f"sma_gap_{n}"] = np.where(p.full(n), c / rolling_mean(c, n) - 1, nan)
        full20 = p.full(20)
        mid, sd = rolling_mean(c, 20), rolling_std(c, 20, ddof=0)
        out["bb_pctb_20"] = np.where(full20, div(c - (mid - 2 * sd), 4 * sd), nan)
        out["bb_width_20"] = np.where(full20, div(4 * sd, mid), nan)
        hh, ll = rolling_max(h, 14), rolling_min(lo, 14)
        rng = hh - ll
        full14 = p.full(14)
        k = np.where(full14, np.where(rng != 0, 100 * (c - ll) / rng, 0.0), nan)
        out["stoch_k_14"] = k
        out["stoch_d_14"] = np.where(p.full(16), rolling_mean(k, 3), nan)
        out["willr_14"] = np.where(full14, np.where(rng != 0, -100 * (hh - c) / rng, 0.0), nan)
        tp = (h + lo + c) / 3
        sma_tp = rolling_mean(tp, 20)
        dev = np.zeros(tp.shape)
        for j in range(19, 0, -1):  # |tp - sma| over the window's 20 rows, oldest first
            dev += np.abs(shift(tp, j) - sma_tp)
        mean_dev = (dev + np.abs(tp - sma_tp)) / 20
        cci = np.where(mean_dev != 0, (tp - sma_tp) / (0.015 * mean_dev), 0.0)
        out["cci_20"] = np.where(full20, cci, nan)
        tpp = shift(tp, 1)
        flow = tp * v
        pos = rolling_sum(np.where(tp > tpp, flow, 0.0), 14)
        neg = rolling_sum(np.where(tp < tpp, flow, 0.0), 14)
        mfi = np.where(pos + neg >= 1, 100 * pos / (pos + neg), 0.0)
        out["mfi_14"] = np.where(p.full(15), mfi, nan)
        out["roc_12"] = np.where(p.full(13), 100 * (c / shift(c, 12) - 1), nan)
    return out


def technical_features(p: CodePanel, bars: dict[str, np.ndarray], recursive: dict[str, np.ndarray]
                       ) -> dict[str, np.ndarray]:
    """``FEATURES`` in the series view: the windowed indicators plus ``recursive`` (the
    series views of ``epoch_indicators``' columns)."""
    out = {**windowed_indicators(p, bars), **recursive}
    return {k: out[k] for k in FEATURES}
