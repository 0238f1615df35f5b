"""Market (TOPIX) context features: the index's own series and each stock against it.

* ``mkt_ret_1d/5d/20d`` — TOPIX close-to-close return over 1/5/20 TOPIX rows;
* ``mkt_vol_20d`` — sample standard deviation of the last 20 daily TOPIX returns;
* ``beta_60d``, ``corr_mkt_60d``, ``idio_vol_60d`` — OLS beta of the stock's daily return on
  TOPIX's, their correlation, and the residual standard deviation, over the stock's last
  60 rows, using the days on which both returns exist (at least 40, else null);
* ``alpha_1d``, ``alpha_5d`` — stock return minus ``beta_60d`` × TOPIX return (1 and 5 days);
* ``rel_strength_20d``, ``rel_strength_60d`` — log return of the stock minus log return of
  TOPIX over 20/60 rows.

Stock returns are ``windows.trailing_returns`` of ``adj_close`` over the code's rows (a
halt does not wipe out the next week's 5-day return; null on a day without a trade).
``market_series`` runs on the driver over the index's few hundred rows (pandas); the
per-code pass ships it with its function and looks each price row's date up in it, so
the index costs no Spark job or join; ``market_relative`` runs in that pass.
Every value on date ``T`` uses prices of dates ``<= T`` only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spark_jobs.features.windows import trailing_sum

FEATURES: list[str] = [
    "mkt_ret_1d",
    "mkt_ret_5d",
    "mkt_ret_20d",
    "mkt_vol_20d",
    "beta_60d",
    "corr_mkt_60d",
    "idio_vol_60d",
    "alpha_1d",
    "alpha_5d",
    "rel_strength_20d",
    "rel_strength_60d",
]
#: the per-date index columns ``market_series`` adds to every price row
INDEX_COLUMNS: list[str] = ["mkt_ret_1d", "mkt_ret_5d", "mkt_ret_20d", "mkt_vol_20d",
                            "_mkt_lr20", "_mkt_lr60"]

BETA_WINDOW = 60
BETA_MIN_OBS = 40


def market_series(topix: pd.DataFrame) -> pd.DataFrame:
    """``silver.indices_topix_daily`` rows (``date``, ``close``; the build's read: look-back
    included) → ``INDEX_COLUMNS`` indexed by ``date`` (``_mkt_lr{n}`` = log return of the
    index over ``n`` rows). A value on ``T`` uses closes dated ``<= T``; non-finite
    values (a null close) are NaN, and ``mkt_vol_20d`` needs 20 finite returns."""
    t = topix.sort_values("date")
    c = t["close"].to_numpy(dtype=float, na_value=np.nan)

    def ratio(n: int) -> np.ndarray:
        lagged = np.full_like(c, np.nan)
        lagged[n:] = c[:-n]
        with np.errstate(invalid="ignore", divide="ignore"):
            return c / lagged

    out = {f"mkt_ret_{n}d": ratio(n) - 1 for n in (1, 5, 20)}
    with np.errstate(invalid="ignore", divide="ignore"):
        out |= {f"_mkt_lr{n}": np.log(ratio(n)) for n in (20, 60)}
    r1, vol = out["mkt_ret_1d"], np.full_like(c, np.nan)
    if len(c) >= 20:  # sample std of each full 20-row window (NaN if one is missing)
        vol[19:] = np.lib.stride_tricks.sliding_window_view(r1, 20).std(axis=1, ddof=1)
    out["mkt_vol_20d"] = vol
    frame = pd.DataFrame({k: out[k] for k in INDEX_COLUMNS}, index=pd.Index(t["date"], name="date"))
    return frame.where(np.isfinite(frame))


def market_relative(returns: dict[int, np.ndarray], index: dict[str, np.ndarray]
                    ) -> dict[str, np.ndarray]:
    """The stock-side ``FEATURES`` in the rows view: ``returns`` are the code's trailing
    returns over 1, 5, 20, 60 rows, ``index`` the rows views of ``INDEX_COLUMNS``."""
    r, m = returns[1], index["mkt_ret_1d"]
    both = np.isfinite(r) & np.isfinite(m)
    x, y = np.where(both, m, 0.0), np.where(both, r, 0.0)
    s = {k: trailing_sum(v, BETA_WINDOW) for k, v in
         {"n": both.astype(float), "x": x, "y": y, "xx": x * x, "yy": y * y, "xy": x * y}.items()}
    n = s["n"]
    nan = np.nan
    out: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        sxx = s["xx"] - s["x"] * s["x"] / n
        syy = s["yy"] - s["y"] * s["y"] / n
        sxy = s["xy"] - s["x"] * s["y"] / n
        ok = (n >= BETA_MIN_OBS) & (sxx > 0)
        beta = np.where(ok, sxy / sxx, nan)
        out["beta_60d"] = beta
        out["corr_mkt_60d"] = np.where(ok & (syy > 0), sxy / np.sqrt(sxx * syy), nan)
        # residual variance of the OLS fit with intercept: (Syy - Sxy^2/Sxx) / (n - 2)
        resid = (syy - sxy * sxy / sxx) / (n - 2)
        out["idio_vol_60d"] = np.where(ok, np.sqrt(np.maximum(resid, 0.0)), nan)
        out["alpha_1d"] = r - beta * m
        out["alpha_5d"] = returns[5] - beta * index["mkt_ret_5d"]
        for k in (20, 60):
            out[f"rel_strength_{k}d"] = np.log1p(returns[k]) - index[f"_mkt_lr{k}"]
    return out
