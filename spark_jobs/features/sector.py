"""Sector context features: 33-sector membership as of each date and same-day sector stats.

For each ``(date, code)`` row of the build:

* ``sector_ret_1d/5d/20d`` — equal-weighted mean, over the stocks that are members of the
  row's 33-sector on that date (the stock itself included), of their 1/5/20-day returns;
* ``ret_1d_vs_sector``, ``ret_5d_vs_sector``, ``ret_20d_vs_sector`` — the stock's return
  minus that sector mean;
* ``sector_breadth_1d`` — share of the sector's stocks with a positive 1-day return;
* ``sector_mom_60d`` — sector momentum: sum of ``log(1 + sector_ret_1d)`` over the sector's
  last 60 dates (at least 40 present);
* ``sector_vol_20d`` — sample standard deviation of ``sector_ret_1d`` over the last 20 dates.

Membership is the ``silver.equities_master_asof`` row with ``valid_from <= date <
valid_to`` (``valid_to`` null = still current; of overlapping rows, the latest
``valid_from``), so a sector change applies from the snapshot that shows it, never
earlier. Returns are the per-code pass's trailing returns ``_r1/_r5/_r20`` (adjusted
close, NaN on no-trade days); a sector statistic on date ``T`` uses the returns of
``T``'s members, i.e. prices of dates ``<= T``. A sector's dates are those on which it
has a member row.

``sector_stats`` runs on the driver over the returns the per-code pass hands back (a
table of dates × 33 sectors); ``sector_features`` runs in the cross-sectional pass on a
period's rows. Both are pandas/numpy with a fixed order of operations (rows sorted by
``(date, code)``, windows summed oldest first over exactly their own dates), so a date's
values do not depend on where the build's read began.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spark_jobs.features.sessions import day64
from spark_jobs.features.windows import rolling_std, trailing_sum

FEATURES: list[str] = [
    "sector_ret_1d",
    "sector_ret_5d",
    "sector_ret_20d",
    "ret_1d_vs_sector",
    "ret_5d_vs_sector",
    "ret_20d_vs_sector",
    "sector_breadth_1d",
    "sector_mom_60d",
    "sector_vol_20d",
]

HORIZONS = (1, 5, 20)
MOM_WINDOW, MOM_MIN = 60, 40
VOL_WINDOW = 20
#: the per-(date, sector) columns of ``sector_stats``
STATS: list[str] = [f for f in FEATURES if not f.startswith("ret_")]
MASTER_COLUMNS = ["code", "valid_from", "valid_to", "sector33_code"]


def _days(values) -> np.ndarray:
    return day64(values).astype(np.int64)


def membership(dates, codes, master: pd.DataFrame) -> np.ndarray:
    """The ``sector33_code`` valid for each ``(dates[i], codes[i])`` (module docstring), as
    an object array with ``None`` where the code has no valid master row."""
    m = master[MASTER_COLUMNS].dropna(subset=["code", "valid_from"])
    code_ids, _ = pd.factorize(pd.concat([m["code"], pd.Series(codes)], ignore_index=True))
    m_code, row_code = code_ids[: len(m)], code_ids[len(m):]
    frm = _days(m["valid_from"].to_numpy())
    to = m["valid_to"]
    until = np.where(to.isna().to_numpy(), np.iinfo(np.int64).max,
                     _days(to.where(to.notna(), m["valid_from"]).to_numpy()))
    order = np.lexsort((frm, m_code))
    span = np.int64(1) << 32  # days fit in 32 bits; a code's rows sort by valid_from
    key = m_code[order].astype(np.int64) * span + frm[order]
    day = _days(dates)
    at = np.searchsorted(key, row_code.astype(np.int64) * span + day, side="right") - 1
    ok = at >= 0
    hit = order[np.maximum(at, 0)]
    ok &= (m_code[hit] == row_code) & (day < until[hit])
    sectors = m["sector33_code"].to_numpy(dtype=object)[hit]
    return np.where(ok, sectors, None)


def sector_stats(returns: pd.DataFrame) -> pd.DataFrame:
    """Per ``(date, sector)``: ``STATS`` (``sector_ret_{h}d``, breadth, momentum and
    volatility), indexed by ``date, sector``.

    ``returns`` holds ``date, code, _r1, _r5, _r20`` of every stock row from
    ``MOM_WINDOW`` trading days before the build's first date on (the windows'
    history), and ``sector``, each row's ``membership`` (null: none that day)."""
    rows = returns.sort_values(["date", "code"], kind="stable")
    sector = rows["sector"].to_numpy(dtype=object)
    keep = pd.notna(sector)
    r1 = rows["_r1"].to_numpy(dtype=float)
    frame = pd.DataFrame({
        "date": day64(rows["date"].to_numpy())[keep], "sector": sector[keep],
        **{f"sector_ret_{h}d": rows[f"_r{h}"].to_numpy(dtype=float)[keep] for h in HORIZONS},
        "sector_breadth_1d": np.where(np.isnan(r1), np.nan, (r1 > 0).astype(float))[keep],
    })
    daily = frame.groupby(["sector", "date"], sort=True).mean()
    parts = []
    for _, one in daily.groupby(level="sector", sort=False):  # a sector's dates, in order
        ret1 = one["sector_ret_1d"].to_numpy()
        with np.errstate(invalid="ignore"):
            log_ret = np.log1p(ret1)
        have = np.isfinite(log_ret)
        total = trailing_sum(np.where(have, log_ret, 0.0), MOM_WINDOW)
        count = trailing_sum(have.astype(float), MOM_WINDOW)
        parts.append(one.assign(sector_mom_60d=np.where(count >= MOM_MIN, total, np.nan),
                                sector_vol_20d=rolling_std(ret1, VOL_WINDOW, ddof=1)))
    stats = pd.concat(parts) if parts else daily.assign(sector_mom_60d=[], sector_vol_20d=[])
    return stats.swaplevel().sort_index()[STATS]


def sector_features(rows: pd.DataFrame, stats: pd.DataFrame, master: pd.DataFrame
                    ) -> dict[str, np.ndarray]:
    """``FEATURES`` of ``rows`` (``date``, ``code``, ``_r1``, ``_r5``, ``_r20``) from
    ``sector_stats``; NaN where the code has no valid master row on the date."""
    sector = membership(rows["date"].to_numpy(), rows["code"].to_numpy(), master)
    keys = pd.MultiIndex.from_arrays([day64(rows["date"].to_numpy()), sector])
    found = stats.reindex(keys)
    out = {k: found[k].to_numpy(dtype=float) for k in STATS}
    for h in HORIZONS:
        out[f"ret_{h}d_vs_sector"] = rows[f"_r{h}"].to_numpy(dtype=float) - out[f"sector_ret_{h}d"]
    return {k: out[k] for k in FEATURES}
