"""The simulated market: determinism, calendar, corporate actions, disclosures, oracle."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from gogooku3.market.calendar import TradingCalendar, session_close
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
    from gogooku3.quality.price_limits import limit_prices

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
