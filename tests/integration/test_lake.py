"""Delta lake layer on real delta-spark and delta-rs: replace-by-date, atomicity, contracts."""

import datetime as dt

import pyarrow as pa
import pytest

from gogooku3.cli import main
from gogooku3.lake import catalog, deltars, spark_io
from gogooku3.lake.errors import (
    LakeDateError,
    LakeDuplicateKeyError,
    LakeSchemaError,
    TableNotFound,
)
from gogooku3.lake.spec import CLUSTERED, TableSpec

pytestmark = pytest.mark.spark

D1, D2, D3 = dt.date(2026, 11, 20), dt.date(2026, 11, 24), dt.date(2026, 11, 25)
TOPIX = catalog.table("silver.indices_topix_daily")


def topix_rows(dates, level):
    return [(d, level, level + 1.0, level - 1.0, level + 0.5) for d in dates]


def topix_df(spark, dates, level):
    return spark.createDataFrame(topix_rows(dates, level), TOPIX.spark_ddl())


def as_set(df):
    return {tuple(r) for r in df.collect()}


def test_rewrite_one_date_replaces_it_and_leaves_the_other(spark, lake_root):
    spark_io.write_dates(topix_df(spark, [D1, D2], 100.0), TOPIX, [D1, D2], lake_root=lake_root)
    commit = spark_io.write_dates(topix_df(spark, [D2], 200.0), TOPIX, [D2], lake_root=lake_root)
    assert commit == (1, len(topix_rows([D2], 200.0)))
    got = as_set(spark_io.read_table(spark, TOPIX, lake_root=lake_root))
    assert got == set(topix_rows([D1], 100.0)) | set(topix_rows([D2], 200.0))
    # re-running the same write is idempotent
    spark_io.write_dates(topix_df(spark, [D2], 200.0), TOPIX, [D2], lake_root=lake_root)
    assert as_set(spark_io.read_table(spark, TOPIX, lake_root=lake_root)) == got


def test_read_prunes_to_the_date_range(spark, lake_root):
    spark_io.write_dates(topix_df(spark, [D1, D2, D3], 1.0), TOPIX, [D1, D2, D3], lake_root=lake_root)
    df = spark_io.read_table(spark, TOPIX, start=D2, end=D2, lake_root=lake_root)
    assert [r.date for r in df.collect()] == [D2]
    plan = df._jdf.queryExecution().executedPlan().toString()
    assert "PartitionFilters" in plan and "2026-11-24" in plan


def test_failure_mid_write_keeps_previous_version_complete(spark, lake_root):
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType

    spark_io.write_dates(topix_df(spark, [D1, D2], 100.0), TOPIX, [D1, D2], lake_root=lake_root)
    before = as_set(spark_io.read_table(spark, TOPIX, lake_root=lake_root))

    @F.udf(DoubleType())
    def explode_on_d2(day, value):
        if day == D2:
            raise RuntimeError("simulated executor crash while writing 2026-11-24")
        return value

    bad = topix_df(spark, [D1, D2], 300.0).withColumn("close", explode_on_d2("date", "close"))
    with pytest.raises(Exception, match="simulated executor crash"):
        spark_io.write_dates(bad, TOPIX, [D1, D2], lake_root=lake_root)
    assert as_set(spark_io.read_table(spark, TOPIX, lake_root=lake_root)) == before
    assert deltars.table_info(TOPIX, lake_root=lake_root).version == 0


def test_duplicate_keys_raise_naming_table_and_key(spark, lake_root):
    dup = topix_df(spark, [D1, D1], 1.0)
    with pytest.raises(LakeDuplicateKeyError, match=r"silver\.indices_topix_daily.*date=2026-11-20"):
        spark_io.write_dates(dup, TOPIX, [D1], lake_root=lake_root)
    with pytest.raises(LakeDuplicateKeyError, match=r"silver\.indices_topix_daily"):
        deltars.write_dates(pa.Table.from_pylist(
            [dict(zip(TOPIX.column_names, r, strict=True)) for r in topix_rows([D1, D1], 1.0)],
            schema=TOPIX.arrow_schema(),
        ), TOPIX, [D1], lake_root=lake_root)


def test_schema_drift_raises_naming_table_and_columns(spark, lake_root):
    from pyspark.sql import functions as F

    drifted = topix_df(spark, [D1], 1.0).withColumn("close", F.col("close").cast("string"))
    with pytest.raises(LakeSchemaError, match=r"silver\.indices_topix_daily.*close is string"):
        spark_io.write_dates(drifted, TOPIX, [D1], lake_root=lake_root)
    extra = topix_df(spark, [D1], 1.0).withColumn("vwap", F.lit(1.0))
    with pytest.raises(LakeSchemaError, match="unexpected columns.*vwap"):
        spark_io.write_dates(extra, TOPIX, [D1], lake_root=lake_root)


def test_rows_outside_owned_dates_are_rejected(spark, lake_root):
    with pytest.raises(LakeDateError, match="2026-11-24.*outside"):
        spark_io.write_dates(topix_df(spark, [D1, D2], 1.0), TOPIX, [D1], lake_root=lake_root)


def test_a_null_key_is_reported_before_stray_dates_and_duplicates_and_writes_nothing(
        spark, lake_root):
    prices = catalog.table("silver.equities_prices_daily")
    rows = [{c: None for c in prices.column_names} for _ in range(4)]
    for r, (d, code) in zip(rows, [(D1, "13010"), (D1, "13010"), (D2, "13050"), (D1, None)],
                            strict=True):
        r.update(date=d, code=code, is_traded=True, upper_limit_hit=False, lower_limit_hit=False)
    df = spark.createDataFrame([tuple(r.values()) for r in rows], prices.spark_ddl())
    with pytest.raises(LakeDateError, match=r"silver\.equities_prices_daily: null in key"):
        spark_io.write_dates(df, prices, [D1], lake_root=lake_root)
    with pytest.raises(LakeDateError, match="2026-11-24.*outside"):
        spark_io.write_dates(df.filter("code IS NOT NULL"), prices, [D1], lake_root=lake_root)
    with pytest.raises(LakeDuplicateKeyError, match=r"date=2026-11-20, code=13010 \(x2\)"):
        spark_io.write_dates(df.filter("code IS NOT NULL"), prices, [D1, D2],
                             lake_root=lake_root)
    with pytest.raises(TableNotFound):  # nothing was written by any of them
        spark_io.read_table(spark, prices, lake_root=lake_root)


def test_a_delta_rs_write_checks_first_and_stores_nothing_until_its_commit(lake_root):
    def arrow(dates):
        return pa.Table.from_pylist([dict(zip(TOPIX.column_names, r, strict=True))
                                     for r in topix_rows(dates, 3.0)], schema=TOPIX.arrow_schema())

    good = deltars.check_write(arrow([D1, D2]), TOPIX, [D1, D2], lake_root=lake_root)
    with pytest.raises(LakeDuplicateKeyError, match="date=2026-11-25"):
        deltars.check_write(arrow([D3, D3]), TOPIX, [D3], lake_root=lake_root)
    with pytest.raises(TableNotFound):  # a job checks all its tables before it writes any
        deltars.read_table(TOPIX, lake_root=lake_root)
    assert good.commit().rows == 2
    assert sorted(deltars.read_table(TOPIX, lake_root=lake_root).column("date").to_pylist()) == [D1, D2]


def test_spark_and_delta_rs_read_each_others_tables(spark, lake_root):
    bars = catalog.table("silver.equities_prices_daily")
    row = {c: None for c in bars.column_names}
    row.update(date=D1, code="130A0", close=1234.5, adj_close=1234.5, adj_factor=1.0,
               is_traded=True, upper_limit_hit=False, lower_limit_hit=False)
    arrow = pa.Table.from_pylist([row, {**row, "code": "72030", "close": None, "is_traded": False}],
                                 schema=bars.arrow_schema())
    deltars.write_dates(arrow, bars, [D1], lake_root=lake_root)
    from_spark = {(r.code, r.close, r.is_traded)
                  for r in spark_io.read_table(spark, bars, lake_root=lake_root).collect()}
    assert from_spark == {("130A0", 1234.5, True), ("72030", None, False)}

    spark_io.write_dates(topix_df(spark, [D2, D3], 7.0), TOPIX, [D2, D3], lake_root=lake_root)
    from_rs = deltars.read_table(TOPIX, start=D3, lake_root=lake_root).to_pylist()
    assert from_rs == [dict(zip(TOPIX.column_names, topix_rows([D3], 7.0)[0], strict=True))]


def test_lake_ls_lists_version_rows_and_dates(spark, lake_root, monkeypatch, capsys):
    from gogooku3.settings import get_settings

    spark_io.write_dates(topix_df(spark, [D1, D2], 1.0), TOPIX, [D1, D2], lake_root=lake_root)
    spark_io.write_dates(topix_df(spark, [D2], 2.0), TOPIX, [D2], lake_root=lake_root)
    monkeypatch.setenv("GOGOOKU_LAKE", lake_root)
    get_settings.cache_clear()
    try:
        assert main(["lake", "ls"]) == 0
    finally:
        get_settings.cache_clear()
    lines = [ln.split() for ln in capsys.readouterr().out.splitlines()]
    assert lines[0][:3] == ["table", "version", "rows"]
    assert ["silver.indices_topix_daily", "1", "2", "2026-11-20..2026-11-24", "2"] in lines


PANEL = TableSpec(  # a wide gold panel in miniature: float32 values, clustered by date
    name="gold.test_panel",
    columns=(("date", "date"), ("code", "string"), ("x", "float"), ("y", "float")),
    primary_key=("date", "code"),
    storage=CLUSTERED,
)


def panel_df(spark, dates, level):
    rows = [(d, c, level + i, -level) for d in dates for i, c in enumerate(("13010", "72030"))]
    return spark.createDataFrame(rows, PANEL.spark_ddl())


def test_a_clustered_table_replaces_exactly_its_dates_without_a_partition_per_date(
        spark, lake_root):
    from pathlib import Path

    spark_io.write_dates(panel_df(spark, [D1, D2, D3], 1.0), PANEL, [D1, D2, D3],
                         lake_root=lake_root)
    spark_io.write_dates(panel_df(spark, [D2], 5.0), PANEL, [D2], lake_root=lake_root)
    # delta-rs replaces D3 with a data predicate as well
    arrow = pa.Table.from_pylist(
        [{"date": D3, "code": "13010", "x": 9.0, "y": -9.0}], schema=PANEL.arrow_schema())
    deltars.write_dates(arrow, PANEL, [D3], lake_root=lake_root)
    got = sorted(tuple(r) for r in spark_io.read_table(spark, PANEL, lake_root=lake_root).collect())
    assert got == [(D1, "13010", 1.0, -1.0), (D1, "72030", 2.0, -1.0),
                   (D2, "13010", 5.0, -5.0), (D2, "72030", 6.0, -5.0), (D3, "13010", 9.0, -9.0)]
    table = deltars.read_table(PANEL, start=D2, end=D2, lake_root=lake_root)
    assert table.schema.field("x").type == pa.float32() and table.num_rows == 2
    path = Path(PANEL.path(lake_root))
    assert not [p for p in path.iterdir() if p.name.startswith("date=")]
    info = deltars.table_info(PANEL, lake_root=lake_root)
    assert (info.rows, info.first_date, info.last_date, info.dates) == (5, D1, D3, 3)


def test_a_clustered_file_is_a_short_run_of_dates_and_a_replace_rewrites_only_its_files(
        spark, lake_root, monkeypatch):
    from gogooku3.lake import spec as spec_mod

    # two rows per date and at most four rows per file: each file holds two dates
    monkeypatch.setattr(spec_mod, "CLUSTERED_FILE_VALUES", 4 * len(PANEL.columns))
    days = [D1 + dt.timedelta(days=i) for i in range(6)]
    spark_io.write_dates(panel_df(spark, days, 1.0).coalesce(1), PANEL, days, lake_root=lake_root)
    files = deltars.data_files(PANEL, lake_root=lake_root)
    assert len(files) == 3
    holding = deltars.data_files(PANEL, days[4], days[4], lake_root=lake_root)
    assert len(holding) == 1
    # the log's date statistics tell whether a replace owns every stored date
    assert deltars.files_within(PANEL, days[0], days[-1], lake_root=lake_root) is True
    assert deltars.files_within(PANEL, days[4], days[4], lake_root=lake_root) is False
    spark_io.write_dates(panel_df(spark, [days[4]], 7.0), PANEL, [days[4]], lake_root=lake_root)
    after = deltars.data_files(PANEL, lake_root=lake_root)
    assert set(files) - set(holding) <= set(after) and not set(holding) & set(after)
    got = {(r.date, r.code): r.x for r in spark_io.read_table(spark, PANEL, lake_root=lake_root).collect()}
    assert len(got) == 12 and got[(days[4], "13010")] == 7.0 and got[(days[5], "13010")] == 1.0


def test_a_table_with_reader_features_is_read_through_delta(spark, lake_root):
    from deltalake import write_deltalake

    rows = topix_rows([D1, D2], 100.0)
    arrow = pa.Table.from_pylist([dict(zip(TOPIX.column_names, r, strict=True)) for r in rows],
                                 schema=TOPIX.arrow_schema())
    write_deltalake(TOPIX.path(lake_root), arrow, partition_by=["date"],
                    configuration={"delta.enableDeletionVectors": "true"})
    # deletion vectors would hide rows from a plain Parquet read of the listed files
    assert deltars.data_files(TOPIX, lake_root=lake_root) is None
    got = as_set(spark_io.read_table(spark, TOPIX, start=D2, end=D2, lake_root=lake_root))
    assert got == set(topix_rows([D2], 100.0))
