"""The simulated market: determinism, calendar, corporate actions, disclosures, oracle."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from gogooku3.jpx.calendar import TradingCalendar, session_close
from gogooku3.market.sim import MarketConfig, simulate_market

CFG = MarketConfig(stocks=120, start=dt.date(2024, 4, 1), end=dt.date(2025, 3, 31), seed=11,
                   split_rate=0.1)


@pytest.fixture(scope="module")
def market():
    return simulate_market(CFG)


def test_same_seed_same_market_other_seed_differs(market):
    again = simulate_market(CFG)
    pd.testing.assert_frame_equal(market.bars, again.bars)
    assert market.oracle == again.oracle
    other = simulate_market(MarketConfig(**{**CFG.__dict__, "seed": 12}))
    assert not market.bars["C"].equals(other.bars["C"])


def test_rows_only_on_jpx_trading_days(market):
    dates = {dt.date.fromisoformat(d) for d in market.bars["Date"].unique()}
    assert dates == set(TradingCalendar().trading_days(CFG.start, CFG.end))
    assert dt.date(2024, 11, 4) not in dates and dt.date(2025, 1, 2) not in dates


def test_codes_are_unique_five_char_strings(market):
    codes = market.bars["Code"]
    assert codes.str.len().eq(5).all()
    assert not market.bars.duplicated(["Date", "Code"]).any()
    # listings in 2024 or later may carry new-style alphanumeric codes
    assert codes.str.contains(r"[A-Z]").any()


def test_split_day_raw_close_jumps_adjusted_close_continuous(market):
    b = market.bars
    splits = b[(b["AdjFactor"] != 1.0) & b["C"].notna()]
    assert len(splits) >= 3
    for _, row in splits.iterrows():
        hist = b[b["Code"] == row["Code"]].reset_index(drop=True)
        k = hist.index[hist["Date"] == row["Date"]][0]
        prev = hist.loc[:k - 1].dropna(subset=["C"]).iloc[-1]
        raw_move = row["C"] / prev["C"]
        adj_move = row["AdjC"] / prev["AdjC"]
        # the raw price moves by about 1/ratio...
        assert abs(np.log(raw_move) - np.log(row["AdjFactor"])) < 0.35
        # ...while the adjusted price moves like an ordinary day
        assert abs(np.log(adj_move)) < 0.35 < abs(np.log(row["AdjFactor"]))


def test_no_trade_rows_keep_the_code_with_null_prices(market):
    nulls = market.bars[market.bars["C"].isna()]
    assert len(nulls) > 0
    assert nulls[["O", "H", "L", "Vo", "Va"]].isna().all().all()


def test_limit_flags_mark_moves_at_the_daily_limit(market):
    from gogooku3.jpx.price_limits import limit_prices

    b = market.bars.sort_values(["Code", "Date"])
    b = b.assign(prev=b.groupby("Code")["C"].shift() * b["AdjFactor"]).dropna(subset=["prev", "C"])
    lo, up = limit_prices(b["prev"].to_numpy())
    assert (b["H"].to_numpy() <= up + 1e-9).all() and (b["L"].to_numpy() >= lo - 1e-9).all()
    assert ((b["UL"] == "1") == (b["H"].to_numpy() >= up)).all()


def test_some_statements_come_after_the_close(market):
    f = market.fins
    after = [
        not t or dt.time.fromisoformat(t) >= session_close(dt.date.fromisoformat(d)).time()
        for d, t in zip(f["DiscDate"], f["DiscTime"], strict=True)
    ]
    assert 0.2 < np.mean(after) < 0.9
    assert set(f["DiscTime"]) >= {"15:30:00", "15:00:00"}


def test_oracle_is_positive_and_reversal_recovers_part_of_it(market):
    assert all(v > 0.02 for v in market.oracle.values())
    b = market.bars.sort_values(["Code", "Date"])
    b = b.assign(ret=b.groupby("Code")["AdjC"].pct_change(fill_method=None))
    b = b.assign(fwd=b.groupby("Code")["ret"].shift(-1), factor=-b["ret"])
    ics = b.dropna(subset=["fwd", "factor"]).groupby("Date").apply(
        lambda g: g["factor"].rank().corr(g["fwd"].rank()), include_groups=False)
    reversal_ic = ics.mean()
    assert 0.0 < reversal_ic < market.oracle[1]


def test_export_writes_jquants_shaped_files_the_ingestion_reads(market, tmp_path):
    from jquantsapi import constants as c

    from gogooku3.ingest import bronze
    from gogooku3.jquants.endpoints import endpoint
    from gogooku3.market.export import export_market

    paths = {p.name for p in export_market(market, tmp_path, "csv")}
    assert {"equities_bars_daily.csv", "fins_summary.csv", "oracle.json"} <= paths
    bars = pd.read_csv(tmp_path / "equities_bars_daily.csv", dtype={"Code": str, "UL": str})
    assert list(bars.columns) == c.EQ_BARS_DAILY_COLUMNS_V2[:16] and len(bars) == len(market.bars)
    typed = bronze.read_file(tmp_path / "equities_bars_daily.csv", endpoint("bars_daily"))
    assert typed.num_rows == len(market.bars)
    assert set(typed.column("Code").to_pylist()) == set(market.bars["Code"])


def test_statement_after_close_counts_next_day(market):
    """EffDate and the planted drift follow the close (15:00, 15:30 from 2024-11-05)."""
    cal = TradingCalendar()
    eff = market.planted.effective.dropna(subset=["EffDate"])
    pos = {d.isoformat(): t for t, d in enumerate(market.days)}
    col = {c: i for i, c in enumerate(market.planted.codes)}
    kinds = set()
    for code, disc, time, eff_date in eff.itertuples(index=False):
        day = dt.date.fromisoformat(disc)
        close = session_close(day).time()
        after = not time or dt.time.fromisoformat(time) >= close
        want = cal.next_trading_day(day) if after else day
        assert eff_date == want.isoformat(), (code, disc, time)
        kinds.add((time, close.minute))
        t = pos[eff_date]
        if t == len(market.days) - 1:
            continue  # the last row of the planted arrays is zero: no next return simulated
        drift = market.planted.earnings_drift[:, col[code]]
        assert drift[t - 1] == 0.0 and drift[t] != 0.0  # known from the effective date on
    # the same 15:00 disclosure is after the close before 2024-11-05 and before it since
    assert ("15:00:00", 0) in kinds and ("15:00:00", 30) in kinds and ("", 0) in kinds


def test_same_seed_same_market_in_another_process(market):
    import subprocess
    import sys

    script = (
        "import datetime as dt, hashlib, pandas as pd;"
        "from gogooku3.market.sim import MarketConfig, simulate_market;"
        "m = simulate_market(MarketConfig(stocks=120, start=dt.date(2024, 4, 1),"
        " end=dt.date(2025, 3, 31), seed=11, split_rate=0.1));"
        "print(pd.util.hash_pandas_object(m.fins).sum(), pd.util.hash_pandas_object(m.bars).sum())"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, env={"PYTHONHASHSEED": "123", "PATH": ""}).stdout.split()
    here = [str(pd.util.hash_pandas_object(market.fins).sum()),
            str(pd.util.hash_pandas_object(market.bars).sum())]
    assert out == here


def test_daily_rank_ic_matches_spearman_row_by_row():
    from scipy.stats import spearmanr

    from gogooku3.market.sim import daily_rank_ic

    rng = np.random.default_rng(0)
    sig = rng.normal(size=(6, 40))
    fwd = np.round(0.3 * sig + rng.normal(size=(6, 40)), 1)  # rounding makes ties
    fwd[2, :5] = np.nan
    sig[3, 7] = np.nan
    fwd[5, :35] = np.nan  # too few names
    got = daily_rank_ic(sig, fwd)
    for k in range(5):
        ok = np.isfinite(sig[k]) & np.isfinite(fwd[k])
        assert got[k] == pytest.approx(spearmanr(sig[k, ok], fwd[k, ok]).statistic, abs=1e-12)
    assert np.isnan(got[5])


def test_planted_total_scores_the_oracle_against_adjusted_closes(market):
    """Independent check: rank the planted total against AdjC returns from the bars."""
    wide = market.bars.pivot(index="Date", columns="Code", values="AdjC")
    wide = wide.reindex(columns=market.planted.codes).ffill()
    fwd = np.log(wide.shift(-1) / wide).to_numpy()
    listed = market.bars.pivot(index="Date", columns="Code", values="Code").notna()
    listed = listed.reindex(columns=market.planted.codes).to_numpy()
    total = np.where(listed, market.planted.total(), np.nan)
    from gogooku3.market.sim import mean_rank_ic

    ic = mean_rank_ic(total[30:-1], fwd[30:-1])
    assert ic == pytest.approx(market.oracle[1], abs=0.01)
    assert market.oracle_daily["1d"].mean() == pytest.approx(market.oracle[1])
    # each component alone carries part of it
    for name in ("reversal", "momentum", "lead_lag"):
        part = np.where(listed, getattr(market.planted, name), np.nan)
        assert 0 < mean_rank_ic(part[30:-1], fwd[30:-1]) < market.oracle[1]


def test_universe_changes_listings_delistings_and_rare_sector_moves(market):
    m = market.master
    first, last = m["Date"].min(), m["Date"].max()
    codes_first = set(m.loc[m["Date"] == first, "Code"])
    codes_last = set(m.loc[m["Date"] == last, "Code"])
    assert codes_last - codes_first and codes_first - codes_last
    assert set(m.columns) >= {"S17", "S17Nm", "S33", "S33Nm", "Mkt", "MktNm", "ScaleCat"}
    assert set(m["MktNm"]) == {"Prime", "Standard", "Growth"}
    per_code = m.groupby("Code")["S33"].nunique()
    assert 1 <= (per_code > 1).sum() <= 0.05 * len(per_code)
    # a delisted code vanishes from the bars; it never comes back
    gone = sorted(codes_first - codes_last)[0]
    dates = market.bars.loc[market.bars["Code"] == gone, "Date"]
    assert dates.max() < last and len(dates) == len(set(dates))
    # 17-sector code is consistent with the 33-sector code
    assert m.groupby("S33")["S17"].nunique().max() == 1


def test_exchange_outage_day_has_a_null_row_for_every_listed_code():
    m = simulate_market(MarketConfig(stocks=40, start=dt.date(2020, 8, 3),
                                     end=dt.date(2020, 11, 30), seed=3))
    outage = m.bars_for_date(dt.date(2020, 10, 1))
    assert len(outage) == len(m.bars_for_date(dt.date(2020, 9, 30))) > 0
    assert outage[["O", "H", "L", "C", "Vo", "Va"]].isna().all().all()
    assert m.bars_for_date(dt.date(2020, 10, 2))["C"].notna().mean() > 0.9
    rows = {r["Date"]: r["HolDiv"] for r in m.calendar_rows(dt.date(2020, 9, 30), dt.date(2020, 10, 4))}
    assert rows == {"2020-09-30": "1", "2020-10-01": "1", "2020-10-02": "1",
                    "2020-10-03": "0", "2020-10-04": "0"}


def test_fins_values_are_api_strings_for_a_period_before_the_disclosure(market):
    f = market.fins
    assert all(isinstance(v, str) for v in f["EPS"]) and (f["DEPS"] == "").all()
    assert (f["CurPerEn"] < f["DiscDate"]).all() and (f["CurPerSt"] < f["CurPerEn"]).all()
    fy = f[f["CurPerType"] == "FY"]
    assert len(fy) and fy["CurPerEn"].str.endswith("-03-31").all()
    assert f["Sales"].map(float).gt(0).all()


def test_simulation_needs_enough_days():
    from gogooku3.market.sim import SimError

    with pytest.raises(SimError, match="trading days"):
        simulate_market(MarketConfig(stocks=10, start=dt.date(2024, 1, 4), end=dt.date(2024, 1, 31)))
