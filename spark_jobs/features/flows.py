"""Investor-flow features: market-wide, one value per trade date.

``flow_daily(flows, dates)`` — investor-type flows (``silver.investor_flows``, weekly,
summed over the sections): net buying of foreigners, individuals, proprietary desks,
trust banks and investment trusts as a share of total turnover; foreign and individual
net ratios z-scored against the previous 52 publications (itself included, at least 13);
foreign minus individual; days since publication.

Silver keys the table by the first trade date its rows may be used on (``date``, the
trade date after publication): a row on trade date ``T`` sees the latest week with
``date <= T`` (of two weeks usable on one date, the later ``start_date``) and nothing
later, for at most ``FLOW_MAX_STALE_DAYS`` past that date. The weekly series is a few
hundred rows: the driver computes it (pandas/numpy), each z-score over exactly its own
52 rows, so a date's values do not depend on where the read began; the cross-sectional
pass looks each row's date up in the result.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from spark_jobs.features.sessions import day64

FEATURES: list[str] = [
    "flow_foreign_net_ratio",
    "flow_individual_net_ratio",
    "flow_proprietary_net_ratio",
    "flow_trust_bank_net_ratio",
    "flow_investment_trust_net_ratio",
    "flow_foreign_net_z",
    "flow_individual_net_z",
    "flow_foreign_minus_individual",
    "flow_days_since_pub",
]
FLOW_Z_WINDOW, FLOW_Z_MIN = 52, 13
FLOW_MAX_STALE_DAYS = 366
GROUPS = {
    "foreign": "foreign_balance",
    "individual": "individual_balance",
    "proprietary": "proprietary_balance",
    "trust_bank": "trust_bank_balance",
    "investment_trust": "investment_trust_balance",
}


def _z(x: np.ndarray) -> np.ndarray:
    """``(x - mean) / sd`` over each row's last ``FLOW_Z_WINDOW`` values (itself included,
    NaN skipped), where at least ``FLOW_Z_MIN`` are present and ``sd > 0``."""
    padded = np.concatenate([np.full(FLOW_Z_WINDOW - 1, np.nan), x])
    win = np.lib.stride_tricks.sliding_window_view(padded, FLOW_Z_WINDOW)
    count = np.isfinite(win).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a window with fewer than 2 values
        mean = np.nanmean(win, axis=1)
        sd = np.nanstd(win, axis=1, ddof=1)
        return np.where((count >= FLOW_Z_MIN) & (sd > 0), (x - mean) / sd, np.nan)


def flow_series(flows: pd.DataFrame) -> pd.DataFrame:
    """Weekly market-wide flow features (but ``flow_days_since_pub``) with ``date``,
    ``start_date`` and ``published_date``, sorted by ``(date, start_date)``."""
    weekly = flows.groupby(["date", "start_date"], sort=True).agg(
        published_date=("published_date", "max"), _tot=("total_turnover", "sum"),
        **{f"_{g}": (col, "sum") for g, col in GROUPS.items()}).reset_index()
    tot = weekly["_tot"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        for g in GROUPS:
            weekly[f"flow_{g}_net_ratio"] = np.where(
                tot != 0, weekly[f"_{g}"].to_numpy(dtype=float) / tot, np.nan)
    for g in ("foreign", "individual"):
        weekly[f"flow_{g}_net_z"] = _z(weekly[f"flow_{g}_net_ratio"].to_numpy())
    weekly["flow_foreign_minus_individual"] = (
        weekly["flow_foreign_net_ratio"] - weekly["flow_individual_net_ratio"])
    return weekly.drop(columns=["_tot", *[f"_{g}" for g in GROUPS]])


def flow_daily(flows: pd.DataFrame, dates: Sequence[dt.date]) -> pd.DataFrame:
    """``FEATURES`` of each of ``dates``, indexed by ``sessions.day64(dates)``; NaN where no
    week is usable. ``flows`` is ``silver.investor_flows``; it should start a year before
    ``dates`` for full z-score windows."""
    weekly = flow_series(flows).drop_duplicates("date", keep="last")  # the latest week
    usable = day64(weekly["date"].to_numpy())
    days = day64(list(dates))
    at = np.searchsorted(usable, days, side="right") - 1
    ok = (at >= 0) & (days - usable[np.maximum(at, 0)] <= np.timedelta64(FLOW_MAX_STALE_DAYS, "D"))
    picked = weekly.iloc[np.maximum(at, 0)]
    out = pd.DataFrame(index=pd.Index(days, name="date"))
    for name in FEATURES[:-1]:
        out[name] = np.where(ok, picked[name].to_numpy(dtype=float), np.nan)
    since = days - day64(picked["published_date"].to_numpy())
    out["flow_days_since_pub"] = np.where(ok & ~np.isnat(since), since.astype(float), np.nan)
    return out
