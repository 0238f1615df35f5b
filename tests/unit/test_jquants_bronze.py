"""API pages and J-Quants-shaped files -> typed bronze tables."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from gogooku3.ingest.bronze import (
    BronzeError,
    BronzeSchemaError,
    empty_trading_days,
    load_files,
    match_endpoint,
    rows_to_bronze,
    write_bronze,
)
from gogooku3.jquants.endpoints import endpoint
from gogooku3.lake import deltars

NOW = dt.datetime(2024, 1, 5, 9, 0, tzinfo=dt.UTC)
D1 = dt.date(2024, 1, 4)


def bar(code="13010", date="2024-01-04", **kw):
    row = {"Date": date, "Code": code, "O": 100, "H": 110.0, "L": 95, "C": 105.5, "UL": "0",
           "LL": "0", "Vo": 1000, "Va": 105000.0, "AdjFactor": 1, "AdjO": 100.0, "AdjH": 110.0,
           "AdjL": 95.0, "AdjC": 105.5, "AdjVo": 1000}
    row.update(kw)
    return row


def test_rows_become_typed_with_partition_date_and_metadata():
    ep = endpoint("bars_daily")
    t = rows_to_bronze([bar(), bar("130A0", O=None, H=None, L=None, C=None, Vo=None, Va=None)],
                       ep, source="api:/equities/bars/daily", ingested_at=NOW, day=D1)
    assert t.schema.field("O").type == pa.float64()
    assert t.column("date").to_pylist() == [D1, D1]
    assert t.column("Code").to_pylist() == ["13010", "130A0"]
    assert t.column("C").to_pylist() == [105.5, None]
    assert t.column("_source").to_pylist()[0] == "api:/equities/bars/daily"
    assert t.column("_ingested_at").to_pylist()[0] == NOW


def test_numbers_sent_as_text_are_parsed_and_garbage_rejected():
    ep = endpoint("bars_daily")
    t = rows_to_bronze([bar(O="101.5", Vo="")], ep, source="x", ingested_at=NOW, day=D1)
    assert t.column("O").to_pylist() == [101.5] and t.column("Vo").to_pylist() == [None]
    with pytest.raises(BronzeSchemaError, match=r"equities_bars_daily on 2024-01-04.*'H'"):
        rows_to_bronze([bar(H="abc")], ep, source="x", ingested_at=NOW, day=D1)


def test_missing_column_and_stray_dates_are_errors():
    ep = endpoint("bars_daily")
    row = bar()
    del row["AdjC"]
    with pytest.raises(BronzeSchemaError, match="AdjC"):
        rows_to_bronze([row], ep, source="x", ingested_at=NOW, day=D1)
    with pytest.raises(BronzeError, match="2024-01-05"):
        rows_to_bronze([bar(date="2024-01-05")], ep, source="x", ingested_at=NOW, day=D1)


def test_empty_page_for_a_trading_day_is_an_error_for_dense_endpoints():
    ep = endpoint("bars_daily")
    t = rows_to_bronze([bar()], ep, source="x", ingested_at=NOW, day=D1)
    assert empty_trading_days(t, ep, [D1]) == []
    assert empty_trading_days(t, ep, [dt.date(2024, 1, 5), D1]) == [dt.date(2024, 1, 5)]
    assert empty_trading_days(t.slice(0, 0), endpoint("fins_summary"), [D1]) == []  # sparse


def test_files_load_into_the_same_tables(tmp_path, lake_root):
    (tmp_path / "equities_bars_daily.csv").write_text(
        "Date,Code,O,H,L,C,UL,LL,Vo,Va,AdjFactor,AdjO,AdjH,AdjL,AdjC,AdjVo\n"
        "2024-01-04,01300,100,110,95,105,0,0,10,1050,1,100,110,95,105,10\n"
        "20240105,01300,,,,,0,0,,,1,,,,,\n"
        "2024-02-01,01300,100,110,95,105,0,0,10,1050,1,100,110,95,105,10\n"
    )
    (tmp_path / "notes.txt").write_text("ignored")
    ep = endpoint("bars_daily")
    out = load_files(tmp_path, [ep], D1, dt.date(2024, 1, 31), ingested_at=NOW)
    t = out["bars_daily"]
    assert t.column("Code").to_pylist() == ["01300", "01300"]  # leading zero kept
    assert t.column("date").to_pylist() == [D1, dt.date(2024, 1, 5)]
    assert t.column("O").to_pylist() == [100.0, None]
    write_bronze(t, ep, [D1, dt.date(2024, 1, 5)], lake_root=lake_root)
    assert deltars.read_table(ep.table, lake_root=lake_root).num_rows == 2


def test_file_names_map_to_endpoints():
    from pathlib import Path

    assert match_endpoint(Path("bars_daily_2024.parquet")).name == "bars_daily"
    assert match_endpoint(Path("fins-summary/2023.csv")).name == "fins_summary"
    assert match_endpoint(Path("equities_master.csv")).name == "master"
    assert match_endpoint(Path("readme.md")) is None
