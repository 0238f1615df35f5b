"""The simulated universe: codes, master attributes over time, TSE ticks.

Contract: ``draw_universe`` is a pure function of its inputs and the generator state;
``master_frame`` returns ``/equities/master`` rows (one per listed ``(Date, Code)``) in
the official v2 column order (``jquantsapi.constants.EQ_MASTER_COLUMNS_V2``), sorted by
``Date, Code``. String cells are shared Python objects (indexing object arrays), so a
4,000 x 5-year master costs pointers, not millions of string copies.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

SECTOR33 = [
    ("0050", "Fishery, Agriculture & Forestry", "1"), ("1050", "Mining", "2"),
    ("2050", "Construction", "3"), ("3050", "Foods", "1"), ("3100", "Textiles & Apparels", "4"),
    ("3150", "Pulp & Paper", "4"), ("3200", "Chemicals", "4"), ("3250", "Pharmaceutical", "5"),
    ("3300", "Oil & Coal Products", "2"), ("3350", "Rubber Products", "6"),
    ("3400", "Glass & Ceramics Products", "3"), ("3450", "Iron & Steel", "7"),
    ("3500", "Nonferrous Metals", "7"), ("3550", "Metal Products", "3"),
    ("3600", "Machinery", "8"), ("3650", "Electric Appliances", "9"),
    ("3700", "Transportation Equipment", "6"), ("3750", "Precision Instruments", "9"),
    ("3800", "Other Products", "10"), ("4050", "Electric Power & Gas", "11"),
    ("5050", "Land Transportation", "12"), ("5100", "Marine Transportation", "12"),
    ("5150", "Air Transportation", "12"), ("5200", "Warehousing & Harbor", "12"),
    ("5250", "Information & Communication", "10"), ("6050", "Wholesale Trade", "13"),
    ("6100", "Retail Trade", "14"), ("7050", "Banks", "15"),
    ("7100", "Securities & Commodity Futures", "16"), ("7150", "Insurance", "16"),
    ("7200", "Other Financing Business", "16"), ("8050", "Real Estate", "17"),
    ("9050", "Services", "10"),
]
SECTOR17_NAMES = {
    "1": "FOODS", "2": "ENERGY RESOURCES", "3": "CONSTRUCTION & MATERIALS",
    "4": "RAW MATERIALS & CHEMICALS", "5": "PHARMACEUTICAL", "6": "AUTOMOBILES",
    "7": "STEEL & NONFERROUS METALS", "8": "MACHINERY", "9": "ELECTRIC APPLIANCES & PRECISION",
    "10": "IT & SERVICES, OTHERS", "11": "ELECTRIC POWER & GAS", "12": "TRANSPORTATION & LOGISTICS",
    "13": "COMMERCIAL & WHOLESALE TRADE", "14": "RETAIL TRADE", "15": "BANKS",
    "16": "FINANCIALS (EX BANKS)", "17": "REAL ESTATE",
}
MARKETS = [("0111", "Prime"), ("0112", "Standard"), ("0113", "Growth")]
SCALE_CATS = ["TOPIX Core30", "TOPIX Large70", "TOPIX Mid400", "TOPIX Small 1", "TOPIX Small 2", "-"]
_NEW_CODES_FROM = dt.date(2024, 1, 1)  # alphanumeric codes ("130A0") are issued from 2024

# TSE tick sizes for ordinary issues: (upper bound of the price band, inclusive; tick)
_TICKS = ((3_000, 1), (5_000, 5), (30_000, 10), (50_000, 50), (300_000, 100),
          (500_000, 500), (3_000_000, 1_000), (5_000_000, 5_000), (float("inf"), 10_000))
_TICK_UPPER = np.array([u for u, _ in _TICKS])
_TICK_SIZE = np.array([t for _, t in _TICKS], dtype=float)


def round_to_tick(price: np.ndarray) -> np.ndarray:
    """Round prices to the TSE tick of their band, at least 1 yen (NaN stays NaN)."""
    p = np.asarray(price, dtype=float)
    idx = np.searchsorted(_TICK_UPPER, np.nan_to_num(p), side="left").clip(0, len(_TICKS) - 1)
    tick = _TICK_SIZE[idx]
    return np.maximum(np.round(p / tick) * tick, 1.0)


@dataclass
class Universe:
    """Per-stock attributes; index ``i`` is the stock, ``t`` a trading-day index.

    A stock is listed on days ``listed_from[i] <= t < delisted_at[i]``; its 33-sector
    index is ``sector[i]`` before ``sector_change_at[i]`` and ``new_sector[i]`` from then.
    """

    codes: list[str]
    listed_from: np.ndarray
    delisted_at: np.ndarray
    sector: np.ndarray
    new_sector: np.ndarray
    sector_change_at: np.ndarray
    market_seg: np.ndarray
    scale: np.ndarray
    cluster: np.ndarray
    beta: np.ndarray

    def listed(self, n_days: int) -> np.ndarray:
        """Boolean ``[T, N]`` mask of listed (stock, day) pairs."""
        t = np.arange(n_days)[:, None]
        return (t >= self.listed_from[None, :]) & (t < self.delisted_at[None, :])


def make_codes(n: int, new_style: np.ndarray, rng: np.random.Generator) -> list[str]:
    """``n`` unique 5-character codes: "NNNN0", or "NNNX0" where ``new_style[i]`` (half of
    them alphanumeric, like the codes issued since 2024)."""
    base = rng.choice(np.arange(1300, 10_000), size=n, replace=False)
    letters = "ACEFGHJKLMNPRSTUWXY"
    out: list[str] = []
    seen: set[str] = set()
    for i, b in enumerate(base):
        code = f"{b // 10:03d}{letters[i % len(letters)]}0" if new_style[i] and i % 2 == 0 \
            else f"{b:04d}0"
        while code in seen:  # alphanumeric codes may collide: bump deterministically
            code = f"{(int(code[:3]) + 1) % 1000:03d}{code[3:]}"
        seen.add(code)
        out.append(code)
    return out


def draw_universe(n: int, days: list[dt.date], clusters: int, listing_rate: float,
                  delisting_rate: float, rng: np.random.Generator) -> Universe:
    """Draw ``n`` stocks: listings after the first day, delistings before the last,
    attributes, a latent cluster and a market beta; about 0.5% change sector once."""
    T = len(days)
    listed_from = np.zeros(n, dtype=int)
    n_late = int(n * listing_rate)
    late = rng.choice(n, size=n_late, replace=False)
    listed_from[late] = rng.integers(T // 10, max(T // 10 + 1, T - 20), size=n_late)
    delisted_at = np.full(n, T, dtype=int)
    cand = np.setdiff1d(np.arange(n), late)
    dels = rng.choice(cand, size=min(int(n * delisting_rate), len(cand)), replace=False)
    delisted_at[dels] = rng.integers(T // 5, max(T // 5 + 1, T - 5), size=len(dels))
    day_arr = np.array(days, dtype="datetime64[D]")
    new_style = (listed_from > 0) & (day_arr[listed_from] >= np.datetime64(_NEW_CODES_FROM))
    codes = make_codes(n, new_style, rng)
    sector = rng.integers(0, len(SECTOR33), size=n)
    sector_change_at = np.full(n, T, dtype=int)
    movers = rng.choice(n, size=max(1, n // 200), replace=False)
    sector_change_at[movers] = rng.integers(T // 4, T - 1, size=len(movers))
    return Universe(
        codes=codes, listed_from=listed_from, delisted_at=delisted_at, sector=sector,
        new_sector=rng.integers(0, len(SECTOR33), size=n), sector_change_at=sector_change_at,
        market_seg=rng.choice(3, size=n, p=[0.5, 0.35, 0.15]),
        scale=rng.choice(len(SCALE_CATS), size=n, p=[0.02, 0.05, 0.2, 0.3, 0.38, 0.05]),
        cluster=rng.integers(0, clusters, size=n),
        beta=rng.normal(1.0, 0.3, size=n).clip(0.2, 2.2),
    )


def _objects(values) -> np.ndarray:
    return np.array(list(values), dtype=object)


def master_frame(u: Universe, tt: np.ndarray, ii: np.ndarray, date_str: np.ndarray) -> pd.DataFrame:
    """``/equities/master`` rows for the (day ``tt``, stock ``ii``) pairs, in that order."""
    sec = np.where(tt >= u.sector_change_at[ii], u.new_sector[ii], u.sector[ii])
    s17 = [s[2] for s in SECTOR33]
    codes = _objects(u.codes)
    return pd.DataFrame({
        "Date": date_str[tt], "Code": codes[ii],
        "CoName": _objects(f"シム{c}" for c in u.codes)[ii],
        "CoNameEn": _objects(f"SIM {c} CO.,LTD." for c in u.codes)[ii],
        "S17": _objects(s17)[sec], "S17Nm": _objects(SECTOR17_NAMES[x] for x in s17)[sec],
        "S33": _objects(s[0] for s in SECTOR33)[sec], "S33Nm": _objects(s[1] for s in SECTOR33)[sec],
        "ScaleCat": _objects(SCALE_CATS)[u.scale[ii]],
        "Mkt": _objects(m for m, _ in MARKETS)[u.market_seg[ii]],
        "MktNm": _objects(nm for _, nm in MARKETS)[u.market_seg[ii]],
        "Mrgn": "1", "MrgnNm": "信用", "ProdCat": "011",
    })
