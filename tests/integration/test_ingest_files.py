"""End to end through ``ingest_range(source="files")``: bronze -> gate -> silver on a small market.

The market is deterministic rows in the API's field names (40 codes, one 1:2 split),
written as J-Quants-shaped CSV files, so the pipeline runs without the network.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from gogooku3.ingest.driver import ingest_range
from gogooku3.jpx.calendar import TradingCalendar
from gogooku3.lake import deltars
from gogooku3.quality import gate as qg
from gogooku3.settings import get_settings

# ---- a small J-Quants-shaped market written as CSV files (not a server) ----
SPLIT_CODE, SPLIT_DAY_INDEX = "13010", 10


def make_market(start: dt.date, end: dt.date, n_codes: int = 40, seed: int = 7):
    """``{endpoint_name: DataFrame}`` of API rows (dates as ISO strings)."""
    rng = np.random.default_rng(seed)
    days = TradingCalendar().trading_days(start, end)
    codes = [f"{1301 + i:04d}0" for i in range(n_codes - 1)] + ["130A0"]
    codes[0] = SPLIT_CODE
    bars, master = [], []
    for ci, code in enumerate(codes):
        price = float(rng.uniform(500, 3000))
        closes, factors = [], []
        for di, d in enumerate(days):
            f = 0.5 if (code == SPLIT_CODE and di == SPLIT_DAY_INDEX) else 1.0
            price = round(price * f * (1 + rng.normal(0, 0.01)), 1)
            o = round(price * (1 + rng.normal(0, 0.003)), 1)
            h, low = max(o, price) + 1.0, min(o, price) - 1.0
            traded = not (ci == 5 and di == 3)  # one stock without a trade one day
            closes.append(price)
            factors.append(f)
            vol = float(rng.integers(1000, 100000))
            bars.append({"Date": d.isoformat(), "Code": code,
                         "O": o if traded else None, "H": h if traded else None,
                         "L": low if traded else None, "C": price if traded else None,
                         "UL": "0", "LL": "0", "Vo": vol if traded else None,
                         "Va": vol * price if traded else None, "AdjFactor": f})
            master.append({"Date": d.isoformat(), "Code": code, "CoName": f"Co{code}",
                           "CoNameEn": f"Co{code}", "S17": "1", "S17Nm": "x",
                           "S33": "0050" if di < 20 or ci % 2 else "3050", "S33Nm": "x",
                           "ScaleCat": "TOPIX Small 1", "Mkt": "0111", "MktNm": "Prime",
                           "Mrgn": "1", "MrgnNm": "x"})
        # API Adj* columns: backward adjustment to the last day, one decimal
        later = np.cumprod(np.array(factors[::-1]))[::-1]
        after = np.append(later[1:], 1.0)
        for k, row in enumerate(bars[-len(days):]):
            for src, dst in (("O", "AdjO"), ("H", "AdjH"), ("L", "AdjL"), ("C", "AdjC")):
                row[dst] = None if row[src] is None else round(row[src] * after[k], 1)
            row["AdjVo"] = None if row["Vo"] is None else round(row["Vo"] / after[k], 1)
    topix = [{"Date": d.isoformat(), "O": 2000.0, "H": 2010.0, "L": 1990.0, "C": 2005.0}
             for d in days]
    fins = [{"DiscDate": days[3].isoformat(), "DiscTime": t, "Code": c, "DiscNo": f"{i}",
             "DocType": "FY", "CurPerType": "FY", "CurPerSt": "2023-04-01",
             "CurPerEn": "2024-03-31", "CurFYSt": "2023-04-01", "CurFYEn": "2024-03-31",
             **{k: 1.0 for k in "Sales OP OdP NP EPS TA Eq BPS FSales FOP FOdP FNP FEPS ShOutFY"
                .split()}}
            for i, (c, t) in enumerate([(codes[1], "13:00:00"), (codes[2], "16:00:00"),
                                        (codes[3], None)])]
    return {"bars_daily": pd.DataFrame(bars), "master": pd.DataFrame(master),
            "topix": pd.DataFrame(topix), "fins_summary": pd.DataFrame(fins)}, days, codes


FILE_NAMES = {"bars_daily": "equities_bars_daily.csv", "master": "equities_master.csv",
              "topix": "indices_topix.csv", "fins_summary": "fins_summary.csv"}


def write_market(path, frames) -> None:
    """Write the frames as J-Quants-shaped CSV files under ``path``."""
    for name, df in frames.items():
        df.to_csv(path / FILE_NAMES[name], index=False)


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
    real = qg.write_results
    calls = {"n": 0}

    def crash_before_ledger(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 2:  # chunk 2 wrote bronze and silver, then the process dies
            raise RuntimeError("killed")
        return real(*a, **kw)

    monkeypatch.setattr(qg, "write_results", crash_before_ledger)
    with pytest.raises(RuntimeError, match="killed"):
        run(market[0], lake)
    monkeypatch.setattr(qg, "write_results", real)
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


@pytest.mark.parametrize("share, publishes", [(0.05, True), (0.01, False)],
                         ids=["within-share", "past-share"])
def test_a_listed_code_without_bars_is_quarantined_and_its_days_publish_within_the_share(
        market, tmp_path, monkeypatch, share, publishes):
    _, frames, days, codes = market
    gone, gone_days = codes[11], days[5:8]  # one of 40 codes (2.5%) absent for three days
    bars = frames["bars_daily"]
    bars = bars[~(bars["Code"].eq(gone) & bars["Date"].isin([d.isoformat() for d in gone_days]))]
    src = tmp_path / "src"
    src.mkdir()
    write_market(src, {**frames, "bars_daily": bars})
    monkeypatch.setenv("GOGOOKU_QUALITY_MAX_BAD_SHARE", str(share))
    get_settings.cache_clear()
    try:
        summary = ingest_range(days[4], days[8], source="files", path=str(src), endpoints=EPS,
                               lake_root=str(tmp_path / "lake"))
    finally:
        get_settings.cache_clear()
    lake = str(tmp_path / "lake")
    q = deltars.read_table("quality.quarantine", lake_root=lake).to_pandas()
    assert sorted((d, json.loads(r)["Code"], c) for d, r, c in
                  zip(q["date"], q["row_json"], q["check"], strict=True)) == [
        (d, gone, "missing_codes") for d in gone_days]
    prices = deltars.read_table("silver.equities_prices_daily", lake_root=lake).to_pandas()
    if publishes:
        assert summary.ok and summary.published == days[4:9]
        assert len(prices) == 5 * len(codes)
        mine = prices[prices["code"] == gone].sort_values("date")
        assert mine["is_traded"].tolist() == [True, False, False, False, True]
        assert mine["adj_close"].isna().tolist() == [False, True, True, True, False]
        assert mine["cum_adj_factor"].tolist() == [1.0] * 5
    else:
        assert sorted(summary.failed) == list(gone_days)
        assert any("missing_codes" in m for m in summary.failed[gone_days[0]])
        assert sorted(set(prices["date"])) == [days[4], days[8]]
