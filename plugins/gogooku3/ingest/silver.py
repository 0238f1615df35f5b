"""Silver: pure transforms from bronze frames (pandas) to the catalogue's silver tables.

No I/O here; the runner reads bronze, calls these and writes the results.

Prices (``adjust_prices``) — **forward** cumulative adjustment (decided in issue 5, see
docs/ingestion.md): ``cum_adj_factor_t = prod_{s <= t} AdjFactor_s`` per code, carried
over from the previous silver row; ``adj_price = raw / cum``, ``adj_volume = raw * cum``.
A split on day T changes no row before T, so the price stored for a date never depends
on a later corporate action and a daily run only appends. Returns and ratios equal
those of the API's backward-adjusted ``Adj*`` columns; ``adjustment_mismatches`` checks
that ``AdjC / adj_close`` is constant per code (and localises the row where it is not).

Statements (``statements``) — ``date`` is the first trade date the disclosure may be used
on: ``DiscDate`` when it is a trading day and ``DiscDate DiscTime`` is before that day's
session close (``gogooku3.jpx.calendar.session_close``), else the next trading day. A
missing ``DiscTime`` counts as after the close.

Flows and margin — published after the close (J-Quants publishes investor types and
margin interest in the evening), so usable from the trading day after ``PubDate``; weekly
margin records (before 2026-09-25) have no ``PubDate``: JPX's publication date is derived
from the record date (``gogooku3.jpx.margin``).

Master (``master_asof``) — consecutive daily snapshots with identical attributes become
one ``[valid_from, valid_to)`` interval; ``valid_to`` is null while still current.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import numpy as np
import pandas as pd

from gogooku3.jpx.calendar import TradingCalendar, session_close
from gogooku3.jpx.margin import publication_dates


def adjust_prices(bars: pd.DataFrame, prev_cum: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Bronze daily bars -> ``silver.equities_prices_daily`` rows (plus ``cum_adj_factor``).

    ``bars`` holds bronze columns (``date, Code, O..AdjVo``) for consecutive trade dates;
    ``prev_cum`` maps code -> ``cum_adj_factor`` of its last silver row before them
    (1.0 when absent: the first row of a code starts the chain). A null AdjFactor counts
    as 1.
    """
    df = bars.sort_values(["Code", "date"], kind="stable").reset_index(drop=True)
    factor = df["AdjFactor"].astype(float).fillna(1.0)
    start = df["Code"].map(dict(prev_cum or {})).astype(float).fillna(1.0)
    cum = factor.groupby(df["Code"]).cumprod() * start
    out = pd.DataFrame(
        {
            "date": df["date"],
            "code": df["Code"],
            "open": df["O"],
            "high": df["H"],
            "low": df["L"],
            "close": df["C"],
            "volume": df["Vo"],
            "turnover": df["Va"],
            "adj_factor": factor,
            "adj_open": df["O"] / cum,
            "adj_high": df["H"] / cum,
            "adj_low": df["L"] / cum,
            "adj_close": df["C"] / cum,
            "adj_volume": df["Vo"] * cum,
            "upper_limit_hit": df["UL"].astype("string").eq("1").fillna(False).astype(bool),
            "lower_limit_hit": df["LL"].astype("string").eq("1").fillna(False).astype(bool),
            "is_traded": df["C"].notna(),
            "cum_adj_factor": cum,
        }
    )
    return out.sort_values(["date", "code"], kind="stable").reset_index(drop=True)


def with_missing_codes(bars: pd.DataFrame, universe: Mapping[dt.date, set[str]]) -> pd.DataFrame:
    """``bars`` plus a no-trade row (O/H/L/C/Vo/Va/AdjFactor null, flags "0") for every
    listed code of ``universe[date]`` without a row that date, as J-Quants itself sends
    for a listed stock that did not trade. Dates absent from ``universe`` get nothing."""
    have = set(zip(bars["date"], bars["Code"], strict=True))
    missing = [(d, c) for d in sorted(universe) for c in sorted(universe[d]) if (d, c) not in have]
    if not missing:
        return bars
    fill = pd.DataFrame(missing, columns=["date", "Code"]).assign(UL="0", LL="0")
    return pd.concat([bars, fill], ignore_index=True)


def adjustment_mismatches(
    silver: pd.DataFrame, bronze: pd.DataFrame, abs_tol: float = 0.06, rel_tol: float = 1e-4
) -> pd.DataFrame:
    """Rows where the API's ``AdjC`` disagrees with our forward adjustment beyond rounding.

    Within one fetch of the API, ``AdjC_t / adj_close_t`` equals the cumulative factor of
    the API's latest day for every ``t`` of a code: it must be constant per code. A step
    in that ratio between consecutive traded rows of a code at ``t`` means ``AdjFactor_t``
    and the API's own adjustment disagree; the row at ``t`` is reported, unless the step
    only undoes the previous one (then ``t-1`` was the odd row, already reported). The
    tolerance allows for ``Adj*`` rounded to one decimal:
    ``|ratio_t / ratio_{t-1} - 1| <= abs_tol / AdjC_t + abs_tol / AdjC_{t-1} + rel_tol``.
    Returns ``date, Code, AdjC, expected_AdjC`` of the reported rows.
    """
    m = bronze[["date", "Code", "AdjC"]].merge(
        silver[["date", "code", "adj_close"]].rename(columns={"code": "Code"}), on=["date", "Code"]
    )
    m = m[m["AdjC"].notna() & m["adj_close"].notna() & (m["adj_close"] > 0) & (m["AdjC"] > 0)]
    m = m.sort_values(["Code", "date"], kind="stable").reset_index(drop=True)
    if m.empty:
        return m.assign(expected_AdjC=pd.Series(dtype=float))
    ratio = m["AdjC"] / m["adj_close"]
    by = m["Code"]
    prev_ratio = ratio.groupby(by).shift(1)
    prev_adjc = m["AdjC"].groupby(by).shift(1)
    tol = abs_tol / m["AdjC"] + abs_tol / prev_adjc + rel_tol
    step = ratio / prev_ratio
    is_step = ((step - 1).abs() > tol).fillna(False)
    prev_step = step.groupby(by).shift(1)
    prev_is_step = is_step.groupby(by).shift(1, fill_value=False).astype(bool)
    undoes = prev_is_step & ((step * prev_step - 1).abs() <= 2 * tol).fillna(False)
    bad = is_step & ~undoes
    return m.loc[bad, ["date", "Code", "AdjC"]].assign(
        expected_AdjC=(prev_ratio * m["adj_close"])[bad])


def effective_date(
    disc_date: dt.date, disc_time: str | None, calendar: TradingCalendar
) -> tuple[dt.date, dt.datetime | None]:
    """``(first usable trade date, disclosure instant or None)`` of one disclosure."""
    instant = None
    if disc_time:
        parts = [int(p) for p in str(disc_time).strip().split(":")[:3]]
        parts += [0] * (3 - len(parts))
        close = session_close(disc_date)
        instant = close.replace(hour=parts[0], minute=parts[1], second=parts[2])
        if calendar.is_trading_day(disc_date) and instant < close:
            return disc_date, instant
    return calendar.shift(disc_date, 1), instant


def statements(fins: pd.DataFrame, calendar: TradingCalendar) -> pd.DataFrame:
    """Bronze ``fins_summary`` -> ``silver.fins_statements`` keyed by effective trade date."""
    eff = [effective_date(d, t, calendar) for d, t in zip(fins["DiscDate"], fins["DiscTime"],
                                                           strict=True)]
    disclosed = pd.to_datetime(
        pd.Series([i for _, i in eff], dtype=object, index=fins.index), utc=True
    )
    return pd.DataFrame(
        {
            "date": [d for d, _ in eff],
            "code": fins["Code"],
            "disc_no": fins["DiscNo"],
            "disclosed_at": disclosed,
            "doc_type": fins["DocType"],
            "period_type": fins["CurPerType"],
            "fiscal_year_end": fins["CurFYEn"],
            "sales": fins["Sales"],
            "operating_profit": fins["OP"],
            "ordinary_profit": fins["OdP"],
            "net_income": fins["NP"],
            "eps": fins["EPS"],
            "total_assets": fins["TA"],
            "equity": fins["Eq"],
            "bps": fins["BPS"],
            "forecast_sales": fins["FSales"],
            "forecast_operating_profit": fins["FOP"],
            "forecast_net_income": fins["FNP"],
            "forecast_eps": fins["FEPS"],
            "disc_date": fins["DiscDate"],
            "shares_outstanding": fins["ShOutFY"],
        }
    ).reset_index(drop=True)


def _after_publication(pub, calendar: TradingCalendar) -> list[dt.date]:
    cache: dict[dt.date, dt.date] = {}
    out = []
    for d in pub:
        if d not in cache:
            cache[d] = calendar.shift(d, 1)
        out.append(cache[d])
    return out


def investor_flows(inv: pd.DataFrame, calendar: TradingCalendar) -> pd.DataFrame:
    """Bronze ``investor_types`` -> ``silver.investor_flows`` (usable the day after PubDate)."""
    return pd.DataFrame(
        {
            "date": _after_publication(inv["PubDate"], calendar),
            "section": inv["Section"],
            "start_date": inv["StDate"],
            "end_date": inv["EnDate"],
            "foreign_balance": inv["FrgnBal"],
            "individual_balance": inv["IndBal"],
            "proprietary_balance": inv["PropBal"],
            "trust_bank_balance": inv["TrstBnkBal"],
            "investment_trust_balance": inv["InvTrBal"],
            "total_turnover": inv["TotTot"],
            "published_date": inv["PubDate"],
        }
    ).reset_index(drop=True)


def margin_interest(margin: pd.DataFrame, calendar: TradingCalendar) -> pd.DataFrame:
    """Bronze ``margin_interest`` -> silver, usable the trading day after publication.

    The publication date is ``PubDate`` (daily era, from 2026-09-25) or, where the service
    gives none (weekly era), JPX's weekly publication date of the record date ``AsOfDate``
    (``gogooku3.jpx.margin``); it is stored as ``published_date``.
    """
    published = publication_dates(margin["PubDate"], margin["AsOfDate"], calendar)
    return pd.DataFrame(
        {
            "date": _after_publication(published, calendar),
            "code": margin["Code"].to_numpy(),
            "as_of_date": margin["AsOfDate"].to_numpy(),
            "short_volume": margin["ShrtVol"].to_numpy(),
            "long_volume": margin["LongVol"].to_numpy(),
            "published_date": published,
        }
    )


def topix(bars: pd.DataFrame) -> pd.DataFrame:
    """Bronze ``indices_topix`` -> ``silver.indices_topix_daily``."""
    return pd.DataFrame(
        {"date": bars["date"], "open": bars["O"], "high": bars["H"], "low": bars["L"],
         "close": bars["C"]}
    ).sort_values("date").reset_index(drop=True)


_MASTER_ATTRS = {
    "CoName": "company_name",
    "S17": "sector17_code",
    "S33": "sector33_code",
    "S33Nm": "sector33_name",
    "Mkt": "market_code",
    "ScaleCat": "scale_category",
}


def master_asof(master: pd.DataFrame) -> pd.DataFrame:
    """Daily master snapshots (bronze ``equities_master``) -> ``[valid_from, valid_to)`` rows.

    A code absent from a snapshot ends its interval at that snapshot's date; a code in
    the latest snapshot has ``valid_to`` null. Only the snapshots given are used, so the
    runner passes the dates that passed the quality gate.
    """
    snaps = np.array(sorted(master["date"].unique()), dtype=object)
    if len(snaps) == 0:
        return pd.DataFrame(columns=["code", "valid_from", "valid_to", *_MASTER_ATTRS.values()])
    pos = {d: i for i, d in enumerate(snaps)}
    df = master.sort_values(["Code", "date"], kind="stable").reset_index(drop=True)
    idx = df["date"].map(pos)
    attrs = df[list(_MASTER_ATTRS)].astype("string").fillna("\0")
    key = attrs.apply(lambda r: "\x1f".join(r), axis=1)
    same_code = df["Code"].eq(df["Code"].shift())
    contiguous = same_code & idx.eq(idx.shift() + 1)
    new_run = ~(contiguous & key.eq(key.shift()))
    run = new_run.cumsum()
    first = df.groupby(run).head(1).set_index(run[new_run])
    last_idx = idx.groupby(run).max()
    nxt = last_idx + 1
    valid_to = [snaps[i] if i < len(snaps) else None for i in nxt]
    out = pd.DataFrame(
        {
            "code": first["Code"].to_numpy(),
            "valid_from": first["date"].to_numpy(),
            "valid_to": valid_to,
            **{v: first[k].to_numpy() for k, v in _MASTER_ATTRS.items()},
        }
    )
    return out.reset_index(drop=True)
