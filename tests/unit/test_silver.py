"""Silver transforms: forward split adjustment, statement cutoff, publication lags, master as-of."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from gogooku3.ingest import silver
from gogooku3.jpx.calendar import TradingCalendar

D = [dt.date(2024, 3, d) for d in (4, 5, 6, 7, 8)]  # Mon..Fri, all trading days


def bars(code, closes, factors, vols=None):
    n = len(closes)
    vols = vols or [1000.0] * n
    c = np.array(closes, dtype=float)
    return pd.DataFrame({
        "date": D[:n], "Code": code, "O": c, "H": c + 1, "L": c - 1, "C": c, "UL": "0", "LL": "0",
        "Vo": vols, "Va": c * 10, "AdjFactor": factors,
    })


def test_forward_adjustment_divides_prices_and_multiplies_volume_from_the_split_on():
    # 1:2 split effective on day 3: AdjFactor 0.5, price halves, volume doubles
    df = silver.adjust_prices(bars("13010", [1000, 1010, 505, 510], [1, 1, 0.5, 1],
                                   [100, 100, 200, 200]))
    assert df["cum_adj_factor"].tolist() == [1, 1, 0.5, 0.5]
    assert df["adj_close"].tolist() == [1000, 1010, 1010, 1020]  # continuous through the split
    assert df["adj_volume"].tolist() == [100, 100, 100, 100]
    assert df["adj_high"].tolist() == [1001, 1011, 1012, 1022]


def test_past_rows_never_change_when_a_later_split_arrives():
    first = silver.adjust_prices(bars("13010", [1000, 1010], [1, 1]))
    both = silver.adjust_prices(bars("13010", [1000, 1010, 505], [1, 1, 0.5]))
    pd.testing.assert_frame_equal(first, both.iloc[:2])


def test_incremental_build_continues_the_cumulative_factor():
    whole = silver.adjust_prices(bars("13010", [1000, 505, 170, 171], [1, 0.5, 1 / 3, 1]))
    head = whole.iloc[:2]
    tail_in = bars("13010", [1000, 505, 170, 171], [1, 0.5, 1 / 3, 1]).iloc[2:]
    tail = silver.adjust_prices(tail_in, prev_cum={"13010": head["cum_adj_factor"].iloc[-1]})
    np.testing.assert_allclose(tail["adj_close"], whole["adj_close"].iloc[2:])
    np.testing.assert_allclose(tail["cum_adj_factor"], [1 / 6, 1 / 6])


def test_untraded_rows_keep_nulls_and_flags_become_booleans():
    b = bars("13010", [1000, np.nan], [1, 1])
    b.loc[0, "UL"] = "1"
    df = silver.adjust_prices(b)
    assert df["is_traded"].tolist() == [True, False]
    assert np.isnan(df["adj_close"].iloc[1])
    assert df["upper_limit_hit"].tolist() == [True, False]


def test_api_adjusted_close_cross_check_finds_only_the_wrong_row():
    b = bars("13010", [1000, 1010, 505, 510], [1, 1, 0.5, 1])
    b["AdjC"] = [500.0, 505.0, 505.0, 510.0]  # API: C times the factors after the row
    s = silver.adjust_prices(b)
    assert silver.adjustment_mismatches(s, b).empty
    b.loc[1, "AdjC"] = 1010.0  # the API missed the split for this row
    bad = silver.adjustment_mismatches(s, b)
    assert bad["date"].tolist() == [D[1]]


def test_a_bad_adj_factor_is_blamed_on_its_own_day_only():
    b = bars("13010", [1000, 1010, 1020, 1030, 1040], [1, 1, 0.5, 1, 1])  # no real split
    b["AdjC"] = b["C"]  # the API knows there was none
    bad = silver.adjustment_mismatches(silver.adjust_prices(b), b)
    assert bad["date"].tolist() == [D[2]]


@pytest.mark.parametrize(
    "day, time, expected",
    [
        (dt.date(2024, 3, 4), "14:59", dt.date(2024, 3, 4)),    # before the 15:00 close
        (dt.date(2024, 3, 4), "15:00", dt.date(2024, 3, 5)),    # at the close -> next day
        (dt.date(2024, 3, 4), None, dt.date(2024, 3, 5)),       # unknown time -> after close
        (dt.date(2024, 11, 5), "15:10", dt.date(2024, 11, 5)),  # 15:30 close from 2024-11-05
        (dt.date(2024, 11, 1), "15:10", dt.date(2024, 11, 5)),  # 15:00 close; 11-04 holiday
        (dt.date(2024, 3, 9), "10:00", dt.date(2024, 3, 11)),   # Saturday -> Monday
    ],
)
def test_statement_effective_date_follows_the_session_close(day, time, expected):
    assert silver.effective_date(day, time, TradingCalendar())[0] == expected


def test_statements_map_to_silver_columns():
    fins = pd.DataFrame({
        "DiscDate": [dt.date(2024, 3, 4)], "DiscTime": ["16:00:00"], "Code": ["13010"],
        "DiscNo": ["1"], "DocType": ["FY"], "CurPerType": ["FY"], "CurFYEn": [dt.date(2024, 3, 31)],
        **{c: [1.0] for c in "Sales OP OdP NP EPS TA Eq BPS FSales FOP FNP FEPS ShOutFY".split()},
    })
    out = silver.statements(fins, TradingCalendar())
    assert out["date"].tolist() == [dt.date(2024, 3, 5)]
    assert str(out["disclosed_at"].iloc[0]) == "2024-03-04 07:00:00+00:00"


def test_flows_are_usable_the_trading_day_after_publication():
    inv = pd.DataFrame({
        "PubDate": [dt.date(2024, 3, 7), dt.date(2024, 3, 8)], "Section": ["TSEPrime"] * 2,
        "StDate": [dt.date(2024, 2, 26)] * 2, "EnDate": [dt.date(2024, 3, 1)] * 2,
        **{c: [1.0, 2.0] for c in "FrgnBal IndBal PropBal TrstBnkBal InvTrBal TotTot".split()},
    })
    assert silver.investor_flows(inv, TradingCalendar())["date"].tolist() == [
        dt.date(2024, 3, 8), dt.date(2024, 3, 11)]


def test_master_asof_intervals():
    snaps = D[:4]
    rows = []
    for i, d in enumerate(snaps):
        rows.append({"date": d, "Code": "A", "S33": "050" if i < 2 else "100"})
        if i != 2:
            rows.append({"date": d, "Code": "B", "S33": "200"})
    m = pd.DataFrame(rows)
    for c in ("CoName", "S17", "S33Nm", "Mkt", "ScaleCat"):
        m[c] = "x"
    out = silver.master_asof(m).sort_values(["code", "valid_from"])
    got = list(zip(out["code"], out["valid_from"], out["valid_to"], out["sector33_code"],
                   strict=True))
    assert got == [
        ("A", D[0], D[2], "050"), ("A", D[2], None, "100"),
        ("B", D[0], D[2], "200"), ("B", D[3], None, "200"),
    ]
