"""The simulated J-Quants API's query logic: parameters -> rows in API columns.

One method per endpoint of ``ROUTES`` (spec: jpx-jquants.com/en/spec); a bad parameter
raises ``BadRequest`` (the server answers 400 with its message). ``BadRows`` plants bad
data on chosen dates for quality-gate tests.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gogooku3.jpx.calendar import CalendarError, parse_date
from gogooku3.market.sim import SimulatedMarket

BAD_ROW_KINDS = ("negative_price", "high_below_low", "duplicate", "missing_day", "bad_adjfactor")


@dataclass
class BadRows:
    """Planted bad data: ``{date: kind}`` with kinds from ``BAD_ROW_KINDS``."""

    by_date: dict[dt.date, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for day, kind in self.by_date.items():
            if kind not in BAD_ROW_KINDS:
                raise ValueError(f"bad row kind {kind!r} on {day}; known: {BAD_ROW_KINDS}")


class BadRequest(Exception):
    """Becomes a 400 with ``{"message": ...}``."""


def _parse_day(value: str | None, name: str) -> dt.date | None:
    if value is None or value == "":
        return None
    try:
        return parse_date(value, f"'{name}'")
    except CalendarError as exc:
        raise BadRequest(str(exc)) from None


def _between(df: pd.DataFrame, col: str, lo: dt.date | None, hi: dt.date | None) -> pd.DataFrame:
    """Rows with ``lo <= df[col] <= hi`` (ISO date strings compare in date order)."""
    if lo:
        df = df[df[col] >= lo.isoformat()]
    if hi:
        df = df[df[col] <= hi.isoformat()]
    return df


def records(df: pd.DataFrame) -> list[dict]:
    """JSON-ready rows: NaN → null, numpy scalars → Python (column-wise, then zipped)."""
    if df.empty:
        return []
    columns = []
    for name in df.columns:
        values = df[name].to_numpy()
        cells = values.astype(object)
        cells[pd.isna(values)] = None
        columns.append(cells.tolist())
    names = list(df.columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


class MarketAPI:
    """Query logic per endpoint: parameters → rows (a DataFrame in API columns)."""

    def __init__(self, market: SimulatedMarket, bad: BadRows | None = None):
        self.m = market
        self.bad = bad or BadRows()
        self._master_by_date = {d: g for d, g in market.master.groupby("Date", sort=True)}

    def _code(self, q) -> str | None:
        code = q.get("code")
        if code is None or code == "":
            return None
        if len(code) not in (4, 5):
            raise BadRequest(f"'code' must be 4 or 5 characters, got {code!r}")
        return code

    @staticmethod
    def _match_code(df: pd.DataFrame, code: str) -> pd.DataFrame:
        # a 4-character code matches the common stock (5th char '0') only
        return df[df["Code"] == (code + "0" if len(code) == 4 else code)]

    def _range(self, q) -> tuple[dt.date | None, dt.date | None]:
        lo, hi = _parse_day(q.get("from"), "from"), _parse_day(q.get("to"), "to")
        if lo and hi and lo > hi:
            raise BadRequest(f"'from' {lo} is after 'to' {hi}")
        return lo, hi

    def bars_daily(self, q) -> pd.DataFrame:
        code, day = self._code(q), _parse_day(q.get("date"), "date")
        lo, hi = self._range(q)
        if code is None and day is None:
            raise BadRequest("either 'code' or 'date' is required")
        if day is not None:
            out = self.m.bars_for_date(day)
            if code:
                out = self._match_code(out, code)
            return self._corrupt(day, out)
        return _between(self._match_code(self.m.bars, code), "Date", lo, hi)

    def _corrupt(self, day: dt.date, df: pd.DataFrame) -> pd.DataFrame:
        kind = self.bad.by_date.get(day)
        if kind is None or df.empty:
            return df
        df = df.copy()
        first = df.index[df["C"].notna()][0]
        if kind == "missing_day":
            return df.iloc[0:0]
        if kind == "negative_price":
            df.loc[first, "C"] = -abs(df.loc[first, "C"])
        elif kind == "high_below_low":
            df.loc[first, "H"] = df.loc[first, "L"] - 1
        elif kind == "duplicate":
            df = pd.concat([df, df.loc[[first]]])
        elif kind == "bad_adjfactor":
            df.loc[first, "AdjFactor"] = 0.5  # a split that did not happen
        return df

    def master(self, q) -> pd.DataFrame:
        code, day = self._code(q), _parse_day(q.get("date"), "date")
        if day is None:
            day = self.m.days[-1]
        key = day.isoformat()
        dates = list(self._master_by_date)
        # the snapshot in force on `day` (the latest listing day on or before it)
        i = np.searchsorted(dates, key, side="right") - 1
        if i < 0:
            return self.m.master.iloc[0:0]
        out = self._master_by_date[dates[i]].assign(Date=key)
        return self._match_code(out, code) if code else out

    def topix(self, q) -> pd.DataFrame:
        return _between(self.m.topix, "Date", *self._range(q))

    def calendar(self, q) -> pd.DataFrame:
        lo, hi = self._range(q)
        lo = lo or self.m.days[0]
        hi = hi or self.m.days[-1]
        rows = pd.DataFrame(self.m.calendar_rows(lo, hi))
        hol = q.get("hol_div")
        if hol is not None:
            if hol not in {"0", "1", "2", "3"}:
                raise BadRequest(f"'hol_div' must be 0-3, got {hol!r}")
            rows = rows[rows["HolDiv"] == hol]
        return rows

    def fins_summary(self, q) -> pd.DataFrame:
        code, day = self._code(q), _parse_day(q.get("date"), "date")
        if code is None and day is None:
            raise BadRequest("either 'code' or 'date' is required")
        out = self.m.fins
        if day is not None:
            out = out[out["DiscDate"] == day.isoformat()]
        if code:
            out = self._match_code(out, code)
        return out

    def investor_types(self, q) -> pd.DataFrame:
        lo, hi = self._range(q)
        out = self.m.investor_types
        section = q.get("section")
        if section:
            out = out[out["Section"] == section]
        return _between(out, "PubDate", lo, hi)

    def margin_interest(self, q) -> pd.DataFrame:
        code, day = self._code(q), _parse_day(q.get("date"), "date")
        pub = _parse_day(q.get("published_date"), "published_date")
        lo, hi = self._range(q)
        if code is None and day is None and pub is None:
            raise BadRequest("one of 'code', 'date' or 'published_date' is required")
        if pub is not None and (day is not None or lo is not None or hi is not None):
            raise BadRequest("'published_date' cannot be combined with 'date', 'from' or 'to'")
        if (lo is not None or hi is not None) and code is None:
            raise BadRequest("'from'/'to' need 'code'")
        # weekly-era rows have an empty PubDate: published_date= never finds them
        out = self.m.margin
        if day is not None:
            out = out[out["Date"] == day.isoformat()]
        if pub is not None:
            out = out[out["PubDate"] == pub.isoformat()]
        if code:
            out = self._match_code(out, code)
        return _between(out, "Date", lo, hi)


ROUTES = {
    "/v2/equities/master": "master",
    "/v2/equities/bars/daily": "bars_daily",
    "/v2/indices/bars/daily/topix": "topix",
    "/v2/markets/calendar": "calendar",
    "/v2/fins/summary": "fins_summary",
    "/v2/equities/investor-types": "investor_types",
    "/v2/markets/margin-interest": "margin_interest",
}
