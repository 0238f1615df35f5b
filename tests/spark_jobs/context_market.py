"""The hand-built market of the context-feature tests: 12 codes over the first eight months
of 2024 with a halt, a sector move, weekly flows, margin and statements (each builder can
change everything after ``CUT``), and the pandas references the tests compare with."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa

from gogooku3.jpx.calendar import offline_trading_days
from gogooku3.lake import catalog

DAYS = offline_trading_days(dt.date(2024, 1, 4), dt.date(2024, 8, 30))
T = len(DAYS)
CODES = [f"{1301 + i}0" for i in range(12)]
N = len(CODES)
CUT = DAYS[100]  # point-in-time checks: nothing after CUT may change rows <= CUT
HALT = (0, 50)  # (code index, day index) without a trade


# ---- the hand-built market -----------------------------------------------------------


def hand_market(seed: int = 42, perturb_after: int | None = None):
    rng = np.random.default_rng(seed)
    m = rng.normal(0.0003, 0.01, T)
    fac = rng.normal(0, 0.01, (T, 3))
    beta = rng.uniform(0.5, 1.6, N)
    r = beta * m[:, None] + fac[:, np.arange(N) % 3] + rng.normal(0, 0.01, (T, N))
    if perturb_after is not None:  # a different future: every value after the cut changes
        later = np.arange(T) > perturb_after
        alt = np.random.default_rng(seed + 1)
        m = np.where(later, alt.normal(0, 0.03, T), m)
        r = np.where(later[:, None], alt.normal(0, 0.05, (T, N)), r)
    topix_close = 2000 * np.cumprod(1 + m)
    adj = 100 * np.cumprod(1 + r, axis=0)
    vol = np.round(rng.uniform(1e4, 1e5, (T, N)))
    if perturb_after is not None:
        vol = np.where((np.arange(T) > perturb_after)[:, None], vol * 3, vol)
    adj[HALT[1], HALT[0]] = np.nan
    vol[HALT[1], HALT[0]] = np.nan
    tt, ii = np.indices((T, N)).reshape(2, -1)
    prices = pd.DataFrame({
        "date": [DAYS[t] for t in tt], "code": [CODES[i] for i in ii],
        "adj_close": adj[tt, ii], "volume": vol[tt, ii],
    })
    topix = pd.DataFrame({"date": DAYS, "close": topix_close})
    return prices, topix


def base_rows(prices: pd.DataFrame) -> pd.DataFrame:
    """Full silver.equities_prices_daily rows from date/code/adj_close/volume."""
    c = prices["adj_close"]
    return pd.DataFrame({
        "date": prices["date"], "code": prices["code"], "open": c, "high": c * 1.01,
        "low": c * 0.99, "close": c, "volume": prices["volume"], "turnover": prices["volume"] * c,
        "adj_factor": 1.0, "adj_open": c, "adj_high": c * 1.01, "adj_low": c * 0.99,
        "adj_close": c, "adj_volume": prices["volume"], "upper_limit_hit": False,
        "lower_limit_hit": False, "is_traded": c.notna(), "cum_adj_factor": 1.0,
    })


def _plain(v):
    if isinstance(v, float) and np.isnan(v):
        return None
    return v.to_pydatetime() if isinstance(v, pd.Timestamp) else v


def to_arrow(pdf: pd.DataFrame, table: str) -> pa.Table:
    """``pdf`` as the silver table's rows (its catalogue schema)."""
    spec = catalog.table(table)
    rows = [tuple(_plain(v) for v in row)
            for row in pdf.reindex(columns=spec.column_names).itertuples(index=False, name=None)]
    return pa.Table.from_pylist([dict(zip(spec.column_names, r, strict=True)) for r in rows],
                                schema=spec.arrow_schema())


def master_rows(cut_change: bool = False) -> pd.DataFrame:
    rows = []
    for i, code in enumerate(CODES):
        sec = f"S{i % 3}"
        if i == 4:  # moves from S1 to S2 on day 70
            rows.append((code, DAYS[0], DAYS[70], sec))
            rows.append((code, DAYS[70], None, "S2"))
        elif i == 7:  # listed in the master only from day 20
            rows.append((code, DAYS[20], None, sec))
        else:
            rows.append((code, DAYS[0], None, sec))
    if cut_change:  # a sector change recorded after the cut
        rows = [r for r in rows if r[0] != CODES[5]]
        rows += [(CODES[5], DAYS[0], DAYS[101], "S2"), (CODES[5], DAYS[101], None, "S0")]
    return pd.DataFrame(rows, columns=["code", "valid_from", "valid_to", "sector33_code"]).assign(
        company_name="x", sector17_code="1", sector33_name="x", market_code="0111",
        scale_category="-")


def flow_rows(perturb: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    rows = []
    # weekly, usable every 5 trade dates from day 2; plus 20 earlier weeks before the frame
    usable = [DAYS[0] - dt.timedelta(days=7 * k) for k in range(20, 0, -1)] + DAYS[2::5]
    for d in usable:
        for section in ("TSEPrime", "TSEStandard", "TSEGrowth"):
            scale = 3.0 if perturb and d > CUT else 1.0
            rows.append({
                "date": d, "section": section, "start_date": d - dt.timedelta(days=12),
                "end_date": d - dt.timedelta(days=8),
                "foreign_balance": rng.normal(0, 1e9) * scale,
                "individual_balance": rng.normal(0, 1e9), "proprietary_balance": rng.normal(0, 1e9),
                "trust_bank_balance": rng.normal(0, 1e9),
                "investment_trust_balance": rng.normal(0, 1e9),
                "total_turnover": rng.uniform(1e11, 2e11), "published_date": d - dt.timedelta(days=1),
            })
    # a second week that becomes usable on the same date as an earlier one: the later week wins
    extra = dict(rows[-30], start_date=rows[-30]["start_date"] + dt.timedelta(days=7),
                 foreign_balance=5e9)
    rows.append(extra)
    return pd.DataFrame(rows)


def margin_rows(perturb: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(9)
    rows = []
    for i, code in enumerate(CODES):
        for t in range(3 + i % 2, T, 5):
            lv, sv = rng.uniform(1e4, 5e4), rng.uniform(1e3, 2e4)
            if perturb and DAYS[t] > CUT:
                lv, sv = lv * 7, sv * 0.1
            rows.append({"date": DAYS[t], "code": code, "as_of_date": DAYS[t - 3],
                         "short_volume": 0.0 if (i == 2 and t == 13) else sv,
                         "long_volume": lv, "published_date": DAYS[t - 1]})
    return pd.DataFrame(rows)


def statement_rows(perturb: bool = False) -> pd.DataFrame:
    """Quarterly statements for every code over two fiscal years (FY ending in March)."""
    rng = np.random.default_rng(11)
    rows = []
    periods = [(p, fy) for fy in (2023, 2024) for p in ("1Q", "2Q", "3Q", "FY")] + [("1Q", 2025)]
    first = dt.date(2022, 8, 8)
    sessions = set(offline_trading_days(dt.date(2022, 1, 4), dt.date(2025, 12, 30)))
    for i, code in enumerate(CODES):
        for k, (per, fy) in enumerate(periods):
            d = first + dt.timedelta(days=91 * k + 3 * i)
            while d not in sessions:  # silver's date is always a trade date
                d += dt.timedelta(days=1)
            q = {"1Q": 1, "2Q": 2, "3Q": 3, "FY": 4}[per]
            eps = rng.normal(20, 8) * q
            sales = rng.uniform(1e9, 2e9) * q
            if perturb and d > CUT:
                eps, sales = -eps * 5, sales * 9
            rows.append({
                "date": d, "code": code, "disc_no": f"{d:%Y%m%d}{i:03d}{k}",
                "disclosed_at": pd.Timestamp(d, tz="UTC"), "doc_type": "x", "period_type": per,
                "fiscal_year_end": dt.date(fy, 3, 31), "sales": sales,
                "operating_profit": sales * 0.1, "ordinary_profit": sales * 0.11,
                "net_income": sales * 0.06, "eps": eps, "total_assets": 1e10,
                "equity": rng.uniform(4e9, 6e9), "bps": 900.0,
                "forecast_sales": rng.uniform(5e9, 7e9), "forecast_operating_profit": 6e8,
                "forecast_net_income": rng.uniform(3e8, 4e8), "forecast_eps": rng.uniform(60, 90),
                "disc_date": d, "shares_outstanding": 1e7,
            })
    # a correction disclosed later the same effective day: it must win over the original
    corr = dict(rows[3], disc_no=rows[3]["disc_no"] + "b", eps=rows[3]["eps"] + 11,
                disclosed_at=rows[3]["disclosed_at"] + pd.Timedelta(hours=1))
    rows.append(corr)
    return pd.DataFrame(rows)



# ---- reference computations ----------------------------------------------------------


def wide(prices: pd.DataFrame, col: str = "adj_close") -> pd.DataFrame:
    return prices.pivot(index="date", columns="code", values=col).loc[DAYS, CODES]


def ref_returns(prices: pd.DataFrame, n: int) -> pd.DataFrame:
    px = wide(prices)
    return px / px.ffill().shift(n) - 1


def long(frame: pd.DataFrame, name: str) -> pd.Series:
    s = frame.stack(future_stack=True)
    s.index.names = ["date", "code"]
    return s.rename(name)


def check(got: pd.DataFrame, expected: dict[str, pd.Series], rtol: float = 1e-9) -> None:
    got = got.set_index(["date", "code"]).sort_index()
    for name, exp in expected.items():
        exp = exp.reindex(got.index)
        g, e = got[name].to_numpy(dtype=float), exp.to_numpy(dtype=float)
        assert np.array_equal(np.isnan(g), np.isnan(e)), f"{name}: null pattern differs"
        np.testing.assert_allclose(g, e, rtol=rtol, atol=1e-12, err_msg=name)


def frame(sdf) -> pd.DataFrame:
    return sdf.toPandas()


def sector_membership(master: pd.DataFrame) -> pd.DataFrame:
    """Each (day, code)'s sector as of that day (None: no master row valid that day)."""
    member = pd.DataFrame(None, index=DAYS, columns=CODES, dtype=object)
    for _, row in master.iterrows():
        for d in DAYS:
            if row.valid_from <= d and (row.valid_to is None or d < row.valid_to):
                member.loc[d, row.code] = row.sector33_code
    return member
