"""Files written by a Spark pass's Python workers and committed by delta-rs
(``gogooku3.lake.worker_files``): the replace contract of ``spark_io.write_dates``."""

import datetime as dt
from pathlib import Path

import pytest

from gogooku3.lake import deltars, spark_io
from gogooku3.lake import spec as spec_mod
from gogooku3.lake.spec import CLUSTERED, TableSpec
from gogooku3.lake.worker_files import FILE_SCHEMA, WorkerFiles

pytestmark = pytest.mark.spark

PANEL = TableSpec(
    name="gold.test_worker_panel",
    columns=(("date", "date"), ("code", "string"), ("x", "float")),
    primary_key=("date", "code"),
    storage=CLUSTERED,
)
DAYS = [dt.date(2026, 11, 24) + dt.timedelta(days=i) for i in range(3)]


def panel(spark, days, level):
    rows = [(d, c, level + i) for d in days for i, c in enumerate(("13010", "72030"))]
    return spark.createDataFrame(rows, PANEL.spark_ddl())


def by_workers(sink, df, fail_on=None):
    """One group per date, each written by a worker through ``sink``; returns the file rows."""
    def per_date(rows):
        if fail_on is not None and (rows["date"] == fail_on).any():
            raise RuntimeError("worker failed")
        return rows.sort_values("code")

    return df.groupBy("date").applyInPandas(sink.wrap(per_date), FILE_SCHEMA).collect()


def stored(spark, lake_root):
    return sorted(tuple(r) for r in spark_io.read_table(spark, PANEL, lake_root=lake_root).collect())


def names(lake_root):
    return sorted(p.name for p in Path(PANEL.path(lake_root)).glob("*.parquet"))


def test_a_worker_write_replaces_its_dates_rewriting_a_file_that_holds_others(spark, lake_root):
    spark_io.write_dates(panel(spark, DAYS, 1.0).coalesce(1), PANEL, DAYS, lake_root=lake_root)
    assert len(deltars.data_files(PANEL, lake_root=lake_root)) == 1  # D0..D2 in one file
    sink = WorkerFiles.start(PANEL, lake_root)
    files = by_workers(sink, panel(spark, DAYS[1:2], 5.0))
    retried = Path(PANEL.path(lake_root)) / f"part-{sink.write_id}-retried.snappy.parquet"
    retried.write_bytes(b"a failed attempt's file")
    commit = sink.commit(files, DAYS[1:2])
    assert commit.rows == 2
    assert stored(spark, lake_root) == [(DAYS[0], "13010", 1.0), (DAYS[0], "72030", 2.0),
                                        (DAYS[1], "13010", 5.0), (DAYS[1], "72030", 6.0),
                                        (DAYS[2], "13010", 1.0), (DAYS[2], "72030", 2.0)]
    assert not retried.exists()
    # the other dates' rows were rewritten into a file of this write; delta-rs reads the same
    assert deltars.read_table(PANEL, start=DAYS[2], lake_root=lake_root).num_rows == 2
    assert deltars.files_within(PANEL, DAYS[1], DAYS[1], lake_root=lake_root) is False
    sink.discard()  # after the commit it keeps every listed file
    assert len(stored(spark, lake_root)) == 6


def test_files_are_capped_and_a_failed_write_leaves_the_table_and_no_file(
        spark, lake_root, monkeypatch):
    monkeypatch.setattr(spec_mod, "CLUSTERED_FILE_VALUES", 1 * len(PANEL.columns))
    sink = WorkerFiles.start(PANEL, lake_root)
    files = by_workers(sink, panel(spark, DAYS, 1.0))
    sink.commit(files, DAYS)
    assert len(files) == 6 and {f.rows for f in files} == {1}  # one row per file
    before, listed = stored(spark, lake_root), names(lake_root)

    failing = WorkerFiles.start(PANEL, lake_root)
    with pytest.raises(Exception, match="worker failed"):
        by_workers(failing, panel(spark, DAYS, 9.0), fail_on=DAYS[2])
    assert len(names(lake_root)) > len(listed), "the other dates' workers wrote their files"
    failing.discard()
    assert stored(spark, lake_root) == before and names(lake_root) == listed
