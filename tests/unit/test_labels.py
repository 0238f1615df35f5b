"""Forward-return labels on the driver: sessions, gaps, untraded days, the date mean."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from gogooku3.jpx.calendar import offline_trading_days
from spark_jobs.features.labels import COLUMNS, HORIZONS, compute_labels

DAYS = offline_trading_days(pd.Timestamp("2025-01-06").date(), pd.Timestamp("2025-03-31").date())


def _prices() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    rows = []
    for code in ("1301", "7203", "9984", "6758"):
        for i, day in enumerate(DAYS):
            if code == "9984" and i == 7:
                continue  # no row on one session: labels that span it are null
            if code == "6758" and i > 30:
                continue  # delisted
            px = float(100 * np.exp(rng.normal(0, 0.02)))
            traded = not (code == "7203" and i == 12)
            if code == "1301" and i == 20:
                px = 0.0  # a non-positive base price has no return
            rows.append((day, code, px if traded else None, traded))
    df = pd.DataFrame(rows, columns=["date", "code", "adj_close", "is_traded"])
    return df.sample(frac=1.0, random_state=1)  # the kernel must not rely on input order


def _reference(df: pd.DataFrame) -> pd.DataFrame:
    """Per code, session by session: the close h sessions ahead when the code has a row on
    every session up to it."""
    pos = {d: i for i, d in enumerate(DAYS)}
    px = {(r.code, pos[r.date]): (r.adj_close if r.is_traded else np.nan)
          for r in df.itertuples()}
    out = df[["date", "code"]].copy()
    for h in HORIZONS:
        vals = []
        for r in df.itertuples():
            t, base = pos[r.date], px[(r.code, pos[r.date])]
            path = [px.get((r.code, t + k)) for k in range(1, h + 1)]
            ok = all(p is not None for p in path) and base > 0
            vals.append(path[-1] / base - 1 if ok else np.nan)
        out[f"fwd_ret_{h}d"] = vals
        out[f"fwd_ret_{h}d_dm"] = out[f"fwd_ret_{h}d"] - out.groupby("date")[
            f"fwd_ret_{h}d"].transform("mean")
    return out.sort_values(["date", "code"]).reset_index(drop=True)


def test_labels_match_a_per_code_reference_with_gaps_untraded_days_and_the_end():
    prices = _prices()
    got = compute_labels(pa.Table.from_pandas(prices, preserve_index=False)).to_pandas()
    want = _reference(prices)
    assert got[["date", "code"]].equals(want[["date", "code"]])
    for col in COLUMNS:
        np.testing.assert_array_equal(got[col].isna(), want[col].isna(), err_msg=col)
        np.testing.assert_allclose(got[col], want[col], rtol=1e-12, atol=1e-15, err_msg=col)
    gap = got[(got["code"] == "9984") & (got["date"] == DAYS[6])]
    assert gap["fwd_ret_1d"].isna().all() and gap["fwd_ret_10d"].isna().all()
    assert got[got["date"] == DAYS[-1]][[f"fwd_ret_{h}d" for h in HORIZONS]].isna().all().all()
    assert got["fwd_ret_5d"].notna().sum() > 100


def test_no_rows_give_an_empty_table_of_the_label_columns():
    empty = pa.table({"date": pa.array([], pa.date32()), "code": pa.array([], pa.string()),
                      "adj_close": pa.array([], pa.float64()),
                      "is_traded": pa.array([], pa.bool_())})
    assert compute_labels(empty).column_names == ["date", "code", *COLUMNS]
