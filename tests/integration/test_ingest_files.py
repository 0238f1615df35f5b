"""End to end through ``ingest_range(source="files")``: bronze -> gate -> silver on a small market."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from gogooku3.ingest import runner
from gogooku3.ingest.runner import ingest_range
from gogooku3.lake import deltars

from .ingest_market import SPLIT_CODE, SPLIT_DAY_INDEX, make_market, write_market

START, END = dt.date(2024, 3, 1), dt.date(2024, 4, 30)
EPS = ["bars_daily", "master", "topix", "fins_summary"]


def run(src, lake, **kw):
    kw.setdefault("chunk_days", 20)
    return ingest_range(START, END, source="files", path=str(src), endpoints=EPS,
                        lake_root=str(lake), **kw)


def snapshot(lake, tables=("silver.equities_prices_daily", "silver.fins_statements",
                           "silver.indices_topix_daily", "silver.equities_master_asof",
                           "bronze.equities_bars_daily")):
    out = {}
    for t in tables:
        df = deltars.read_table(t, lake_root=str(lake)).to_pandas()
        df = df.drop(columns=[c for c in df.columns if c.startswith("_")])
        out[t] = df.sort_values(list(df.columns[:2])).reset_index(drop=True)
    return out


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    frames, days, codes = make_market(START, END)
    write_market(src, frames)
    return src, frames, days, codes


@pytest.fixture(scope="module")
def clean_lake(market, tmp_path_factory):
    lake = tmp_path_factory.mktemp("lake")
    summary = run(market[0], lake)
    return lake, summary


def test_clean_market_publishes_every_trade_date(clean_lake, market):
    lake, summary = clean_lake
    _, frames, days, codes = market
    assert summary.ok and summary.published == days
    prices = deltars.read_table("silver.equities_prices_daily", lake_root=str(lake)).to_pandas()
    assert len(prices) == len(days) * len(codes)
    split = prices[prices["code"] == SPLIT_CODE].sort_values("date")
    raw = split["close"].to_numpy()
    adj = split["adj_close"].to_numpy()
    k = SPLIT_DAY_INDEX
    assert raw[k] / raw[k - 1] < 0.6  # the raw series halves at the split
    assert 0.9 < adj[k] / adj[k - 1] < 1.1  # the adjusted one does not
    np.testing.assert_allclose(adj[:k], raw[:k])  # forward: rows before the split unchanged
    assert split["cum_adj_factor"].iloc[-1] == 0.5


def test_statements_use_the_session_close(clean_lake, market):
    lake, _ = clean_lake
    days = market[2]
    st = deltars.read_table("silver.fins_statements", lake_root=str(lake)).to_pandas()
    by_time = dict(zip(st["disc_no"], st["date"], strict=True))
    assert by_time == {"0": days[3], "1": days[4], "2": days[4]}  # 13:00, 16:00, no time


def test_rerunning_changes_nothing(clean_lake, market, tmp_path):
    lake, _ = clean_lake
    before = snapshot(lake)
    again = run(market[0], lake)
    assert again.skipped == market[2] and not again.published  # resume: nothing to do
    redo = run(market[0], lake, resume=False)
    assert redo.published == market[2]
    after = snapshot(lake)
    for t in before:
        assert before[t].equals(after[t]), t


def test_crash_mid_backfill_then_resume_gives_the_same_tables(market, clean_lake, tmp_path,
                                                             monkeypatch):
    lake = tmp_path / "lake"
    real = runner.qg.write_results
    calls = {"n": 0}

    def crash_before_ledger(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 2:  # chunk 2 wrote bronze and silver, then the process dies
            raise RuntimeError("killed")
        return real(*a, **kw)

    monkeypatch.setattr(runner.qg, "write_results", crash_before_ledger)
    with pytest.raises(RuntimeError, match="killed"):
        run(market[0], lake)
    monkeypatch.setattr(runner.qg, "write_results", real)
    resumed = run(market[0], lake)
    assert 0 < len(resumed.skipped) < len(market[2]) and resumed.ok
    want, got = snapshot(clean_lake[0]), snapshot(lake)
    for t in want:
        assert want[t].equals(got[t]), t


def test_planted_bad_rows_are_quarantined_and_good_dates_publish(market, tmp_path):
    _, frames, days, codes = market
    bars = frames["bars_daily"].copy()
    iso = [d.isoformat() for d in days]
    plants = {  # trade date index -> what is wrong
        2: "negative price", 6: "H < L", 12: "duplicate", 16: "missing trading day",
        24: "bad AdjFactor",
    }
    row = bars.index[(bars["Date"] == iso[2]) & (bars["Code"] == codes[7])][0]
    bars.loc[row, ["L", "C"]] = [-5.0, -5.0]
    row = bars.index[(bars["Date"] == iso[6]) & (bars["Code"] == codes[8])][0]
    bars.loc[row, ["H", "L"]] = [bars.loc[row, "L"] - 1, bars.loc[row, "H"] + 1]
    dup = bars[(bars["Date"] == iso[12]) & (bars["Code"] == codes[9])]
    bars = bars[bars["Date"] != iso[16]]
    row = bars.index[(bars["Date"] == iso[24]) & (bars["Code"] == codes[10])][0]
    bars.loc[row, "AdjFactor"] = 0.5
    bars = bars._append(dup, ignore_index=True)
    src = tmp_path / "src"
    src.mkdir()
    write_market(src, {**frames, "bars_daily": bars})
    lake = tmp_path / "lake"
    summary = run(src, lake)
    bad_days = {days[i] for i in plants}
    assert set(summary.failed) == bad_days
    assert summary.published == [d for d in days if d not in bad_days]
    prices = deltars.read_table("silver.equities_prices_daily", lake_root=str(lake)).to_pandas()
    assert bad_days.isdisjoint(set(prices["date"]))
    q = deltars.read_table("quality.quarantine", lake_root=str(lake)).to_pandas()
    checks = {(d, c) for d, c in zip(q["date"], q["check"], strict=True)}
    assert (days[2], "ohlc") in {(d, c.split(",")[0]) for d, c in checks}
    assert any(d == days[6] and "ohlc" in c for d, c in checks)
    assert any(d == days[12] and "unique_key" in c for d, c in checks)
    assert any(d == days[24] and "daily_return" in c for d, c in checks)
    bad = q[q["date"] == days[2]].iloc[0]
    assert json.loads(bad["row_json"])["Code"] == codes[7]
    v = deltars.read_table("quality.validations", lake_root=str(lake)).to_pandas()
    missing = v[(v["date"] == days[16]) & (v["table_name"] == "bronze.equities_bars_daily")]
    assert not missing["success"].iloc[0] and "no rows for a trading day" in missing[
        "result_json"].iloc[0]
