"""The build's calendar clock: look-back length and the trading-day index ``_tidx``.

``_tidx`` of a date is its index in the offline JPX (XTKS) calendar counted from
``CALENDAR_ANCHOR``; a date the offline calendar lacks counts at its insertion point (the
J-Quants calendar and the offline one agree on sessions). Window guards, the recursive
indicators' seeding epochs and the peer-graph snapshot dates all use this clock, so they
do not depend on which dates a run happens to read.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import numpy as np

from gogooku3.jpx.calendar import offline_trading_days

#: trading days of history (inclusive of T) any feature of date T may use
LOOKBACK = 260
#: day 0 of ``_tidx``
CALENDAR_ANCHOR = dt.date(2000, 1, 4)


@lru_cache(maxsize=4)
def _sessions(until: dt.date) -> np.ndarray:
    return np.array(offline_trading_days(CALENDAR_ANCHOR, until), dtype="datetime64[D]")


def day64(dates) -> np.ndarray:
    """Dates (``datetime.date`` objects or numpy datetimes; ``None`` → NaT) as
    ``datetime64[D]``: the key type of the driver's per-date tables."""
    return np.asarray(dates, "datetime64[D]")


def tidx(dates) -> np.ndarray:
    """``_tidx`` of each of ``dates`` (a sequence or array of ``datetime.date``)."""
    days = day64(dates)
    if not len(days):
        return np.zeros(0, np.int64)
    return np.searchsorted(_sessions(days.max().astype(dt.date)), days, side="left")


def trading_index(dates) -> dict[dt.date, int]:
    """``date -> _tidx`` for ``dates``."""
    dates = sorted(set(dates))
    return dict(zip(dates, tidx(dates).tolist(), strict=True))
