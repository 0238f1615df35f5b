"""Feast over the gold tables with a real redis-server: online values (packed vectors),
point-in-time history (wide and packed views), idempotent materialization, unknown codes."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sv_market import DELISTED

from gogooku3.serving import feast_store
from gogooku3.serving.feast_store import (
    ServingError,
    feature_store,
    materialize,
    online_lookup,
)
from gogooku3.serving.feature_views import (
    CS_Z_VIEW,
    FORECAST_VIEW,
    RAW_VIEW,
    online_refs,
    online_views,
    vectors,
    view_columns,
)


def _same(actual, expected) -> bool:
    if expected is None or (isinstance(expected, float) and np.isnan(expected)):
        return actual is None or (isinstance(actual, float) and np.isnan(actual))
    return actual == pytest.approx(expected) if isinstance(expected, float) else actual == expected


def test_online_values_equal_latest_gold_rows(serving_gold, serving_settings, materialized):
    store = feature_store(serving_settings)
    last = serving_gold.dates[-1]
    gold_f = serving_gold.features.set_index(["date", "code"])
    gold_p = serving_gold.predictions.set_index(["date", "code"])
    codes = ["72030", "67580", "13070"]
    result = online_lookup(codes, store)
    assert [r.code for r in result.rows] == codes and result.missing == []
    assert result.names[CS_Z_VIEW] == view_columns()[CS_Z_VIEW]
    for row in result.rows:
        assert row.feature_date == last and row.forecast_date == last
        for name in view_columns()[CS_Z_VIEW] + view_columns()[RAW_VIEW]:
            assert _same(row.features[name], gold_f.loc[(last, row.code), name]), name
        for name in view_columns()[FORECAST_VIEW]:
            assert _same(row.forecast[name], gold_p.loc[(last, row.code), name]), name


def test_delisted_code_keeps_its_last_row_and_unknown_codes_are_missing(
    serving_gold, serving_settings, materialized
):
    result = online_lookup(["99999", DELISTED, "72030", "ABCDE"], feature_store(serving_settings))
    assert result.missing == ["99999", "ABCDE"]
    delisted = next(r for r in result.rows if r.code == DELISTED)
    last_listed = max(serving_gold.features.loc[serving_gold.features.code == DELISTED, "date"])
    assert delisted.feature_date == last_listed < serving_gold.dates[-1]


def test_historical_features_are_point_in_time(serving_gold, serving_settings, materialized):
    store = feature_store(serving_settings)
    dates = serving_gold.dates
    gold = serving_gold.features.set_index(["date", "code"])
    # a Friday, the Saturday after it (no trade date) and the Monday after, at 09:00 UTC
    friday = next(d for d in dates[3:-3] if d.weekday() == 4)
    asked = [friday, friday + dt.timedelta(days=1), friday + dt.timedelta(days=3)]
    name = next(c for c in view_columns()[CS_Z_VIEW]
                if gold.loc[[(friday, "72030"), (asked[2], "72030")], c].notna().all())
    entity_df = pd.DataFrame({
        "code": "72030",
        "event_timestamp": [pd.Timestamp(d, tz="UTC") + pd.Timedelta(hours=9) for d in asked],
    })
    hist = store.get_historical_features(entity_df=entity_df, features=[f"{CS_Z_VIEW}:{name}"]
                                         ).to_df().sort_values("event_timestamp")
    got = hist[name].tolist()
    expected = [gold.loc[(friday, "72030"), name]] * 2 + [gold.loc[(asked[2], "72030"), name]]
    assert got == pytest.approx(expected)
    # the value changes after the Friday, and the Saturday row did not see the change
    assert gold.loc[(asked[2], "72030"), name] != gold.loc[(friday, "72030"), name]
    # the packed view answers the same rows: element i is column i of the wide view
    vec = vectors()[CS_Z_VIEW]
    packed = store.get_historical_features(entity_df=entity_df, features=[vec.ref]
                                           ).to_df().sort_values("event_timestamp")
    index = vec.columns.index(name)
    assert [v[index] for v in packed[vec.field]] == pytest.approx(expected)


def _redis_dump(url: str) -> dict[bytes, dict]:
    import redis

    client = redis.Redis.from_url(url)
    return {key: client.hgetall(key) for key in client.scan_iter()}


def test_materializing_twice_changes_nothing(serving_gold, serving_settings, materialized):
    before = _redis_dump(serving_settings.redis_url)
    again = materialize(serving_gold.dates[-1], settings=serving_settings)
    assert set(again.views) == set(online_views())
    assert _redis_dump(serving_settings.redis_url) == before
    assert len(before) == len(serving_gold.features.code.unique())


def test_an_emptied_online_store_is_whole_after_one_materialize(
    serving_gold, serving_settings, materialized
):
    import redis

    before = _redis_dump(serving_settings.redis_url)
    redis.Redis.from_url(serving_settings.redis_url).flushdb()  # a restart without persistence
    materialize(serving_gold.dates[-1], settings=serving_settings)
    assert _redis_dump(serving_settings.redis_url) == before
    delisted = online_lookup([DELISTED], feature_store(serving_settings)).rows[0]
    assert delisted.feature_date < serving_gold.dates[-1]


def test_vector_views_name_their_elements_in_catalogue_order(serving_settings, materialized):
    store = feature_store(serving_settings)
    out = store.get_online_features(features=online_refs(),
                                    entity_rows=[{"code": "72030"}]).to_dict()
    for wide, vec in vectors().items():
        names = store.get_feature_view(vec.view).tags[f"{vec.field}_columns"].split(",")
        labels = online_views()[vec.view].labels
        expected = [c for c in view_columns()[wide] if c not in labels]
        assert names == list(vec.columns) == expected
        assert len(out[vec.field][0]) == len(names)
    assert len(vectors()[CS_Z_VIEW].columns) > 100
    assert len(online_views()) == 2  # one Redis read per code and source


def test_a_vector_shorter_than_its_view_is_refused(serving_settings, materialized, monkeypatch):
    from dataclasses import replace

    grown = dict(vectors())
    grown[CS_Z_VIEW] = replace(grown[CS_Z_VIEW],
                               columns=(*grown[CS_Z_VIEW].columns, "new_feature_cs_z"))
    monkeypatch.setattr(feast_store, "vectors", lambda: grown)
    with pytest.raises(ServingError, match="stock_features_vector:cs_z holds vectors of"):
        online_lookup(["72030"], feature_store(serving_settings))


def test_export_removes_files_of_an_earlier_layout_and_keeps_current_ones(serving_gold,
                                                                          tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gogooku3.serving.offline_export import export_source

    days = serving_gold.dates
    export_source("gold_features", days[0], days[0], tmp_path, serving_gold.lake_root)
    kept = tmp_path / "gold_features" / f"{days[0].isoformat()}.parquet"
    old = tmp_path / "gold_features" / "2020-01-06.parquet"  # a per-column export of old
    pq.write_table(pa.table({"code": ["13010"], "ret_1d_cs_z": [0.1]}), old)
    written = export_source("gold_features", days[-1], days[-1], tmp_path,
                            serving_gold.lake_root)
    assert written == [days[-1]]
    assert kept.exists() and not old.exists()
