"""The gold check on hand-made gold tables: key failures fail naming table, date and
check; a feature group null on a date is reported as an empty group, not a failure."""

from __future__ import annotations

import datetime as dt
import logging

import pyarrow as pa
import pytest

from gogooku3.lake import catalog, deltars
from gogooku3.lake.features_schema import feature_groups
from gogooku3.quality.gold_check import GoldCheckFailed, check_gold

DAYS = [dt.date(2024, 3, d) for d in (4, 5, 6, 7, 8)]  # Mon..Fri, all JPX trading days
CODES = ["13010", "13050", "72030"]


def _panel(table: str, null_cols: dict[dt.date, set[str]] | None = None,
           days=DAYS, codes=CODES) -> pa.Table:
    spec = catalog.table(table)
    rows = []
    for d in days:
        for c in codes:
            row = {"date": d, "code": c}
            for name, _ in spec.columns[2:]:
                row[name] = None if name in (null_cols or {}).get(d, ()) else 0.5
            rows.append(row)
    return pa.Table.from_pylist(rows, schema=spec.arrow_schema())


def _put(lake: str, table: str, data: pa.Table) -> None:
    deltars.write_dates(data, table, sorted(set(data.column("date").to_pylist())),
                        lake_root=lake)


def _write(lake: str, features: pa.Table, labels: pa.Table) -> None:
    _put(lake, "gold.features", features)
    _put(lake, "gold.labels", labels)


def test_a_group_null_on_one_date_is_an_empty_group_and_the_check_passes(lake_root, caplog):
    margin = set(feature_groups()["margin"])
    _write(lake_root, _panel("gold.features", {DAYS[1]: margin}), _panel("gold.labels"))
    with caplog.at_level(logging.WARNING, logger="gogooku3.quality.gold_check"):
        report = check_gold(DAYS[0], DAYS[-1], lake_root=lake_root)
    assert report.empty_groups == {DAYS[1]: ["margin"]}
    assert report.rows == {"gold.features": 15, "gold.labels": 15}
    assert report.days == DAYS
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "2024-03-05" in warned[0] and "margin" in warned[0]
    assert report.summary()["empty_groups"] == {"2024-03-05": ["margin"]}


def test_one_column_of_a_group_filled_keeps_the_group_out_of_the_empty_list(lake_root):
    margin = feature_groups()["margin"]
    _write(lake_root, _panel("gold.features", {DAYS[2]: set(margin[1:])}),
           _panel("gold.labels"))
    assert check_gold(DAYS[0], DAYS[-1], lake_root=lake_root).empty_groups == {}


def test_a_trading_day_missing_from_labels_fails_naming_table_date_and_check(lake_root):
    _write(lake_root, _panel("gold.features"),
           _panel("gold.labels", days=[d for d in DAYS if d != DAYS[2]]))
    with pytest.raises(GoldCheckFailed) as err:
        check_gold(DAYS[0], DAYS[-1], lake_root=lake_root)
    msg = str(err.value)
    assert "gold.labels on 2024-03-06: rows_present" in msg
    assert "gold.labels on 2024-03-06: same_keys_as_features (3 codes differ)" in msg
    assert "gold.features on" not in msg


def test_labels_with_a_code_the_features_lack_fail_same_keys(lake_root):
    _write(lake_root, _panel("gold.features"),
           _panel("gold.labels", codes=[*CODES, "99840"]))
    with pytest.raises(GoldCheckFailed, match=r"gold.labels on 2024-03-04: "
                                              r"same_keys_as_features \(1 codes differ\)"):
        check_gold(DAYS[0], DAYS[0], lake_root=lake_root)


def test_a_missing_table_fails_table_exists(lake_root):
    _put(lake_root, "gold.features", _panel("gold.features"))
    with pytest.raises(GoldCheckFailed, match="gold.labels on 2024-03-04..2024-03-08: "
                                              "table_exists"):
        check_gold(DAYS[0], DAYS[-1], lake_root=lake_root)
