"""ClickHouse analytics on chdb: loads replace exactly their dates, the named queries (the
ones docs/serving.md shows) answer what pandas answers on the same rows."""

from __future__ import annotations

import datetime as dt
import math
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from gogooku3.serving.analytics import load_clickhouse
from gogooku3.serving.clickhouse import ClickHouse, ClickHouseError, query_names, query_sql
from gogooku3.settings import PROJECT_ROOT


@pytest.fixture(scope="module")
def ch_url(tmp_path_factory) -> str:
    return f"chdb://{tmp_path_factory.mktemp('chdb')}"


@pytest.fixture(scope="module")
def loaded(serving_gold, ch_url):
    first, last = serving_gold.dates[0], serving_gold.dates[-1]
    return load_clickhouse(first, last, ch_url, lake_root=serving_gold.lake_root)


def _dump(ch: ClickHouse, table: str) -> pd.DataFrame:
    return ch.sql(f"SELECT * FROM {table} ORDER BY ALL").reset_index(drop=True)


def test_load_writes_one_row_per_horizon_and_is_idempotent(serving_gold, ch_url, loaded):
    assert loaded["predictions"] == len(serving_gold.predictions) * 5
    with ClickHouse(ch_url) as ch:
        before = {t: _dump(ch, t) for t in ("predictions", "feature_coverage_daily")}
    again = load_clickhouse(serving_gold.dates[0], serving_gold.dates[-1], ch_url,
                            lake_root=serving_gold.lake_root)
    assert again == loaded
    with ClickHouse(ch_url) as ch:
        for table, frame in before.items():
            pd.testing.assert_frame_equal(_dump(ch, table), frame)


def test_replace_dates_touches_only_its_range(serving_gold, ch_url, loaded):
    day = serving_gold.dates[4]
    with ClickHouse(ch_url) as ch:
        others = ch.sql("SELECT * FROM predictions WHERE date != {d:Date} ORDER BY ALL", d=day)
        one = pa.table({"date": pa.array([day], pa.date32()), "code": ["72030"],
                        "horizon": pa.array([1], pa.uint8()), "point": [0.5],
                        "model_name": ["m"], "model_version": ["9"]})
        ch.replace_dates("predictions", one, day, day)
        assert ch.sql("SELECT count() AS n FROM predictions WHERE date = {d:Date}", d=day).n[0] == 1
        after = ch.sql("SELECT * FROM predictions WHERE date != {d:Date} ORDER BY ALL", d=day)
        pd.testing.assert_frame_equal(after, others)
        with pytest.raises(ClickHouseError, match="outside the replaced range"):
            ch.replace_dates("predictions", one, day + dt.timedelta(days=1), serving_gold.dates[-1])
    load_clickhouse(day, day, ch_url, lake_root=serving_gold.lake_root)  # restore


def test_top_decile_matches_pandas(serving_gold, ch_url, loaded):
    start, end = serving_gold.dates[0], serving_gold.dates[-1]
    with ClickHouse(ch_url) as ch:
        got = ch.query("top_decile", horizon=5, start=start, end=end)
    pred = serving_gold.predictions.dropna(subset=["pred_5d"])
    expected = []
    for day, rows in pred.groupby("date"):
        rows = rows.sort_values(["pred_5d", "code"], ascending=[False, True])
        expected += [(day, c) for c in rows.code[: math.ceil(len(rows) / 10)]]
    assert list(zip(pd.to_datetime(got.date).dt.date, got.code, strict=True)) == expected


def test_feature_coverage_matches_the_gold_rows(serving_gold, ch_url, loaded):
    day = serving_gold.dates[2]
    rows = serving_gold.features[serving_gold.features.date == day]
    with ClickHouse(ch_url) as ch:
        got = ch.sql("SELECT * FROM feature_coverage_daily WHERE date = {d:Date} AND "
                     "feature = 'ret_1d_cs_z'", d=day).iloc[0]
    col = rows["ret_1d_cs_z"]
    assert got.non_null_share == pytest.approx(col.notna().sum() / len(rows))
    assert got["mean"] == pytest.approx(np.nanmean(col))
    assert got["std"] == pytest.approx(np.nanstd(col, ddof=1))
    assert got.n == len(rows)


def test_coverage_drop_is_reported(ch_url, loaded):
    days = pd.bdate_range("2024-01-08", periods=25).date
    share = [1.0] * 24 + [0.4]  # the feature loses most of its values on the last day
    frame = pd.DataFrame({"date": days, "feature": "zz_probe", "non_null_share": share,
                          "mean": 0.0, "std": 1.0, "n": 100})
    with ClickHouse(ch_url) as ch:
        ch.replace_dates("feature_coverage_daily",
                         pa.Table.from_pandas(frame.astype({"n": "uint32"}), preserve_index=False),
                         days[0], days[-1])
        drops = ch.query("coverage_drops", start=days[0], end=days[-1], drop=0.2)
    assert list(drops.feature) == ["zz_probe"]
    assert pd.Timestamp(drops.date[0]).date() == days[-1]
    assert drops.trailing_share[0] == pytest.approx(1.0)


def test_rank_ic_history_has_a_trailing_mean(ch_url, loaded):
    days = pd.bdate_range("2023-01-09", periods=30).date
    rank_ic = np.linspace(-0.1, 0.2, len(days))
    metrics = pd.DataFrame({"date": days, "model": "atft_gat_fan", "horizon": np.uint8(5),
                            "ic": rank_ic / 2, "rank_ic": rank_ic, "hit_rate": 0.5,
                            "decile_spread": 0.01, "n": np.uint32(100)})
    with ClickHouse(ch_url) as ch:
        ch.replace_dates("model_metrics_daily", pa.Table.from_pandas(metrics, preserve_index=False),
                         days[0], days[-1])
        hist = ch.query("rank_ic_history", model="atft_gat_fan", horizon=5,
                        start=days[0], end=days[-1])
    assert hist.rank_ic.tolist() == pytest.approx(rank_ic.tolist())
    assert hist.rank_ic_20d.iloc[-1] == pytest.approx(rank_ic[-20:].mean())
    assert hist.rank_ic_20d.iloc[3] == pytest.approx(rank_ic[:4].mean())


def test_docs_show_exactly_the_tested_queries():
    docs = (PROJECT_ROOT / "docs" / "serving.md").read_text()
    shown = [b.strip() for b in re.findall(r"```sql\n(.*?)```", docs, flags=re.S)]
    assert sorted(query_sql(n).strip() for n in query_names()) == sorted(shown)


def test_bad_url_names_the_scheme():
    with pytest.raises(ClickHouseError, match="ftp://"):
        ClickHouse("ftp://example/x")
