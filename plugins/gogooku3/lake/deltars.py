"""JVM-free access to catalogued Delta tables through delta-rs (``deltalake``).

For Python consumers that should not start Spark: ingestion of small daily
pages, training, Feast, ``gogooku3 lake ls``. Writes enforce the same contract
as the Spark writer (``gogooku3.lake.contract``) and replace exactly the owned
dates in one commit.

A lake on ``s3://`` gets the endpoint and region from the settings
(``AWS_ENDPOINT_URL``, ``AWS_REGION``); delta-rs reads the credentials from the
environment itself, so they never pass through this code.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from gogooku3.lake import catalog, contract
from gogooku3.lake.errors import LakeDateError, LakeDuplicateKeyError, TableNotFound
from gogooku3.lake.spec import CLUSTERED_FILE_VALUES, TableSpec
from gogooku3.settings import get_settings

log = logging.getLogger(__name__)

__all__ = ["TableNotFound", "read_table", "write_dates", "check_write", "table_dates",
           "table_info", "TableInfo"]


def _spec(table: str | TableSpec) -> TableSpec:
    return table if isinstance(table, TableSpec) else catalog.table(table)


def _root(lake_root: str | None) -> str:
    return lake_root or get_settings().lake_uri


def storage_options(path: str) -> dict[str, str] | None:
    """delta-rs storage options for a table path: None locally, endpoint/region on S3."""
    if not path.startswith(("s3://", "s3a://")):
        return None
    settings = get_settings()
    options = {"AWS_REGION": settings.s3_region}
    if settings.s3_endpoint_url:
        options["AWS_ENDPOINT_URL"] = settings.s3_endpoint_url
        options["AWS_ALLOW_HTTP"] = str(settings.s3_endpoint_url.startswith("http://")).lower()
    return options


def open_table(spec: TableSpec, lake_root: str | None):
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    path = spec.path(_root(lake_root))
    try:
        return DeltaTable(path, storage_options=storage_options(path))
    except TableNotFoundError as exc:
        raise TableNotFound(f"{spec.name}: no Delta table at {path}") from exc


def read_table(
    table: str | TableSpec,
    start: dt.date | None = None,
    end: dt.date | None = None,
    columns: Sequence[str] | None = None,
    lake_root: str | None = None,
) -> pa.Table:
    """Arrow table of ``table`` with ``start <= date <= end`` (partition-pruned), catalogue order.

    A local table without reader features is read as a pyarrow dataset over the files
    its log lists for the range (``data_files``); delta-rs's own dataset spent ~5 ms per
    file building it (6.3 s against 1.4 s for 1,224 files of daily statements)."""
    spec = _spec(table)
    dataset = _file_dataset(spec, start, end, lake_root)
    if dataset is None:
        dataset = open_table(spec, lake_root).to_pyarrow_dataset()
    expr = None
    if start is not None or end is not None:
        if not spec.partition_by:
            raise LakeDateError(f"{spec.name}: not partitioned by date; read it whole")
        if start is not None:
            expr = pc.field("date") >= pa.scalar(start, pa.date32())
        if end is not None:
            upper = pc.field("date") <= pa.scalar(end, pa.date32())
            expr = upper if expr is None else expr & upper
    out = dataset.to_table(columns=list(columns or spec.column_names), filter=expr)
    return out


def _file_dataset(spec: TableSpec, start: dt.date | None, end: dt.date | None,
                  lake_root: str | None):
    """A pyarrow dataset of the files ``data_files`` lists, with the catalogue's schema
    (partition columns from the hive paths), or ``None`` for a table on object storage
    or with reader features (read through delta-rs)."""
    import pyarrow.dataset as ds

    root = spec.path(_root(lake_root))
    if "://" in root.removeprefix("file://"):
        return None
    files = data_files(spec, start, end, lake_root)
    if files is None:
        return None
    schema = spec.arrow_schema()
    parts = spec.delta_partitions
    partitioning = ds.partitioning(pa.schema([schema.field(c) for c in parts]), flavor="hive"
                                   ) if parts else None
    return ds.dataset([f.removeprefix("file://") for f in files], schema=schema,
                      format="parquet", partitioning=partitioning,
                      partition_base_dir=root.removeprefix("file://"))


def write_dates(
    data: pa.Table,
    table: str | TableSpec,
    dates: Iterable[dt.date] | None,
    lake_root: str | None = None,
) -> contract.Commit:
    """Replace ``dates`` of ``table`` with ``data`` in one commit; return that commit.

    Same contract and errors as ``gogooku3.lake.spark_io.write_dates``.
    """
    return check_write(data, table, dates, lake_root).commit()


def check_write(data: pa.Table, table: str | TableSpec, dates: Iterable[dt.date] | None,
                lake_root: str | None = None) -> CheckedWrite:
    """Run the checks of ``write_dates`` now (same arguments and errors) and return the
    write, stored by its ``commit()``: a job checks all its tables before it writes any."""
    spec = _spec(table)
    owned = contract.owned_dates(spec, dates)
    contract.check_schema(spec, [(f.name, contract.arrow_type_name(f.type)) for f in data.schema])
    data = data.select(spec.column_names).cast(spec.arrow_schema())
    for col in sorted(spec.required):
        if data.column(col).null_count:
            raise LakeDateError(f"{spec.name}: null in key column {col!r}")
    if owned is not None:
        contract.check_row_dates(spec, pc.unique(data.column("date")).to_pylist(), owned)
    _check_unique(spec, data, owned)
    if owned is not None and not spec.delta_partitions:  # clustered: files in key order
        data = data.sort_by([(k, "ascending") for k in spec.primary_key])
    return CheckedWrite(data, spec, owned, spec.path(_root(lake_root)), lake_root)


@dataclass(frozen=True)
class CheckedWrite:
    """Rows of ``spec`` that passed ``check_write``; nothing is stored until ``commit()``."""

    data: pa.Table
    spec: TableSpec
    owned: list[dt.date] | None
    path: str
    lake_root: str | None

    def commit(self) -> contract.Commit:
        """Store the rows in one Delta commit (``write_dates``); return that commit."""
        from deltalake import write_deltalake

        spec, path = self.spec, self.path
        if self.owned is not None:
            write_deltalake(
                path,
                self.data,
                mode="overwrite",
                partition_by=list(spec.delta_partitions) or None,
                predicate=contract.replace_predicate(spec, self.owned),
                storage_options=storage_options(path),
                # clustered: files of about 2^23 float32 values, short runs of dates
                target_file_size=None if spec.delta_partitions else CLUSTERED_FILE_VALUES * 4,
            )
        else:
            write_deltalake(path, self.data, mode="overwrite", storage_options=storage_options(path))
        version = open_table(spec, self.lake_root).version()
        log.info("%s: wrote %d rows -> version %d", spec.name, self.data.num_rows, version)
        return contract.Commit(version, self.data.num_rows)


def _check_unique(spec: TableSpec, data: pa.Table, owned: list[dt.date] | None) -> None:
    counts = data.group_by(list(spec.primary_key)).aggregate([([], "count_all")])
    dupes = counts.filter(pc.field("count_all") > 1)
    if dupes.num_rows:
        rows = dupes.rename_columns([*spec.primary_key, "n"]).slice(0, 5).to_pylist()
        where = f" on {owned[0]}..{owned[-1]}" if owned else ""
        raise LakeDuplicateKeyError(
            f"{spec.name}: duplicate primary key {spec.primary_key}{where}: "
            + contract.describe_keys(spec, rows)
        )


@dataclass(frozen=True)
class TableInfo:
    name: str
    version: int | None
    rows: int
    first_date: dt.date | None
    last_date: dt.date | None
    dates: int


def data_files(
    table: str | TableSpec,
    start: dt.date | None = None,
    end: dt.date | None = None,
    lake_root: str | None = None,
) -> list[str] | None:
    """Absolute URIs of the Parquet files of the current version that may hold rows of
    ``table`` dated ``start..end``, from the Delta log (partition values, or a clustered
    file's ``date`` statistics); every file when no range is given.

    ``None`` when the table's protocol has reader features (deletion vectors, column
    mapping) that a plain Parquet read of these files would ignore. Raises
    ``TableNotFound`` naming the table if it has not been written.
    """
    spec = _spec(table)
    dt_ = open_table(spec, lake_root)
    protocol = dt_.protocol()
    if protocol.min_reader_version > 1 or protocol.reader_features:
        return None
    actions = pa.table(dt_.get_add_actions(flatten=True))
    if not actions.num_rows:
        return []
    first, last = file_dates(spec, actions)
    keep = pa.array([True] * actions.num_rows)
    if last is not None and start is not None:
        keep = pc.and_(keep, pc.fill_null(pc.greater_equal(last, pa.scalar(start, pa.date32())), True))
    if first is not None and end is not None:
        keep = pc.and_(keep, pc.fill_null(pc.less_equal(first, pa.scalar(end, pa.date32())), True))
    root = dt_.table_uri.rstrip("/")
    return [f"{root}/{p}" for p in actions.filter(keep).column("path").to_pylist()]


def files_within(table: str | TableSpec, start: dt.date, end: dt.date,
                 lake_root: str | None = None) -> bool | None:
    """Whether every file of ``table`` holds only dates in ``start..end``, from the Delta
    log's partition values or ``date`` statistics (no data read); ``None`` when a file's
    range is unknown. Raises ``TableNotFound`` if the table has not been written."""
    spec = _spec(table)
    actions = pa.table(open_table(spec, lake_root).get_add_actions(flatten=True))
    if not actions.num_rows:
        return True
    first, last = file_dates(spec, actions)
    if first is None or first.null_count or last.null_count:
        return None
    return (pc.min(first).as_py() >= start) and (pc.max(last).as_py() <= end)


def file_dates(spec: TableSpec, actions: pa.Table):
    """Each file's first and last date (arrays aligned with ``actions``), or ``(None, None)``
    when the log holds neither partition values nor ``date`` statistics."""
    if spec.delta_partitions:
        dates = actions.column("partition.date").cast(pa.date32())
        return dates, dates
    if "min.date" in actions.column_names:
        return actions.column("min.date"), actions.column("max.date")
    return None, None


def table_dates(table: str | TableSpec, lake_root: str | None = None) -> list[dt.date]:
    """The sorted dates that hold rows of a date-keyed ``table``: from the Delta log's
    partition values (no data read), or for a clustered table from its ``date`` column.
    Raises ``TableNotFound`` naming the table if it has not been written."""
    spec = _spec(table)
    if not spec.partition_by:
        raise LakeDateError(f"{spec.name}: not partitioned by date; it has no dates")
    return _dates(spec, open_table(spec, lake_root))


def _dates(spec: TableSpec, table) -> list[dt.date]:
    if not spec.delta_partitions:  # clustered: the date column itself
        col = table.to_pyarrow_dataset().to_table(columns=list(spec.partition_by)).column(0)
        return sorted(pc.unique(col).to_pylist())
    actions = pa.table(table.get_add_actions(flatten=True))
    if not actions.num_rows:
        return []
    raw = actions.column("partition.date").to_pylist()
    return sorted({d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d)) for d in raw})


def table_info(table: str | TableSpec, lake_root: str | None = None) -> TableInfo:
    """Version, row count and date range from the Delta log (for a clustered table the
    dates come from its ``date`` column)."""
    spec = _spec(table)
    try:
        dt_ = open_table(spec, lake_root)
    except TableNotFound:
        return TableInfo(spec.name, None, 0, None, None, 0)
    actions = pa.table(dt_.get_add_actions(flatten=True))
    rows = int(pc.sum(actions.column("num_records")).as_py() or 0) if actions.num_rows else 0
    dates = _dates(spec, dt_) if spec.partition_by and actions.num_rows else []
    return TableInfo(
        spec.name, dt_.version(), rows, dates[0] if dates else None,
        dates[-1] if dates else None, len(dates),
    )
