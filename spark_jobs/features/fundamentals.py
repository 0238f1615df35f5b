"""Margin and financial-statement features of a code, each as of its usable date (pandas).

Silver keys these tables by the first trade date their rows may be used on (``date``):
margin interest from the trade date after publication, statements from their effective
date (disclosed before that day's close). Every value here is taken *as of* that date:
a row on trade date ``T`` sees the code's latest source row with ``date <= T`` and
nothing later. Period dates (``as_of_date``, fiscal year end) never place a row in time.

* ``margin_features(keys, margin)`` — long/short margin ratio, week-on-week changes,
  long, short and net balance over the 20-row average raw volume (``_adv20`` of the
  per-code pass), and the age in days of the margin week.
* ``statement_features(keys, statements)`` — growth against the same period of the
  previous fiscal year (EPS, sales, operating profit), annualized ROE, progress of
  year-to-date results against the full-year forecast (and against the pace the quarter
  implies), revisions of the full-year forecast since the previous statement of the same
  fiscal year, days since disclosure.

Both are pure functions over pandas frames of any set of codes: the per-code pass
(``series``) calls them with its bucket's price rows and the bucket's source rows, so
the as-of step needs no join of the build's rows. Several source rows of one code and
date are ordered by their tie columns (``as_of_date``; ``disclosed_at, disc_no``) and the
greatest is the one seen. A code's values depend on its own rows only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MARGIN_FEATURES: list[str] = [
    "margin_ratio",
    "margin_long_chg_1w",
    "margin_short_chg_1w",
    "margin_long_to_adv20",
    "margin_short_to_adv20",
    "margin_net_to_adv20",
    "margin_age_days",
]
STATEMENT_FEATURES: list[str] = [
    "eps_growth_yoy",
    "sales_growth_yoy",
    "op_growth_yoy",
    "roe",
    "progress_sales",
    "progress_op",
    "progress_np",
    "progress_np_vs_pace",
    "forecast_eps_revision",
    "forecast_sales_revision",
    "days_since_disclosure",
]
#: the source columns each kernel reads (besides ``code`` and ``date``)
MARGIN_COLUMNS: list[str] = ["as_of_date", "long_volume", "short_volume"]
STATEMENT_COLUMNS: list[str] = (
    "disc_no disclosed_at disc_date period_type fiscal_year_end eps sales operating_profit "
    "net_income equity forecast_sales forecast_operating_profit forecast_net_income forecast_eps"
).split()

_QUARTER = {"1Q": 1.0, "2Q": 2.0, "3Q": 3.0, "FY": 4.0}


def _num(df: pd.DataFrame, col: str) -> np.ndarray:
    return pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _day(values) -> pd.Series:
    """Dates (``datetime.date``, Timestamps or None) as ``datetime64[ns]`` (NaT for None)."""
    return pd.to_datetime(pd.Series(values), errors="coerce").dt.tz_localize(None)


def _where(cond: np.ndarray, value: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cond, value, np.nan)


def _growth(now: np.ndarray, before: np.ndarray) -> np.ndarray:
    """Relative change ``(now - before) / |before|`` (sign-correct for negative bases)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(before != 0, (now - before) / np.abs(before), np.nan)


def _as_of(keys: pd.DataFrame, events: pd.DataFrame, ties: list[str]) -> pd.DataFrame:
    """For each row of ``keys`` (``code``, ``date``), the columns of the latest ``events``
    row of its code with ``date <= keys.date`` (the greatest ``ties`` among one date's
    rows); all-NaN where there is none. The result is aligned with ``keys``."""
    left = pd.DataFrame({"code": keys["code"].to_numpy(), "_t": _day(keys["date"]).to_numpy(),
                         "_pos": np.arange(len(keys))})
    ev = events.assign(_t=_day(events["date"]).to_numpy())
    ev = ev.sort_values(["_t", *ties], kind="stable").drop_duplicates(["code", "_t"], keep="last")
    got = pd.merge_asof(left.sort_values("_t", kind="stable"), ev.drop(columns="date"), on="_t",
                        by="code", direction="backward", allow_exact_matches=True)
    return got.sort_values("_pos").reset_index(drop=True)


#: "1w" margin changes compare with the code's latest record dated at least this many
#: calendar days earlier: the previous week's record in the weekly era (records 6-8 days
#: apart), the record about a week back in the daily era (from 2026-09-25)
WEEK_BACK_DAYS = 6


def _week_back(m: pd.DataFrame) -> pd.DataFrame:
    """For each row of ``m`` (``code``, ``_asof``, balances), the balances of the code's
    latest record with ``_asof <= row._asof - WEEK_BACK_DAYS`` (NaN where there is none)
    as ``prev_long``/``prev_short``, aligned with ``m``."""
    keys = pd.DataFrame({"code": m["code"].to_numpy(),
                         "date": m["_asof"] - pd.Timedelta(days=WEEK_BACK_DAYS)})
    records = pd.DataFrame({"code": m["code"].to_numpy(), "date": m["_asof"].to_numpy(),
                            "prev_long": m["long_volume"].to_numpy(),
                            "prev_short": m["short_volume"].to_numpy()})
    return _as_of(keys, records, [])[["prev_long", "prev_short"]]


def margin_features(keys: pd.DataFrame, margin: pd.DataFrame) -> dict[str, np.ndarray]:
    """``MARGIN_FEATURES`` for the rows of ``keys`` (``date``, ``code``, ``_adv20``) from
    ``margin`` (``silver.margin_interest`` rows of the same codes: ``code``, ``date``,
    ``MARGIN_COLUMNS``), aligned with ``keys``.

    Week-on-week changes compare with the code's latest record dated
    ``WEEK_BACK_DAYS`` or more before (published no later, so also usable by then). ``_adv20`` is the average raw volume of
    the code's last 20 rows up to ``T`` (margin balances are raw shares too).
    """
    m = margin[["code", "date", *MARGIN_COLUMNS]].copy()
    m["_asof"] = _day(m["as_of_date"]).to_numpy()
    m = m.assign(_t=_day(m["date"]).to_numpy()).sort_values(["code", "_t", "_asof"], kind="stable")
    m = m.reset_index(drop=True)
    prev = _week_back(m)
    m["prev_long"], m["prev_short"] = prev["prev_long"].to_numpy(), prev["prev_short"].to_numpy()
    got = _as_of(keys, m.drop(columns="_t"), ["_asof"])
    lv, sv = _num(got, "long_volume"), _num(got, "short_volume")
    pl, ps = _num(got, "prev_long"), _num(got, "prev_short")
    adv = keys["_adv20"].to_numpy(dtype=float, na_value=np.nan)
    age = (_day(keys["date"]).to_numpy() - got["_asof"].to_numpy()) / np.timedelta64(1, "D")
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "margin_ratio": _where(sv > 0, lv / sv),
            "margin_long_chg_1w": _where(pl > 0, lv / pl - 1),
            "margin_short_chg_1w": _where(ps > 0, sv / ps - 1),
            "margin_long_to_adv20": _where(adv > 0, lv / adv),
            "margin_short_to_adv20": _where(adv > 0, sv / adv),
            "margin_net_to_adv20": _where(adv > 0, (lv - sv) / adv),
            "margin_age_days": np.asarray(age, dtype=float),
        }


def statement_metrics(statements: pd.DataFrame) -> pd.DataFrame:
    """One row per statement (``code``, ``date``, ties, ``disc_date``) with the
    ``STATEMENT_FEATURES`` that depend on it alone or on the code's earlier statements
    (all usable on or before its own ``date``)."""
    order = ["code", "_t", "_at", "disc_no"]
    s = statements[["code", "date", *STATEMENT_COLUMNS]].copy()
    s["_t"], s["_at"] = _day(s["date"]).to_numpy(), _day(s["disclosed_at"]).to_numpy()
    s["_fye"] = _day(s["fiscal_year_end"]).to_numpy()
    s = s.sort_values(order, kind="stable").reset_index(drop=True)
    # the same period of the previous fiscal year, usable by this statement's date: the latest
    prev = s[s["period_type"].notna() & s["_fye"].notna()]
    prev = pd.DataFrame({"code": prev["code"], "period_type": prev["period_type"],
                         "_fye": prev["_fye"], "_t": prev["_t"],
                         "p_eps": prev["eps"], "p_sales": prev["sales"],
                         "p_op": prev["operating_profit"]})
    left = s[["code", "period_type", "_fye", "_t"]].assign(_pos=np.arange(len(s)))
    left = left[left["period_type"].notna() & left["_fye"].notna()]
    left = left.assign(_fye=left["_fye"] - pd.DateOffset(months=12))
    pair = pd.merge_asof(left.sort_values("_t", kind="stable"),
                         prev.sort_values("_t", kind="stable"), on="_t",
                         by=["code", "period_type", "_fye"], direction="backward")
    partner = pd.DataFrame(index=range(len(s)), columns=["p_eps", "p_sales", "p_op"],
                           dtype=float)
    partner.iloc[pair["_pos"].to_numpy()] = pair[["p_eps", "p_sales", "p_op"]].to_numpy(float)
    # the previous statement of the same fiscal year (forecast revisions)
    same_fy = s.groupby(["code", "_fye"], sort=False, dropna=False)[
        ["forecast_eps", "forecast_sales"]].shift(1)
    v = {c: _num(s, c) for c in ("eps", "sales", "operating_profit", "net_income", "equity",
                                 "forecast_sales", "forecast_operating_profit",
                                 "forecast_net_income", "forecast_eps")}
    q = s["period_type"].map(_QUARTER).to_numpy(dtype=float, na_value=np.nan)
    p_eps, p_sales, p_op = (partner[c].to_numpy(float) for c in ("p_eps", "p_sales", "p_op"))
    with np.errstate(invalid="ignore", divide="ignore"):
        progress_np = _where(v["forecast_net_income"] != 0, v["net_income"] / v["forecast_net_income"])
        metrics = {
            "eps_growth_yoy": _growth(v["eps"], p_eps),
            "sales_growth_yoy": _where(p_sales > 0, v["sales"] / p_sales - 1),
            "op_growth_yoy": _growth(v["operating_profit"], p_op),
            "roe": _where(v["equity"] > 0, v["net_income"] * 4 / q / v["equity"]),
            "progress_sales": _where(v["forecast_sales"] != 0, v["sales"] / v["forecast_sales"]),
            "progress_op": _where(v["forecast_operating_profit"] != 0,
                                  v["operating_profit"] / v["forecast_operating_profit"]),
            "progress_np": progress_np,
            "progress_np_vs_pace": progress_np / (q / 4),
            "forecast_eps_revision": _growth(v["forecast_eps"], _num(same_fy, "forecast_eps")),
            "forecast_sales_revision": _growth(v["forecast_sales"],
                                               _num(same_fy, "forecast_sales")),
        }
    return pd.DataFrame({"code": s["code"], "date": s["date"], "_at": s["_at"],
                         "disc_no": s["disc_no"], "disc_date": s["disc_date"], **metrics})


def statement_features(keys: pd.DataFrame, statements: pd.DataFrame) -> dict[str, np.ndarray]:
    """``STATEMENT_FEATURES`` for the rows of ``keys`` (``date``, ``code``) from the code's
    latest statement usable on each date, aligned with ``keys``. ``statements`` holds
    ``silver.fins_statements`` rows (``code``, ``date`` = effective trade date,
    ``STATEMENT_COLUMNS``) from at least a year and a quarter before the first key, so
    that year-on-year partners and the latest statement are present;
    ``days_since_disclosure`` counts calendar days from ``disc_date``."""
    got = _as_of(keys, statement_metrics(statements), ["_at", "disc_no"])
    out = {c: _num(got, c) for c in STATEMENT_FEATURES if c != "days_since_disclosure"}
    since = _day(keys["date"]).to_numpy() - _day(got["disc_date"]).to_numpy()
    out["days_since_disclosure"] = np.asarray(since / np.timedelta64(1, "D"), dtype=float)
    return out
