"""TSE daily price limits (制限値幅) by base-price band.

J-Quants ``UL``/``LL`` are only flags ("1" when the stock touched its upper/lower limit);
the limit prices themselves come from this table and the base price (normally the
previous close; on an ex-rights day the close times that day's ``AdjFactor``).
Source: JPX, "Daily Price Limits" (jpx.co.jp/english/equities/trading/domestic/06.html).
Limit widening after consecutive limit days (the "拡大" rule) is not modelled: a day
outside these bands is reported by the gate, not silently accepted.
"""

from __future__ import annotations

import numpy as np

# (upper bound of the base-price band, exclusive; limit width in yen)
_BANDS: tuple[tuple[float, float], ...] = (
    (100, 30), (200, 50), (500, 80), (700, 100), (1_000, 150), (1_500, 300), (2_000, 400),
    (3_000, 500), (5_000, 700), (7_000, 1_000), (10_000, 1_500), (15_000, 3_000),
    (20_000, 4_000), (30_000, 5_000), (50_000, 7_000), (70_000, 10_000), (100_000, 15_000),
    (150_000, 30_000), (200_000, 40_000), (300_000, 50_000), (500_000, 70_000),
    (700_000, 100_000), (1_000_000, 150_000), (1_500_000, 300_000), (2_000_000, 400_000),
    (3_000_000, 500_000), (5_000_000, 700_000), (7_000_000, 1_000_000),
    (10_000_000, 1_500_000), (15_000_000, 3_000_000), (20_000_000, 4_000_000),
    (30_000_000, 5_000_000), (50_000_000, 7_000_000), (float("inf"), 10_000_000),
)
_UPPER = np.array([u for u, _ in _BANDS])
_WIDTH = np.array([w for _, w in _BANDS])


def limit_width(base) -> np.ndarray:
    """Daily limit width in yen for base price(s) ``base`` (NaN where base is NaN)."""
    b = np.asarray(base, dtype=float)
    idx = np.searchsorted(_UPPER, b, side="right").clip(0, len(_WIDTH) - 1)
    return np.where(np.isnan(b), np.nan, _WIDTH[idx])


def limit_prices(base) -> tuple[np.ndarray, np.ndarray]:
    """``(lower, upper)`` limit prices for base price(s); the lower limit is at least 1 yen."""
    b = np.asarray(base, dtype=float)
    w = limit_width(b)
    return np.maximum(b - w, 1.0), b + w
