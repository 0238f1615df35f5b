"""configs/features.yaml: the catalogue the gold.features schema and the job are built from."""

from __future__ import annotations

import pytest

from gogooku3.lake.features_schema import (
    FeatureCatalogError,
    feature_groups,
    feature_names,
    features_table,
    peer_graph_params,
)


def test_shipped_catalogue_has_62_plus_unique_features_each_with_z_and_rank_columns():
    names = feature_names()
    assert len(names) >= 62 and len(set(names)) == len(names)
    cols = features_table().column_names
    assert cols[:2] == ["date", "code"]
    for n in names:
        assert {n, f"{n}_cs_z", f"{n}_cs_rank"} <= set(cols)
    assert len(cols) == 2 + 3 * len(names)


def _write(tmp_path, text: str):
    path = tmp_path / "features.yaml"
    path.write_text(text)
    return path


def test_a_repeated_feature_is_an_error_naming_group_and_feature(tmp_path):
    path = _write(tmp_path, """
groups:
  a: [{name: x, window: 1, definition: d}]
  b: [{name: x, window: 2, definition: e}]
""")
    with pytest.raises(FeatureCatalogError, match=r"feature 'x' \(group 'b'\) is repeated"):
        feature_groups(path)


def test_an_entry_without_definition_is_an_error_naming_it(tmp_path):
    path = _write(tmp_path, "groups:\n  a: [{name: x, window: 1}]\n")
    with pytest.raises(FeatureCatalogError, match=r"group 'a' .* lacks \['definition'\]"):
        feature_groups(path)


@pytest.mark.parametrize("value", ["{k: 10, window: 60}", "{k: 0, window: 60, cadence: 20}",
                                   "{k: 10, window: 60, cadence: 2.5}"])
def test_peer_graph_needs_positive_integer_k_window_cadence(tmp_path, value):
    path = _write(tmp_path, f"peer_graph: {value}\ngroups:\n  a: [{{name: x, window: 1, definition: d}}]\n")
    with pytest.raises(FeatureCatalogError, match="peer_graph"):
        peer_graph_params(path)


def test_shipped_peer_graph_is_k10_over_120_days():
    assert peer_graph_params() == {"k": 10, "window": 120, "cadence": 20}


def test_the_catalogue_lists_gold_features_so_lake_ls_shows_it():
    from gogooku3.lake import catalog

    names = [t.name for t in catalog.tables()]
    assert "gold.features" in names
    layers = [t.layer for t in catalog.tables()]
    assert layers == sorted(layers, key=["bronze", "silver", "gold", "quality"].index)


def test_reversed_range_is_refused_by_both_entry_points_before_spark_starts(capsys, monkeypatch):
    from gogooku3 import cli
    from gogooku3.lake import spark as lake_spark
    from spark_jobs import build_features

    def no_spark(*a, **k):
        raise AssertionError("Spark started for a reversed range")

    monkeypatch.setattr(lake_spark, "get_spark", no_spark)
    assert cli.main(["features", "--start", "2025-01-10", "--end", "2025-01-06"]) == 2
    assert "--start 2025-01-10 is after --end 2025-01-06" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_features.parse_args(["--start", "2025-01-10", "--end", "2025-01-06"])
    assert "--start 2025-01-10 is after --end 2025-01-06" in capsys.readouterr().err
    with pytest.raises(build_features.FeatureBuildError, match="is after"):
        build_features.run(None, build_features.dt.date(2025, 1, 10), build_features.dt.date(2025, 1, 6))
