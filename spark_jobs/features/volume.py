"""Volume and liquidity features over the code's traded series (numpy, see ``windows``).

Volumes are split-adjusted (``adj_volume``); turnover is yen, which splits do not change.
Limit flags are 1.0/0.0 on traded rows; ratios and z-scores are null while their window is
incomplete or the denominator is 0. Values on ``T`` use rows ``<= T`` within the look-back.
"""

from __future__ import annotations

import numpy as np

from spark_jobs.features.windows import (
    CodePanel,
    div,
    log,
    rolling_max,
    rolling_mean,
    rolling_min,
    rolling_std,
    rolling_sum,
    shift,
)

FEATURES: list[str] = [
    "volume_ratio_5d", "volume_ratio_20d", "turnover_z_20d", "log_turnover_20d",
    "amihud_20d", "dist_52w_high", "dist_52w_low",
    "upper_limit_flag", "lower_limit_flag", "limit_hits_20d",
]

YEAR = 250  # trading days in the 52-week window
AMIHUD_SCALE = 1e9  # |return| per billion yen traded


def volume_features(p: CodePanel, bars: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``FEATURES`` in the series view; ``bars`` holds the series views of ``adj_high``,
    ``adj_low``, ``adj_close``, ``adj_volume``, ``turnover`` and the limit-hit flags
    ``upper_limit_hit``/``lower_limit_hit`` (1.0/0.0, null counted as 0)."""
    h, lo, c, v, t = (bars[k] for k in ("adj_high", "adj_low", "adj_close", "adj_volume", "turnover"))
    nan = np.nan
    out: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        upper, lower = bars["upper_limit_hit"], bars["lower_limit_hit"]
        out["upper_limit_flag"], out["lower_limit_flag"] = upper, lower
        for n in (5, 20):
            out[f"volume_ratio_{n}d"] = np.where(p.full(n), div(v, rolling_mean(v, n)), nan)
        full20 = p.full(20)
        ltv = log(t)
        z = div(ltv - rolling_mean(ltv, 20), rolling_std(ltv, 20, ddof=1))
        out["turnover_z_20d"] = np.where(full20, z, nan)
        out["log_turnover_20d"] = np.where(full20, log(rolling_mean(t, 20)), nan)
        illiq = np.where(p.full(2), div(np.abs(c / shift(c, 1) - 1), t) * AMIHUD_SCALE, nan)
        out["amihud_20d"] = np.where(p.full(21), rolling_mean(illiq, 20), nan)
        year = p.full(YEAR)
        out["dist_52w_high"] = np.where(year, c / rolling_max(h, YEAR) - 1, nan)
        out["dist_52w_low"] = np.where(year, c / rolling_min(lo, YEAR) - 1, nan)
        out["limit_hits_20d"] = np.where(full20, rolling_sum(np.fmax(upper, lower), 20), nan)
    return {k: out[k] for k in FEATURES}
