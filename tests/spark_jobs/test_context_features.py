"""Context feature groups (market, sector, flows, margin, statements) against direct
numpy/pandas computations on the hand-built market of ``context_market``."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from context_market import (
    CODES,
    DAYS,
    HALT,
    N,
    T,
    check,
    frame,
    long,
    ref_returns,
    sector_membership,
    wide,
)

from spark_jobs.features import flows, fundamentals, market, sector
from spark_jobs.features.sessions import day64

pytestmark = pytest.mark.spark


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
    member = sector_membership(master)
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
