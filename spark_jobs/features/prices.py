"""Price/return features of a code's traded series (numpy kernels over ``CodePanel``).

``ret_{n}d`` = adj_close_t / adj_close_{t-n} - 1 over series rows; ``log_ret_{n}d`` its
log; ``vol_{n}d`` = sample std of ``log_ret_1d`` over ``n`` rows; Parkinson and
Garman–Klass volatility over 20 rows (daily units); overnight/intraday returns and the
log high/low range of the day. Prices are the ``adj_*`` columns (forward-adjusted), so a
split day shows no jump. Null off the series and while a window is not full
(``windows``); values on ``T`` use rows ``<= T`` only.
"""

from __future__ import annotations

import math

import numpy as np

from spark_jobs.features.windows import CodePanel, log, rolling_mean, rolling_std, shift

FEATURES: list[str] = [
    "ret_1d", "ret_2d", "ret_3d", "ret_5d", "ret_10d", "ret_20d", "ret_60d",
    "log_ret_1d", "log_ret_5d", "log_ret_20d",
    "vol_5d", "vol_10d", "vol_20d", "vol_60d",
    "parkinson_vol_20d", "gk_vol_20d",
    "overnight_ret_1d", "intraday_ret_1d", "hl_range_1d",
]

RETURN_HORIZONS = (1, 2, 3, 5, 10, 20, 60)
LOG_RETURN_HORIZONS = (1, 5, 20)
VOL_WINDOWS = (5, 10, 20, 60)
RANGE_WINDOW = 20


def price_features(p: CodePanel, bars: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``FEATURES`` in the series view; ``bars`` holds the series views of ``adj_open``,
    ``adj_high``, ``adj_low``, ``adj_close``."""
    o, h, lo, c = (bars[k] for k in ("adj_open", "adj_high", "adj_low", "adj_close"))
    nan = np.nan
    out: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for n in RETURN_HORIZONS:
            out[f"ret_{n}d"] = np.where(p.full(n + 1), c / shift(c, n) - 1, nan)
        for n in LOG_RETURN_HORIZONS:
            out[f"log_ret_{n}d"] = np.where(p.full(n + 1), log(c / shift(c, n)), nan)
        lr = out["log_ret_1d"]
        for n in VOL_WINDOWS:
            out[f"vol_{n}d"] = np.where(p.full(n + 1), rolling_std(lr, n, ddof=1), nan)
        hl2 = log(h / lo) ** 2
        co2 = log(c / o) ** 2
        full = p.full(RANGE_WINDOW)
        park = rolling_mean(hl2, RANGE_WINDOW) / (4 * math.log(2))
        out["parkinson_vol_20d"] = np.where(full, np.sqrt(park), nan)
        gk = rolling_mean(0.5 * hl2 - (2 * math.log(2) - 1) * co2, RANGE_WINDOW)
        out["gk_vol_20d"] = np.where(full & (gk >= 0), np.sqrt(np.where(gk >= 0, gk, 0.0)), nan)
        out["overnight_ret_1d"] = np.where(p.full(2), o / shift(c, 1) - 1, nan)
        out["intraday_ret_1d"] = c / o - 1
        out["hl_range_1d"] = log(h / lo)
    return {k: out[k] for k in FEATURES}
