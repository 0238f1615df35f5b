"""Simulated disclosures and flows: ``/fins/summary``, investor types, margin interest.

Contracts:

* ``draw_disclosures`` plans one statement per stock per quarter (63 trade days, random
  phase) with a ``DiscTime``; ``Disclosures.effective`` is the index of the first trade
  date on which the statement is usable — the disclosure day itself if published before
  that day's close (15:00 JST, 15:30 from 2024-11-05; ``calendar.session_close``), the
  next trade date otherwise, and also when ``DiscTime`` is empty (conservative, as the
  ingestion treats it).
* ``fins_frame`` returns every ``FIN_SUMMARY_COLUMNS_V2`` column as strings, ``""`` for
  items not modelled — the real API sends strings there too.
* investor types are weekly (Mon–Fri) per section, published on the 4th trade date after
  the week; margin interest follows the service's two eras (``gogooku3.jpx.margin``):
  weekly as of each week's last trade date up to 2026-09-24 without ``PubDate`` (left out
  until JPX would have published it), daily from 2026-09-25 with ``PubDate`` the next
  trade date. Numbers there are numbers, as in the API.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gogooku3.jpx.calendar import TradingCalendar, session_close
from gogooku3.jpx.margin import WEEKLY_UNTIL, weekly_publication

DISC_TIMES = ["11:30:00", "13:00:00", "14:00:00", "15:00:00", "15:30:00", "16:00:00", ""]
_DISC_P = [0.05, 0.15, 0.15, 0.25, 0.15, 0.2, 0.05]
INVESTOR_SECTIONS = ["TSEPrime", "TSEStandard", "TSEGrowth"]
INVESTOR_GROUPS = ["Prop", "Brk", "Tot", "Ind", "Frgn", "SecCo", "InvTr", "BusCo", "OthCo",
                   "InsCo", "Bank", "TrstBnk", "OthFin"]
QUARTER_DAYS = 63


@dataclass
class Disclosures:
    """One row per planned statement (arrays of equal length)."""

    stock: np.ndarray      # stock index i
    quarter: np.ndarray    # event number k of that stock
    day: np.ndarray        # index of DiscDate in the trading days
    time: np.ndarray       # DiscTime strings ("" = unknown)
    effective: np.ndarray  # index of the first trade date the statement is usable on
    surprise: np.ndarray   # standardized earnings surprise (drives the planted drift)


def after_close(days: list[dt.date], day_idx: np.ndarray, times: np.ndarray) -> np.ndarray:
    """True where a disclosure at ``times`` on ``days[day_idx]`` is at or after the close."""
    close_min = np.array([session_close(d).hour * 60 + session_close(d).minute for d in days])
    minutes = np.array([int(s[:2]) * 60 + int(s[3:5]) if s else -1 for s in DISC_TIMES])
    lookup = {s: m for s, m in zip(DISC_TIMES, minutes, strict=True)}
    disc_min = np.array([lookup[s] if s in lookup else int(s[:2]) * 60 + int(s[3:5])
                         for s in times]) if len(times) else np.zeros(0, int)
    return (disc_min < 0) | (disc_min >= close_min[day_idx])


def draw_disclosures(n: int, days: list[dt.date], rng: np.random.Generator) -> Disclosures:
    """Quarterly statements for ``n`` stocks over ``days`` (see module contract)."""
    T = len(days)
    k_max = T // QUARTER_DAYS + 1
    phase = rng.integers(0, QUARTER_DAYS, size=n)
    time_k = rng.choice(len(DISC_TIMES), size=(n, k_max), p=_DISC_P)
    surprise = rng.normal(0, 1, size=(n, k_max))
    ii, kk = np.meshgrid(np.arange(n), np.arange(k_max), indexing="ij")
    tt = phase[:, None] + QUARTER_DAYS * kk
    keep = tt < T
    ii, kk, tt = ii[keep], kk[keep], tt[keep]
    times = np.array(DISC_TIMES, dtype=object)[time_k[ii, kk]]
    eff = tt + after_close(days, tt, times)
    return Disclosures(ii, kk, tt, times, eff, surprise[ii, kk])


def _fmt(x: np.ndarray) -> np.ndarray:
    """Numbers as the API's strings: integers from 100 up, 2 decimals below, "" for NaN."""
    x = np.asarray(x, dtype=float)
    big = np.abs(x) >= 100
    out = np.where(big, np.round(np.nan_to_num(x)).astype(np.int64).astype(str),
                   np.char.mod("%.2f", np.nan_to_num(x))).astype(object)
    out[~np.isfinite(x)] = ""
    return out


def fins_frame(d: Disclosures, days: list[dt.date], codes: list[str], listed: np.ndarray,
               close: np.ndarray, shares_out: np.ndarray) -> pd.DataFrame:
    """``/fins/summary`` rows of the statements of listed stocks, sorted by DiscDate, Code."""
    from jquantsapi.constants import FIN_SUMMARY_COLUMNS_V2

    ok = listed[d.day, d.stock]
    i, k, t, s = d.stock[ok], d.quarter[ok], d.day[ok], d.surprise[ok]
    price = np.nanmean(np.stack([close[np.maximum(t - 1, 0), i], close[t, i]]), axis=0)
    price = np.where(np.isfinite(price), price, 1000.0)
    shares = shares_out[i]
    eps_fc = price / 15.0
    eps_act = eps_fc * (1 + 0.1 * s)
    day64 = np.array(days, dtype="datetime64[D]")[t]
    # the period reported: the last calendar quarter ending at least 15 days before the
    # disclosure, in a fiscal year ending in March (Jun → 1Q, Sep → 2Q, Dec → 3Q, Mar → FY)
    q_month = (day64 - 15).astype("datetime64[M]").astype(int)
    per_end = (q_month - q_month % 3).astype("datetime64[M]").astype("datetime64[D]") - 1
    pe_month = per_end.astype("datetime64[M]").astype(int) % 12 + 1
    quarter = np.where(pe_month == 3, 4, pe_month // 3 - 1)
    q_scale = quarter / 4
    sales = eps_act * shares * 12 * q_scale
    pe_year = per_end.astype("datetime64[Y]").astype(int) + 1970
    fy_start_year = np.where(pe_month >= 4, pe_year, pe_year - 1)
    fy_start = np.array([f"{y}-04-01" for y in fy_start_year], dtype=object)
    fy_end = np.array([f"{y + 1}-03-31" for y in fy_start_year], dtype=object)
    disc_date = np.datetime_as_string(day64).astype(object)
    code = np.array(codes, dtype=object)[i]
    per = np.where(quarter == 4, "FY", np.char.add(quarter.astype(str), "Q")).astype(object)
    doc = np.where(quarter == 4, "FYFinancialStatements_Consolidated_JP",
                   np.char.add(quarter.astype(str), "QFinancialStatements_Consolidated_JP"))
    frame = pd.DataFrame({
        "DiscDate": disc_date, "DiscTime": d.time[ok], "Code": code,
        "DiscNo": np.char.add(np.char.replace(disc_date.astype(str), "-", ""),
                              np.char.zfill((i * 100 + k).astype(str), 7)).astype(object),
        "DocType": doc.astype(object), "CurPerType": per,
        "CurPerSt": fy_start, "CurPerEn": np.datetime_as_string(per_end).astype(object),
        "CurFYSt": fy_start, "CurFYEn": fy_end,
        "Sales": _fmt(sales), "OP": _fmt(sales * 0.08), "OdP": _fmt(sales * 0.085),
        "NP": _fmt(eps_act * shares * q_scale), "EPS": _fmt(eps_act * q_scale),
        "TA": _fmt(sales * 3), "Eq": _fmt(sales * 1.2), "BPS": _fmt(price / 1.3),
        "FSales": _fmt(sales / q_scale * (1 + 0.02 * s)),
        "FOP": _fmt(sales / q_scale * 0.08), "FOdP": _fmt(sales / q_scale * 0.085),
        "FNP": _fmt(eps_fc * shares * (1 + 0.05 * s)), "FEPS": _fmt(eps_fc * (1 + 0.05 * s)),
        "ShOutFY": _fmt(shares),
    })
    frame = frame.reindex(columns=FIN_SUMMARY_COLUMNS_V2, fill_value="")
    return frame.sort_values(["DiscDate", "Code"], kind="stable").reset_index(drop=True)


def _nth_trading_after(days: list[dt.date], after: dt.date, n: int) -> dt.date | None:
    k = bisect.bisect_right(days, after) + n - 1
    return days[k] if k < len(days) else None


def investor_frame(days: list[dt.date], mkt: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Weekly flows per section; foreigners lean with the week's market return."""
    weeks: dict[dt.date, list[int]] = {}
    for t, d in enumerate(days):
        weeks.setdefault(d - dt.timedelta(days=d.weekday()), []).append(t)
    rows = []
    for monday, idx in sorted(weeks.items()):
        friday = monday + dt.timedelta(days=4)
        pub = _nth_trading_after(days, friday, 4)
        if pub is None:
            continue
        wk_ret = float(mkt[idx].sum())
        for section in INVESTOR_SECTIONS:
            row: dict = {"PubDate": pub.isoformat(), "StDate": monday.isoformat(),
                         "EnDate": friday.isoformat(), "Section": section}
            tot = rng.uniform(1e11, 5e12, size=len(INVESTOR_GROUPS))
            noise = rng.normal(0, 0.02, size=len(INVESTOR_GROUPS))
            for g, gt, gn in zip(INVESTOR_GROUPS, tot, noise, strict=True):
                tilt = (0.3 if g == "Frgn" else -0.2 if g == "Ind" else 0.0) * wk_ret * 10
                bal = gt * (tilt + gn)
                row.update({f"{g}Sell": round((gt - bal) / 2), f"{g}Buy": round((gt + bal) / 2),
                            f"{g}Tot": round(gt), f"{g}Bal": round(bal)})
            rows.append(row)
    return pd.DataFrame(rows)


def margin_record_days(days: list[dt.date]) -> list[tuple[int, str]]:
    """``(index into days, PubDate)`` of every margin record the service has published by
    ``days[-1]``: weekly (each week's last trade date up to ``WEEKLY_UNTIL``, no PubDate,
    published per ``weekly_publication``), then daily (PubDate the next trade date)."""
    cal = TradingCalendar()
    out = []
    for t, d in enumerate(days):
        if d <= WEEKLY_UNTIL:
            week_end = t + 1 == len(days) or days[t + 1].isocalendar()[:2] != d.isocalendar()[:2]
            if week_end and weekly_publication(d, cal) <= days[-1]:
                out.append((t, ""))
        elif t + 1 < len(days):
            out.append((t, days[t + 1].isoformat()))
    return out


def margin_frame(days: list[dt.date], codes: list[str], listed: np.ndarray, vo: np.ndarray,
                 close: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Margin interest per listed code (``MKT_MARGIN_INTEREST_COLUMNS_V2``) in the two eras
    of ``gogooku3.jpx.margin``: weekly rows without ``PubDate`` and ``*Val``, then daily
    rows with both (values at the record date's close)."""
    from jquantsapi.constants import MKT_MARGIN_INTEREST_COLUMNS_V2

    N = listed.shape[1]
    code_arr = np.array(codes, dtype=object)
    parts = []
    for t, pub in margin_record_days(days):
        live = np.flatnonzero(listed[t])
        window = vo[max(0, t - 4): t + 1]
        avg = np.where(np.isnan(window), 0.0, window).mean(axis=0)
        shrt = (np.round(avg * rng.uniform(0.2, 1.5, N) / 100) * 100)[live]
        long_ = (np.round(avg * rng.uniform(1.0, 6.0, N) / 100) * 100)[live]
        vols = {"ShrtVol": shrt, "LongVol": long_,
                "ShrtNegVol": np.round(shrt * 0.3), "LongNegVol": np.round(long_ * 0.2),
                "ShrtStdVol": np.round(shrt * 0.7), "LongStdVol": np.round(long_ * 0.8)}
        part = pd.DataFrame({"PubDate": pub, "Date": days[t].isoformat(), "Code": code_arr[live],
                             "IssType": "2", **vols})
        if pub:  # daily era: balances in yen too
            price = np.nan_to_num(close[t, live])
            for name, v in vols.items():
                part[name.replace("Vol", "Val")] = np.round(v * price)
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return frame.reindex(columns=MKT_MARGIN_INTEREST_COLUMNS_V2)
