"""Context feature groups (market, sector, flows, margin, statements, peers) against direct
numpy/pandas computations on a small hand-built market, plus point-in-time checks."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from gogooku3.jpx.calendar import TradingCalendar, offline_trading_days
from gogooku3.lake import catalog
from spark_jobs import build_features
from spark_jobs.features import flows, fundamentals, market, peers, sector, series
from spark_jobs.features.handoff import Handoff
from spark_jobs.features.inputs import BuildInputs
from spark_jobs.features.sessions import CALENDAR_ANCHOR, day64

pytestmark = pytest.mark.spark

DAYS = offline_trading_days(dt.date(2024, 1, 4), dt.date(2024, 8, 30))
T = len(DAYS)
CODES = [f"{1301 + i}0" for i in range(12)]
N = len(CODES)
CUT = DAYS[100]  # point-in-time checks: nothing after CUT may change rows <= CUT
HALT = (0, 50)  # (code index, day index) without a trade


# ---- the hand-built market -----------------------------------------------------------


def _market(seed: int = 42, perturb_after: int | None = None):
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


def _base_rows(prices: pd.DataFrame) -> pd.DataFrame:
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


def _master(cut_change: bool = False) -> pd.DataFrame:
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


def _flows(perturb: bool = False) -> pd.DataFrame:
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


def _margin(perturb: bool = False) -> pd.DataFrame:
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


def _statements(perturb: bool = False) -> pd.DataFrame:
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


@pytest.fixture(scope="module")
def pdata():
    prices, topix = _market()
    return {"prices": prices, "topix": topix, "master": _master(), "flows": _flows(),
            "margin": _margin(), "statements": _statements()}


@pytest.fixture(scope="module")
def sdata(pdata):
    return {
        "prices": to_arrow(_base_rows(pdata["prices"]), "silver.equities_prices_daily"),
        "topix": pdata["topix"],
        "margin": to_arrow(pdata["margin"], "silver.margin_interest"),
        "statements": to_arrow(pdata["statements"], "silver.fins_statements"),
    }


@pytest.fixture(scope="module")
def handoff(tmp_path_factory):
    return Handoff(str(tmp_path_factory.mktemp("handoff")))


@pytest.fixture(scope="module")
def ser(spark, sdata, handoff):
    """The build's per-code pass over every row: its trailing returns (computed and
    cached), its series and as-of features written to ``handoff`` (one period)."""
    sources = {"margin": sdata["margin"], "statements": sdata["statements"]}
    returns = series.series_features(spark, sdata["prices"], market.market_series(sdata["topix"]),
                                     DAYS, DAYS[0], DAYS[0], handoff,
                                     dict.fromkeys(DAYS, DAYS[0]), sources).cache()
    returns.count()
    return returns


@pytest.fixture(scope="module")
def per_code(ser, handoff) -> pd.DataFrame:
    """The per-code features the pass wrote (every row is in range)."""
    return handoff.read(DAYS[0]).to_pandas()


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


# ---- market --------------------------------------------------------------------------


def test_market_features_match_numpy(per_code, pdata):
    got = per_code[["date", "code", *market.FEATURES]]
    assert len(got) == T * N and set(market.FEATURES) <= set(got.columns)
    tp = pdata["topix"].set_index("date")["close"]
    mret = {n: tp / tp.shift(n) - 1 for n in (1, 5, 20)}
    r1, r5 = ref_returns(pdata["prices"], 1), ref_returns(pdata["prices"], 5)
    beta, corr, idio = (np.full((T, N), np.nan) for _ in range(3))
    for j, code in enumerate(CODES):
        for t in range(T):
            y = r1[code].to_numpy()[max(0, t - 59): t + 1]
            x = mret[1].to_numpy()[max(0, t - 59): t + 1]
            ok = np.isfinite(x) & np.isfinite(y)
            if ok.sum() < 40:
                continue
            x, y = x[ok], y[ok]
            b = np.cov(y, x, ddof=1)[0, 1] / np.var(x, ddof=1)
            beta[t, j] = b
            corr[t, j] = np.corrcoef(x, y)[0, 1]
            slope, icpt = np.polyfit(x, y, 1)
            idio[t, j] = np.sqrt(((y - icpt - slope * x) ** 2).sum() / (len(x) - 2))
    beta, corr, idio = (pd.DataFrame(a, index=DAYS, columns=CODES) for a in (beta, corr, idio))
    bcast = lambda s: pd.DataFrame({c: s for c in CODES})  # noqa: E731
    px = wide(pdata["prices"])
    expected = {
        "mkt_ret_1d": long(bcast(mret[1]), "x"),
        "mkt_ret_5d": long(bcast(mret[5]), "x"),
        "mkt_ret_20d": long(bcast(mret[20]), "x"),
        "mkt_vol_20d": long(bcast(mret[1].rolling(20, min_periods=20).std()), "x"),
        "beta_60d": long(beta, "x"),
        "corr_mkt_60d": long(corr, "x"),
        "idio_vol_60d": long(idio, "x"),
        "alpha_1d": long(r1 - beta * bcast(mret[1]), "x"),
        "alpha_5d": long(r5 - beta * bcast(mret[5]), "x"),
        "rel_strength_20d": long(np.log(px / px.ffill().shift(20)) - bcast(np.log(tp / tp.shift(20))), "x"),
        "rel_strength_60d": long(np.log(px / px.ffill().shift(60)) - bcast(np.log(tp / tp.shift(60))), "x"),
    }
    check(got, expected, rtol=1e-8)
    # the halted day has no stock return and no alpha, but the market columns are there
    halted = got[(got["code"] == CODES[HALT[0]]) & (got["date"] == DAYS[HALT[1]])].iloc[0]
    assert np.isnan(halted["alpha_1d"]) and np.isfinite(halted["mkt_ret_1d"])


# ---- sector --------------------------------------------------------------------------


def test_sector_features_use_membership_as_of_each_date(pdata, ser):
    master = pdata["master"]
    returns = frame(ser).sample(frac=1.0, random_state=3)  # any row order
    stats = sector.sector_stats(returns.assign(sector=sector.membership(
        returns["date"].to_numpy(), returns["code"].to_numpy(), master)))
    columns = sector.sector_features(returns, stats, master)
    assert list(columns) == sector.FEATURES
    got = returns[["date", "code"]].assign(**columns)
    assert len(got) == T * N
    member = _member(master)
    assert member.loc[DAYS[69], CODES[4]] == "S1" and member.loc[DAYS[70], CODES[4]] == "S2"
    rets = {h: ref_returns(pdata["prices"], h) for h in (1, 5, 20)}
    exp = {f"sector_ret_{h}d": pd.DataFrame(np.nan, index=DAYS, columns=CODES) for h in (1, 5, 20)}
    exp.update({k: pd.DataFrame(np.nan, index=DAYS, columns=CODES)
                for k in ("sector_breadth_1d", "sector_mom_60d", "sector_vol_20d")})
    sectors = sorted(set(master["sector33_code"]))
    series = {}
    for s in sectors:
        mask = member == s
        daily = pd.DataFrame({h: rets[h].where(mask).mean(axis=1) for h in (1, 5, 20)})
        r1 = rets[1].where(mask)
        daily["breadth"] = (r1 > 0).astype(float).where(r1.notna()).mean(axis=1)
        daily["mom"] = np.log1p(daily[1]).rolling(60, min_periods=40).sum()
        daily["vol"] = daily[1].rolling(20, min_periods=20).std()
        series[s] = daily
    for d in DAYS:
        for c in CODES:
            s = member.loc[d, c]
            if pd.isna(s):
                continue
            for h in (1, 5, 20):
                exp[f"sector_ret_{h}d"].loc[d, c] = series[s].loc[d, h]
            exp["sector_breadth_1d"].loc[d, c] = series[s].loc[d, "breadth"]
            exp["sector_mom_60d"].loc[d, c] = series[s].loc[d, "mom"]
            exp["sector_vol_20d"].loc[d, c] = series[s].loc[d, "vol"]
    expected = {k: long(v.astype(float), k) for k, v in exp.items()}
    for h in (1, 5, 20):
        expected[f"ret_{h}d_vs_sector"] = long(rets[h] - exp[f"sector_ret_{h}d"].astype(float), "x")
    check(got, expected)
    before_listing = got[(got["code"] == CODES[7]) & (got["date"] < DAYS[20])]
    assert before_listing["sector_ret_1d"].isna().all()


# ---- flows, margin, statements ---------------------------------------------------------


def test_flow_features_take_the_latest_publication_usable_on_each_date(pdata):
    daily = flows.flow_daily(pdata["flows"], DAYS)
    got = pd.DataFrame({"date": np.repeat(DAYS, N), "code": CODES * T})
    found = daily.reindex(day64(got["date"].to_numpy()))
    got = got.assign(**{c: found[c].to_numpy() for c in flows.FEATURES})
    f = pdata["flows"]
    weekly = f.groupby(["date", "start_date"], as_index=False).agg(
        published_date=("published_date", "max"), tot=("total_turnover", "sum"),
        **{g: (f"{g}_balance", "sum") for g in
           ("foreign", "individual", "proprietary", "trust_bank", "investment_trust")})
    weekly = weekly.sort_values(["date", "start_date"]).reset_index(drop=True)
    for g in ("foreign", "individual", "proprietary", "trust_bank", "investment_trust"):
        weekly[f"flow_{g}_net_ratio"] = weekly[g] / weekly["tot"]
    for g in ("foreign", "individual"):
        x = weekly[f"flow_{g}_net_ratio"]
        roll = x.rolling(52, min_periods=13)
        weekly[f"flow_{g}_net_z"] = (x - roll.mean()) / roll.std()
    weekly["flow_foreign_minus_individual"] = (
        weekly["flow_foreign_net_ratio"] - weekly["flow_individual_net_ratio"])
    left = pd.DataFrame({"date": pd.to_datetime(DAYS)})
    right = weekly.assign(date=pd.to_datetime(weekly["date"]))
    per_date = pd.merge_asof(left, right, on="date", direction="backward")
    per_date["flow_days_since_pub"] = (
        per_date["date"] - pd.to_datetime(per_date["published_date"])).dt.days
    per_date["date"] = per_date["date"].dt.date
    per_date = per_date.set_index("date")
    expected = {c: long(pd.DataFrame({code: per_date[c] for code in CODES}), c)
                for c in flows.FEATURES}
    check(got, expected)
    # the day before a publication becomes usable still shows the previous week
    d = DAYS[7]
    row = got[(got["date"] == d) & (got["code"] == CODES[0])].iloc[0]
    assert row["flow_days_since_pub"] == (d - (DAYS[7] - dt.timedelta(days=1))).days
    assert got[got["date"] == DAYS[6]]["flow_days_since_pub"].iloc[0] == (
        DAYS[6] - (DAYS[2] - dt.timedelta(days=1))).days


def test_margin_features_as_of_usable_date_per_code(pdata, per_code):
    got = per_code[["date", "code", *fundamentals.MARGIN_FEATURES]]
    m = pdata["margin"].sort_values(["code", "date", "as_of_date"]).copy()
    m["prev_long"] = m.groupby("code")["long_volume"].shift()
    m["prev_short"] = m.groupby("code")["short_volume"].shift()
    adv = wide(pdata["prices"], "volume").rolling(20, min_periods=1).mean()
    left = long(adv, "adv").reset_index()
    left["date"] = pd.to_datetime(left["date"])
    m["date"] = pd.to_datetime(m["date"])
    j = pd.merge_asof(left.sort_values("date"), m.sort_values("date"), on="date", by="code",
                      direction="backward")
    lv, sv = j["long_volume"], j["short_volume"]
    j["margin_ratio"] = (lv / sv).where(sv > 0)
    j["margin_long_chg_1w"] = (lv / j["prev_long"] - 1).where(j["prev_long"] > 0)
    j["margin_short_chg_1w"] = (sv / j["prev_short"] - 1).where(j["prev_short"] > 0)
    j["margin_long_to_adv20"] = lv / j["adv"]
    j["margin_short_to_adv20"] = sv / j["adv"]
    j["margin_net_to_adv20"] = (lv - sv) / j["adv"]
    j["margin_age_days"] = (j["date"] - pd.to_datetime(j["as_of_date"])).dt.days
    j["date"] = j["date"].dt.date
    j = j.set_index(["date", "code"])
    check(got, {c: j[c] for c in fundamentals.MARGIN_FEATURES})
    # short balance of zero: no ratio rather than infinity
    zero = got[(got["code"] == CODES[2]) & (got["date"] == DAYS[13])].iloc[0]
    assert np.isnan(zero["margin_ratio"]) and np.isfinite(zero["margin_long_to_adv20"])


def _ref_statement_metrics(st: pd.DataFrame) -> pd.DataFrame:
    st = st.sort_values(["code", "date", "disclosed_at", "disc_no"]).reset_index(drop=True)
    q = st["period_type"].map({"1Q": 1, "2Q": 2, "3Q": 3, "FY": 4})
    out = []
    for i, s in st.iterrows():
        prev_year = st[(st.code == s.code) & (st.period_type == s.period_type)
                       & (st.fiscal_year_end == dt.date(s.fiscal_year_end.year - 1, 3, 31))
                       & (st.date <= s.date)]
        p = prev_year.iloc[-1] if len(prev_year) else None
        same_fy = st.iloc[:i][(st.iloc[:i].code == s.code)
                             & (st.iloc[:i].fiscal_year_end == s.fiscal_year_end)]
        pf = same_fy.iloc[-1] if len(same_fy) else None
        grow = lambda a, b: (a - b) / abs(b) if b is not None and b != 0 else np.nan  # noqa: E731
        out.append({
            "code": s.code, "date": s.date, "disclosed_at": s.disclosed_at, "disc_no": s.disc_no,
            "disc_date": s.disc_date,
            "eps_growth_yoy": grow(s.eps, None if p is None else p.eps),
            "sales_growth_yoy": np.nan if p is None else s.sales / p.sales - 1,
            "op_growth_yoy": grow(s.operating_profit, None if p is None else p.operating_profit),
            "roe": s.net_income * 4 / q[i] / s.equity,
            "progress_sales": s.sales / s.forecast_sales,
            "progress_op": s.operating_profit / s.forecast_operating_profit,
            "progress_np": s.net_income / s.forecast_net_income,
            "progress_np_vs_pace": s.net_income / s.forecast_net_income / (q[i] / 4),
            "forecast_eps_revision": grow(s.forecast_eps, None if pf is None else pf.forecast_eps),
            "forecast_sales_revision": grow(s.forecast_sales,
                                            None if pf is None else pf.forecast_sales),
        })
    return pd.DataFrame(out)


def test_statement_features_as_of_effective_date(pdata, per_code):
    got = per_code[["date", "code", *fundamentals.STATEMENT_FEATURES]]
    ref = _ref_statement_metrics(pdata["statements"])
    ref = ref.sort_values(["date", "disclosed_at", "disc_no"])
    ref["date"] = pd.to_datetime(ref["date"])
    left = pd.DataFrame({"date": pd.to_datetime([d for d in DAYS for _ in CODES]),
                         "code": CODES * T})
    j = pd.merge_asof(left.sort_values("date"), ref, on="date", by="code", direction="backward")
    j["days_since_disclosure"] = (j["date"] - pd.to_datetime(j["disc_date"])).dt.days
    j["date"] = j["date"].dt.date
    j = j.set_index(["date", "code"])
    check(got, {c: j[c] for c in fundamentals.STATEMENT_FEATURES})
    # a statement effective on trade date D is used on D, not before
    st = pdata["statements"]
    s = st[(st.code == CODES[1]) & (st.date > DAYS[10]) & (st.date < DAYS[-10])].iloc[0]
    on = got[(got.code == CODES[1]) & (got.date == s.date)].iloc[0]
    before = got[(got.code == CODES[1]) & (got.date < s.date)].iloc[-1]
    assert on["days_since_disclosure"] == 0 and before["days_since_disclosure"] > 0
    # year-on-year growth is present once the previous fiscal year's quarter exists
    assert got["eps_growth_yoy"].notna().any()


# ---- peers ---------------------------------------------------------------------------


def _ref_graph(r: pd.DataFrame, snap: dt.date, k: int, window: int) -> pd.DataFrame:
    """Top-k correlation peers from the wide ``r`` (days x codes) of the window ending at
    ``snap``."""
    pos = DAYS.index(snap)
    win = r.iloc[pos - window + 1: pos + 1]
    win = win.loc[:, win.notna().sum() >= window * 3 // 4]
    x = win - win.mean()
    x = x.fillna(0.0).to_numpy()
    c = (x.T @ x) / np.outer(np.sqrt((x * x).sum(0)), np.sqrt((x * x).sum(0)))
    codes = list(win.columns)
    rows = []
    for a, code in enumerate(codes):
        cand = sorted((-c[a, b], codes[b]) for b in range(len(codes)) if b != a)[:k]
        rows += [(snap, code, p, rank + 1, -v) for rank, (v, p) in enumerate(cand)]
    return pd.DataFrame(rows, columns=["date", "code", "peer_code", "rank", "corr"])


def _graph(ser, days, **kw) -> pd.DataFrame:
    """The graph with no sector known: returns relative to each day's mean of all codes."""
    returns = ser.select("date", "code", "_r1").toArrow()
    snaps = peers.peer_graph(returns.append_column("sector", pa.nulls(len(returns), pa.string())),
                             days, **kw)
    return pa.concat_tables(snaps.values()).to_pandas()


def test_peer_graph_neighbours_match_numpy_correlation_ranking(ser, pdata):
    graph = _graph(ser, DAYS, k=3, window=20, cadence=10)
    r1 = ref_returns(pdata["prices"], 1)
    relative = r1.sub(r1.mean(axis=1), axis=0)  # no sector: minus the day's mean
    index = {d: len(offline_trading_days(CALENDAR_ANCHOR, d)) - 1 for d in DAYS}
    expected_snaps = [d for d in DAYS if index[d] % 10 == 0 and DAYS.index(d) >= 20]
    snaps = sorted(graph["date"].unique())
    assert snaps == expected_snaps
    assert all(DAYS.index(b) - DAYS.index(a) == 10 for a, b in zip(snaps, snaps[1:], strict=False))
    assert graph["rank"].dtype.kind == "i"
    for snap in snaps:
        ref = _ref_graph(relative, snap, 3, 20)
        g = graph[graph["date"] == snap].sort_values(["code", "rank"]).reset_index(drop=True)
        ref = ref.sort_values(["code", "rank"]).reset_index(drop=True)
        assert g[["code", "peer_code", "rank"]].values.tolist() == \
            ref[["code", "peer_code", "rank"]].values.tolist(), snap
        np.testing.assert_allclose(g["corr"], ref["corr"], rtol=1e-9)
        # the correlation is numpy's own, on codes with every return present
        win = relative.iloc[DAYS.index(snap) - 19: DAYS.index(snap) + 1]
        full = [c for c in CODES if win[c].notna().all()]
        cc = np.corrcoef(win[full].to_numpy().T)
        for _, e in g[g.code.isin(full) & g.peer_code.isin(full)].iterrows():
            assert e["corr"] == pytest.approx(cc[full.index(e.code), full.index(e.peer_code)],
                                              rel=1e-9)


def _member(master: pd.DataFrame) -> pd.DataFrame:
    """Each (day, code)'s sector as of that day (None: no master row valid that day)."""
    member = pd.DataFrame(None, index=DAYS, columns=CODES, dtype=object)
    for _, row in master.iterrows():
        for d in DAYS:
            if row.valid_from <= d and (row.valid_to is None or d < row.valid_to):
                member.loc[d, row.code] = row.sector33_code
    return member


def test_peer_graph_with_sectors_ranks_sector_relative_return_correlation(ser, pdata):
    returns = ser.select("date", "code", "_r1").toArrow()
    member = _member(pdata["master"])
    sectors = member.where(member.notna(), None).stack(future_stack=True)
    keys = zip(returns.column("date").to_pylist(), returns.column("code").to_pylist(), strict=True)
    sectors = pa.array([sectors[key] for key in keys], pa.string())
    snaps = peers.peer_graph(returns.append_column("sector", sectors),
                             DAYS, k=3, window=20, cadence=10)
    graph = pa.concat_tables(snaps.values()).to_pandas()
    r1 = ref_returns(pdata["prices"], 1)
    relative = r1.copy()
    for d in DAYS:  # minus the day's sector mean; no sector: minus the day's mean
        for c in CODES:
            s = member.loc[d, c]
            peers_of = CODES if pd.isna(s) else [o for o in CODES if member.loc[d, o] == s]
            relative.loc[d, c] = r1.loc[d, c] - r1.loc[d, peers_of].mean()
    assert pd.isna(member.loc[DAYS[5], CODES[7]])  # a code without a sector is in the test
    sectorless = _graph(ser, DAYS, k=3, window=20, cadence=10)
    changed = 0
    for snap in sorted(graph["date"].unique()):
        ref = _ref_graph(relative, snap, 3, 20).sort_values(["code", "rank"])
        g = graph[graph["date"] == snap].sort_values(["code", "rank"])
        assert g[["code", "peer_code", "rank"]].values.tolist() == \
            ref[["code", "peer_code", "rank"]].values.tolist(), snap
        np.testing.assert_allclose(g["corr"], ref["corr"], rtol=1e-9)
        changed += not np.allclose(g["corr"], sectorless[sectorless["date"] == snap].sort_values(
            ["code", "rank"])["corr"])
    assert changed  # the sectors change the graph
    with pytest.raises(ValueError, match="lack column.*sector"):
        peers.peer_graph(returns, DAYS, k=3, window=20, cadence=10)


def test_peer_graph_from_a_later_start_reproduces_the_same_snapshots(ser, pdata):
    full = _graph(ser, DAYS, k=3, window=20, cadence=10)
    start = DAYS[85]
    part = _graph(ser.filter(f"date >= '{DAYS[40]}'"), DAYS[40:], k=3, window=20, cadence=10,
                  start=start)
    first = max(d for d in full["date"].unique() if d <= start)
    assert min(part["date"]) == first
    want = full[full["date"] >= first].sort_values(["date", "code", "rank"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(
        part.sort_values(["date", "code", "rank"]).reset_index(drop=True), want)


def test_peer_features_use_latest_snapshot_and_peer_returns_of_the_day(ser, pdata):
    graph = _graph(ser, DAYS, k=3, window=20, cadence=10)
    snaps = sorted(graph["date"].unique())
    serve = peers.serving_snapshots(DAYS, snaps)
    assert min(serve) == snaps[0] and serve[DAYS[-1]] == snaps[-1]
    rets = frame(ser.select("date", "code", "_r1", "_r5"))
    rets = rets[rets["date"].isin(serve)].sample(frac=1.0, random_state=5)  # any row order
    got = pd.concat([rows[["date", "code"]].assign(**peers.peer_stats(rows, graph[graph["date"] == s]))
                     for s, rows in rets.groupby(rets["date"].map(serve))])
    r1, r5 = ref_returns(pdata["prices"], 1), ref_returns(pdata["prices"], 5)
    exp = {c: pd.DataFrame(np.nan, index=DAYS, columns=CODES) for c in peers.FEATURES}
    for d in DAYS:
        past = [s for s in snaps if s <= d]
        if not past:
            continue
        g = graph[graph["date"] == past[-1]]
        for code, e in g.groupby("code"):
            v1 = r1.loc[d, list(e.peer_code)].dropna()
            v5 = r5.loc[d, list(e.peer_code)].dropna()
            exp["peer_ret_1d_mean"].loc[d, code] = v1.mean() if len(v1) else np.nan
            exp["peer_ret_5d_mean"].loc[d, code] = v5.mean() if len(v5) else np.nan
            exp["peer_ret_5d_var"].loc[d, code] = np.var(v5, ddof=1) if len(v5) >= 2 else np.nan
            exp["peer_corr_mean"].loc[d, code] = e["corr"].mean()
    check(got, {c: long(v, c) for c, v in exp.items()}, rtol=1e-9)


# ---- point in time -------------------------------------------------------------------


def _all_groups(spark, scratch, prices, topix, master, flow_rows, margin, statements):
    """The build's passes (``build_features.compose``) over the whole hand-built market:
    normalized features and peer graph of the dates up to ``CUT``."""
    inputs = BuildInputs(
        start=DAYS[0], end=DAYS[-1], read_from=DAYS[0], dates=DAYS,
        prices=to_arrow(_base_rows(prices), "silver.equities_prices_daily"),
        topix=topix, master_asof=master, flows=flow_rows,
        margin=to_arrow(margin, "silver.margin_interest"),
        statements=to_arrow(statements, "silver.fins_statements"))
    settings = build_features.BuildSettings(build_features.catalogue_features(),
                                            {"k": 3, "window": 20, "cadence": 10},
                                            TradingCalendar())
    handoff = Handoff(str(scratch))
    feats, rows, graph = build_features.compose(spark, inputs, settings, handoff)
    try:
        pdf = feats.filter(f"date <= '{CUT}'").toPandas()
        g = graph.to_pandas()
        g = g[g["date"] <= CUT]
    finally:
        handoff.remove()
    assert rows == T * N
    assert not scratch.exists()
    return (pdf.sort_values(["date", "code"]).reset_index(drop=True),
            g.sort_values(["date", "code", "rank"]).reset_index(drop=True))


def test_changing_everything_after_a_date_leaves_earlier_features_bit_identical(spark, pdata,
                                                                               tmp_path):
    before, g_before = _all_groups(spark, tmp_path / "before", pdata["prices"], pdata["topix"], pdata["master"],
                                   pdata["flows"], pdata["margin"], pdata["statements"])
    prices, topix = _market(perturb_after=DAYS.index(CUT))
    assert not np.allclose(prices["adj_close"].iloc[-N:], pdata["prices"]["adj_close"].iloc[-N:])
    after, g_after = _all_groups(spark, tmp_path / "after", prices, topix, _master(cut_change=True),
                                 _flows(perturb=True), _margin(perturb=True),
                                 _statements(perturb=True))
    assert len(before) == (DAYS.index(CUT) + 1) * N
    pd.testing.assert_frame_equal(before, after, check_exact=True)
    pd.testing.assert_frame_equal(g_before, g_after, check_exact=True)
    context = (market.FEATURES + sector.FEATURES + flows.FEATURES + fundamentals.MARGIN_FEATURES
               + fundamentals.STATEMENT_FEATURES + peers.FEATURES)
    for col in context:
        assert before[col].notna().any(), f"{col} is never computed"
