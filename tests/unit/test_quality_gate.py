"""The quality gate on hand-made bars: planted bad rows fail their date, good dates pass."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from gogooku3.jpx.price_limits import limit_prices, limit_width
from gogooku3.lake import deltars
from gogooku3.quality.gate import QualityGate, QualityGateFailed, passed_dates, write_results
from gogooku3.quality.suites import SuiteContext

DAYS = [dt.date(2024, 3, d) for d in (4, 5, 6, 7, 8)]
CODES = ["13010", "13050", "130A0"]


def clean_bars() -> pd.DataFrame:
    rows = []
    for i, d in enumerate(DAYS):
        for j, code in enumerate(CODES):
            c = 1000.0 + 10 * i + j
            rows.append({"date": d, "Code": code, "O": c - 5, "H": c + 10, "L": c - 10, "C": c,
                         "UL": "0", "LL": "0", "Vo": 100.0, "Va": 100.0 * c, "AdjFactor": 1.0,
                         "AdjO": c - 5, "AdjH": c + 10, "AdjL": c - 10, "AdjC": c, "AdjVo": 100.0})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def gate():
    return QualityGate()


def ctx():
    return SuiteContext(universe={d: set(CODES) for d in DAYS})


def test_clean_batch_passes_every_date(gate):
    rep = gate.validate("bronze.equities_bars_daily", clean_bars(), DAYS, ctx())
    assert rep.passed == DAYS and rep.quarantine.empty
    rep.raise_for(DAYS[0])


@pytest.mark.parametrize(
    "values, check",
    [
        ({"O": -1.0, "L": -1.0, "C": -1.0}, "ohlc"),
        ({"H": 900.0, "L": 1100.0}, "ohlc"),
        ({"Vo": -5.0}, "volume"),
        ({"AdjFactor": 0.5}, "daily_return"),  # a "split" with no price move
    ],
    ids=["negative_price", "high_below_low", "negative_volume", "bad_adjfactor"],
)
def test_planted_bad_row_fails_only_its_date_and_is_quarantined(gate, values, check):
    df = clean_bars()
    for col, v in values.items():
        df.loc[4, col] = v  # row 4: DAYS[1], code 13050
    rep = gate.validate("bronze.equities_bars_daily", df, DAYS, ctx())
    assert rep.failed == [DAYS[1]]
    assert check in rep.days[DAYS[1]].failed_checks
    q = rep.quarantine
    assert check in ",".join(q["check"]) and json.loads(q["row_json"].iloc[0])["Code"] == "13050"
    with pytest.raises(QualityGateFailed, match=r"equities_bars_daily on 2024-03-05"):
        rep.raise_for(DAYS[1])


def test_duplicates_and_missing_listed_code_are_caught(gate):
    df = clean_bars()
    df = pd.concat([df, df.iloc[[0]]], ignore_index=True)  # duplicate on DAYS[0]
    df = df[~((df["date"] == DAYS[2]) & (df["Code"] == "130A0"))]  # listed code missing
    rep = gate.validate("bronze.equities_bars_daily", df, DAYS, ctx())
    assert rep.failed == [DAYS[0], DAYS[2]]
    assert "unique_key" in rep.days[DAYS[0]].failed_checks
    assert rep.days[DAYS[2]].failed_checks.get("missing_codes") == 1


def test_untraded_rows_with_null_prices_are_not_errors(gate):
    df = clean_bars()
    df.loc[4, ["O", "H", "L", "C", "Vo", "Va", "AdjO", "AdjH", "AdjL", "AdjC", "AdjVo"]] = np.nan
    rep = gate.validate("bronze.equities_bars_daily", df, DAYS, ctx())
    assert rep.passed == DAYS


def test_price_limit_uses_previous_close_and_flag_must_agree(gate):
    df = clean_bars()
    # code 13010 closes 1010 on DAYS[1]; limit width for 1010 is 300 -> upper 1310
    assert limit_prices(1010.0)[1] == 1310.0
    df.loc[6, ["H", "C"]] = [1310.0, 1310.0]  # touches the upper limit without UL flag
    rep = gate.validate("bronze.equities_bars_daily", df, DAYS, ctx())
    assert rep.failed == [DAYS[2]] and "price_limits" in rep.days[DAYS[2]].failed_checks
    df.loc[6, "UL"] = "1"
    df.loc[9, ["O", "H", "L", "C"]] = [1300.0, 1320.0, 1290.0, 1305.0]  # continues from 1310
    assert gate.validate("bronze.equities_bars_daily", df, DAYS, ctx()).passed == DAYS


def test_limit_table_bands():
    assert limit_width([99.9, 100, 999, 1000, 4999, 5000, 49_999, 50_000]).tolist() == [
        30, 50, 150, 300, 700, 1000, 7000, 10000]


def test_results_and_quarantine_are_stored_per_table_and_date(gate, lake_root):
    df = clean_bars()
    df.loc[4, "Vo"] = -1.0
    rep = gate.validate("bronze.equities_bars_daily", df, DAYS, ctx())
    write_results(list(rep.days.values()), [rep.quarantine], DAYS, lake_root=lake_root)
    assert passed_dates("bronze.equities_bars_daily", DAYS[0], DAYS[-1], lake_root) == (
        set(DAYS) - {DAYS[1]})
    q = deltars.read_table("quality.quarantine", lake_root=lake_root).to_pandas()
    assert q["date"].tolist() == [DAYS[1]] and "negative volume" in q["reason"].iloc[0]
    v = deltars.read_table("quality.validations", lake_root=lake_root).to_pandas()
    failing = v[~v["success"]].iloc[0]
    assert json.loads(failing["result_json"])["success"] is False  # the day's own GX result


@pytest.mark.parametrize("share, passes", [(0.34, True), (0.33, False)])
def test_a_bad_row_is_rejected_and_its_date_publishes_unless_past_the_share(
        gate, monkeypatch, share, passes):
    df = clean_bars()
    df.loc[4, "Vo"] = -5.0  # 1 of 3 listed codes on DAYS[1]: a share of 0.333...
    monkeypatch.setattr(gate, "max_bad_share", share)
    rep = gate.validate("bronze.equities_bars_daily", df, DAYS, ctx())
    assert rep.rejected.tolist() == [i == 4 for i in range(len(df))]
    assert rep.quarantine["check"].tolist() == ["volume"]
    assert (rep.passed == DAYS) is passes
    assert rep.days[DAYS[1]].failed_rows == 1 and rep.days[DAYS[1]].success is passes
