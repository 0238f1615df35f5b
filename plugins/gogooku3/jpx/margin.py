"""When JPX margin-interest balances become public: the weekly era and the daily era.

J-Quants ``/markets/margin-interest`` (spec: jpx-jquants.com/en/spec/mkt-margin-interest;
the official client's ``get_mkt_margin_interest``) serves two eras:

* record (application) dates up to ``WEEKLY_UNTIL`` (2026-09-24) are **weekly** (record
  date usually a Friday) and carry no ``PubDate``: JPX published those balances after
  the close of the **2nd business day of the following week**, so the publication date
  is derived here (``weekly_publication``);
* from ``DAILY_FROM`` (2026-09-25) the data is **daily** and each row carries ``PubDate``.

Either way a row is usable from the trade date after its publication date (published
after the close), which the silver layer applies.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from gogooku3.jpx.calendar import TradingCalendar

WEEKLY_UNTIL = dt.date(2026, 9, 24)
DAILY_FROM = dt.date(2026, 9, 25)


def weekly_publication(record: dt.date, cal: TradingCalendar) -> dt.date:
    """JPX publication date of the weekly balance recorded on ``record``: the 2nd
    trading day counted from the Monday after ``record``'s week (a week with a single
    business day pushes it into the week after)."""
    monday = record + dt.timedelta(days=7 - record.weekday())
    return cal.shift(monday - dt.timedelta(days=1), 2)


def publication_dates(pub: Iterable[dt.date | None], record: Iterable[dt.date],
                      cal: TradingCalendar) -> list[dt.date]:
    """Per row: ``PubDate`` where the service gives one, else the weekly publication date
    derived from the record date (``weekly_publication``)."""
    cache: dict[dt.date, dt.date] = {}
    out = []
    for p, r in zip(pub, record, strict=True):
        if p is None or p != p:  # None, NaN or NaT: a weekly-era row
            if r not in cache:
                cache[r] = weekly_publication(r, cal)
            p = cache[r]
        out.append(p)
    return out


def weekly_records_published_on(day: dt.date, cal: TradingCalendar) -> list[dt.date]:
    """Trade dates up to ``WEEKLY_UNTIL`` whose weekly balance JPX published on ``day``
    (the record dates to ask ``date=`` for, so that ``day`` owns those rows)."""
    lo, hi = day - dt.timedelta(days=21), min(day - dt.timedelta(days=1), WEEKLY_UNTIL)
    return [r for r in cal.trading_days(lo, hi) if weekly_publication(r, cal) == day]
