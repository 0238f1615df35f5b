"""JPX trading calendar and JST trade dates.

A *trade date* is a JST calendar date (``datetime.date``). The source of truth
for which dates trade is J-Quants ``/markets/calendar``: ``HolDiv`` "1"
(business day) and "2" (half-day session) are equity trading days, "0" and "3"
are not (spec: jpx-jquants.com/en/spec/mkt-cal). When the lake holds no
calendar rows for a date, the offline JPX calendar from ``exchange_calendars``
(XTKS) answers and the fallback is logged once per range.
"""

from __future__ import annotations

import bisect
import datetime as dt
import logging
from collections.abc import Mapping
from functools import lru_cache

import pendulum

log = logging.getLogger(__name__)

TOKYO = "Asia/Tokyo"
TRADING_HOLDIV = frozenset({"1", "2"})
_CLOSE_1530_FROM = dt.date(2024, 11, 5)
_OFFLINE_START = dt.date(2000, 1, 1)
_OFFLINE_END = dt.date(2030, 12, 31)


class CalendarError(ValueError):
    """A date outside what the calendar knows, or a malformed calendar row."""


def to_trade_date(ts: dt.datetime | str) -> dt.date:
    """JST calendar date of an instant (an Airflow logical date, a UTC timestamp).

    A naive datetime is taken as UTC, which is what Airflow stores. Never call
    ``.date()`` on a UTC value: 2026-11-23T20:00Z is already 2026-11-24 in Tokyo.
    """
    if isinstance(ts, str):
        instant = pendulum.parse(ts)
    elif ts.tzinfo is None:
        instant = pendulum.instance(ts.replace(tzinfo=dt.UTC))
    else:
        instant = pendulum.instance(ts)
    return instant.in_timezone(TOKYO).date()


def session_close(day: dt.date) -> dt.datetime:
    """The TSE cash-session close of ``day`` as an aware JST datetime.

    15:00 JST until 2024-11-01, 15:30 JST from 2024-11-05 (the extended
    closing auction). A disclosure at or after this instant counts from the
    next trade date.
    """
    hour, minute = (15, 30) if day >= _CLOSE_1530_FROM else (15, 0)
    return pendulum.datetime(day.year, day.month, day.day, hour, minute, tz=TOKYO)


#: Days the exchange's system failed: J-Quants keeps them as business days
#: (HolDiv "1") with null OHLC for every stock; XTKS calendars mark them closed.
OUTAGE_DAYS = (dt.date(2020, 10, 1),)


@lru_cache(maxsize=1)
def _offline_sessions() -> tuple[dt.date, ...]:
    import exchange_calendars as xc

    cal = xc.get_calendar(
        "XTKS", start=_OFFLINE_START.isoformat(), end=_OFFLINE_END.isoformat()
    )
    return tuple(sorted({ts.date() for ts in cal.sessions} | set(OUTAGE_DAYS)))


def load_offline() -> None:
    """Load the offline calendar now (its imports take seconds), e.g. in a thread while
    a JVM starts; later calls reuse it."""
    _offline_sessions()


def offline_trading_days(start: dt.date, end: dt.date) -> list[dt.date]:
    """Trading days in ``[start, end]`` from the offline JPX (XTKS) calendar.

    Answers as J-Quants does: the outage days in ``OUTAGE_DAYS`` are business
    days (HolDiv "1", every bar null) although XTKS lists them as closed.
    """
    sessions = _offline_sessions()
    if start < sessions[0] or end > _OFFLINE_END:
        raise CalendarError(
            f"offline JPX calendar covers {sessions[0]}..{_OFFLINE_END}; asked {start}..{end}"
        )
    lo = bisect.bisect_left(sessions, start)
    hi = bisect.bisect_right(sessions, end)
    return list(sessions[lo:hi])


def holdiv_rows(start: dt.date, end: dt.date) -> list[dict[str, str]]:
    """Offline calendar in ``/markets/calendar`` shape: one ``{Date, HolDiv}`` per day.

    Only "0" and "1" can be derived offline; half days ("2") and holiday
    derivatives trading ("3") need the real service.
    """
    trading = set(offline_trading_days(start, end))
    out, day = [], start
    while day <= end:
        out.append({"Date": day.isoformat(), "HolDiv": "1" if day in trading else "0"})
        day += dt.timedelta(days=1)
    return out


class TradingCalendar:
    """Trading-day arithmetic over known HolDiv rows with an offline fallback.

    ``holdiv`` maps dates to J-Quants ``HolDiv`` strings (e.g. from the lake's
    ``bronze.markets_calendar``); dates it does not cover are answered by the
    offline XTKS calendar.
    """

    def __init__(self, holdiv: Mapping[dt.date, str] | None = None):
        self._holdiv = dict(holdiv or {})
        bad = {d: v for d, v in self._holdiv.items() if v not in {"0", "1", "2", "3"}}
        if bad:
            first = next(iter(bad))
            raise CalendarError(f"markets/calendar: HolDiv {bad[first]!r} on {first} is not 0-3")
        self._warned = False

    @classmethod
    def from_lake(cls, lake_root: str | None = None) -> TradingCalendar:
        """Calendar from ``bronze.markets_calendar`` in the lake, if present."""
        from gogooku3.lake import catalog, deltars

        try:
            table = deltars.read_table(catalog.table("bronze.markets_calendar"), lake_root=lake_root)
        except deltars.TableNotFound:
            return cls()
        dates = table.column("date").to_pylist()
        divs = table.column("HolDiv").to_pylist()
        return cls(dict(zip(dates, divs, strict=True)))

    def _is_trading(self, day: dt.date) -> bool:
        div = self._holdiv.get(day)
        if div is not None:
            return div in TRADING_HOLDIV
        if self._holdiv and not self._warned:
            log.info("calendar: %s not in J-Quants calendar rows; using offline JPX calendar", day)
            self._warned = True
        return bool(offline_trading_days(day, day))

    def is_trading_day(self, day: dt.date) -> bool:
        """True when TSE equities trade on ``day`` (HolDiv "1" or "2")."""
        return self._is_trading(day)

    def trading_days(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Trading days in ``[start, end]``, ascending (empty when start > end)."""
        if start > end:
            return []
        offline: set[dt.date] | None = None  # only for days the HolDiv rows miss
        out, day = [], start
        while day <= end:
            div = self._holdiv.get(day)
            if div is None and offline is None:
                offline = set(offline_trading_days(start, end))
            if (div in TRADING_HOLDIV) if div is not None else (day in offline):
                out.append(day)
            day += dt.timedelta(days=1)
        return out

    def shift(self, day: dt.date, n: int) -> dt.date:
        """The trading day ``n`` trading days after ``day`` (before, for n < 0).

        ``day`` itself need not trade: ``shift(saturday, -1)`` is Friday and
        ``shift(saturday, 1)`` is Monday (if both trade). ``n == 0`` returns
        ``day`` if it trades, else raises.
        """
        if n == 0:
            if not self._is_trading(day):
                raise CalendarError(f"{day} is not a trading day")
            return day
        step = dt.timedelta(days=1 if n > 0 else -1)
        remaining, cur = abs(n), day
        for _ in range(abs(n) * 7 + 31):
            cur += step
            if self._is_trading(cur):
                remaining -= 1
                if remaining == 0:
                    return cur
        raise CalendarError(f"no trading day {n} days from {day}")

    def previous_trading_day(self, day: dt.date) -> dt.date:
        """Last trading day strictly before ``day``."""
        return self.shift(day, -1)

    def next_trading_day(self, day: dt.date) -> dt.date:
        """First trading day strictly after ``day``."""
        return self.shift(day, 1)

    def trading_days_back(self, day: dt.date, n: int) -> dt.date:
        """Start of a window of ``n`` trading days ending at ``day`` (inclusive).

        ``trading_days_back(d, 1) == d`` for a trading day ``d``; used to size
        look-back reads (e.g. 260 trading days of silver before a feature build).
        """
        if n < 1:
            raise CalendarError(f"window length must be >= 1, got {n}")
        end = day if self._is_trading(day) else self.previous_trading_day(day)
        return end if n == 1 else self.shift(end, -(n - 1))


def parse_date(value: str, what: str = "date") -> dt.date:
    """Parse ``YYYY-MM-DD`` or ``YYYYMMDD`` (J-Quants accepts both) or raise naming ``what``."""
    text = value.strip()
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise CalendarError(f"{what}: {value!r} is not a date (YYYY-MM-DD or YYYYMMDD)")
