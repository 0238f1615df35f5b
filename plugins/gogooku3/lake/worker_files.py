"""A clustered table written by the Python workers of a Spark pass, committed by delta-rs.

Spark's Parquet writer is row-based: the Arrow batches a pandas UDF returns become rows and
then columns again. For the 320 float32 columns of ``gold.features`` that round trip cost
4x pyarrow writing the same batches (``benchmarks/results/features.md``). So a grouped pass
whose output goes to one clustered table can write its groups' rows as Parquet files itself
(``WorkerFiles.wrap``: the UDF returns one row per file, ``FILE_SCHEMA``) and the driver
commits those files in one Delta transaction (``WorkerFiles.commit``) that also removes
the stored files holding owned dates — rewriting, without those dates, a file that also
holds others — which is what ``replaceWhere`` does. The contract of
``spark_io.write_dates`` holds: exactly the owned dates replaced, in one atomic commit;
files of failed task attempts or of a failed write are never in the log and are deleted.

Files are named ``part-<write id>-<uuid>.snappy.parquet`` in the table's directory; a
group's rows (in key order) are cut into files of at most ``spec.rows_per_file`` rows.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import fs

if TYPE_CHECKING:
    from gogooku3.lake.contract import Commit
    from gogooku3.lake.spec import TableSpec

# The Python workers import this module (``wrap``'s functions): what only the driver
# runs (``start``, ``commit``, ``discard``) imports the lake's Delta and settings modules
# itself, which would add ~0.6 s (2-3 s on a loaded machine) to each worker's start.

log = logging.getLogger(__name__)

#: the rows a wrapped UDF returns: one per file it wrote
FILE_SCHEMA = "path string, size long, rows long, stats string"
FILE_COLUMNS = ["path", "size", "rows", "stats"]


def open_filesystem(uri: str) -> tuple[fs.FileSystem, str]:
    """pyarrow filesystem and path of a table root (local path or ``s3://``; S3 endpoint,
    region and credentials from the environment, as delta-rs and the ingest staging)."""
    if "://" not in uri:
        return fs.LocalFileSystem(), uri
    return fs.FileSystem.from_uri(uri.replace("s3a://", "s3://", 1))


def _stats(table: pa.Table) -> str:
    """Delta ``stats`` of a file: row count and the key columns' bounds (data skipping and
    ``deltars.file_dates`` read a file's date range from them)."""
    def bound(fn, col: str) -> str:
        value = fn(table.column(col)).as_py()
        return value.isoformat() if isinstance(value, dt.date) else value

    keys = ("date", "code")
    return json.dumps({"numRecords": table.num_rows,
                       "minValues": {c: bound(pc.min, c) for c in keys},
                       "maxValues": {c: bound(pc.max, c) for c in keys},
                       "nullCount": {c: table.column(c).null_count for c in keys}})


def _write_file(filesystem: fs.FileSystem, root: str, write_id: str, table: pa.Table) -> dict:
    """Write ``table`` as one new file of the write; return its ``FILE_COLUMNS``."""
    name = f"part-{write_id}-{uuid.uuid4()}.snappy.parquet"
    with filesystem.open_output_stream(f"{root}/{name}") as out:
        pq.write_table(table, out, compression="snappy", use_dictionary=False)
    return {"path": name, "size": filesystem.get_file_info(f"{root}/{name}").size,
            "rows": table.num_rows, "stats": _stats(table)}


@dataclass(frozen=True)
class WorkerFiles:
    """One write of ``spec`` by a grouped pass's workers (module docstring)."""

    spec: TableSpec
    uri: str
    lake_root: str | None
    write_id: str

    @classmethod
    def start(cls, spec: TableSpec, lake_root: str | None = None) -> WorkerFiles:
        from gogooku3.settings import get_settings

        if spec.delta_partitions:
            raise ValueError(f"{spec.name}: worker files are for clustered tables")
        uri = spec.path(lake_root or get_settings().lake_uri)
        return cls(spec, uri, lake_root, uuid.uuid4().hex[:12])

    def wrap(self, fn: Callable[..., pd.DataFrame]) -> Callable[..., pd.DataFrame]:
        """``fn`` (a grouped ``(rows)`` or cogrouped ``(left, right)`` pandas UDF returning
        ``spec``'s columns as a pandas or Arrow table, rows in key order) → a UDF of the
        same arguments (Spark reads their number) writing those rows as files and
        returning their ``FILE_SCHEMA`` rows."""
        schema, cap = self.spec.arrow_schema(), self.spec.rows_per_file or 1 << 62
        uri, write_id = self.uri, self.write_id

        def write(out: pd.DataFrame | pa.Table) -> pd.DataFrame:
            table = (out.select(schema.names).cast(schema) if isinstance(out, pa.Table) else
                     pa.Table.from_pandas(out[schema.names], schema=schema, preserve_index=False))
            filesystem, root = open_filesystem(uri)
            filesystem.create_dir(root, recursive=True)
            files = [_write_file(filesystem, root, write_id, table.slice(i, cap))
                     for i in range(0, table.num_rows, cap)]
            return pd.DataFrame(files, columns=FILE_COLUMNS)

        def grouped(rows: pd.DataFrame) -> pd.DataFrame:
            return write(fn(rows))

        def cogrouped(left: pd.DataFrame, right: pd.DataFrame) -> pd.DataFrame:
            return write(fn(left, right))

        return grouped if len(inspect.signature(fn).parameters) == 1 else cogrouped

    def commit(self, files: Sequence, owned: list[dt.date]) -> Commit:
        """Commit ``files`` (the wrapped UDF's rows) replacing ``owned`` dates; delete this
        write's files that are not in the log (retried tasks). Returns the commit."""
        from deltalake import Schema
        from deltalake.transaction import RemoveAction, create_table_with_add_actions

        from gogooku3.lake import contract, deltars
        from gogooku3.lake.errors import TableNotFound

        spec, started = self.spec, time.perf_counter()
        filesystem, root = open_filesystem(self.uri)
        now = int(time.time() * 1000)
        new = [_add(f.path, f.size, f.stats, now) for f in files]
        try:
            table = deltars.open_table(spec, self.lake_root)
        except TableNotFound:
            create_table_with_add_actions(self.uri, Schema.from_arrow(spec.arrow_schema()), new,
                                          storage_options=deltars.storage_options(self.uri))
        else:
            removed, kept = self._replaced(table, filesystem, root, owned, now)
            table.create_write_transaction(
                [*[RemoveAction(p, True, now, size, {}) for p, size in removed], *kept, *new],
                mode="append", schema=table.schema())
        after = deltars.open_table(spec, self.lake_root)
        self._delete_orphans(filesystem, root, after.file_uris())
        commit = contract.Commit(after.version(), sum(f.rows for f in files))
        log.info("%s: wrote %d rows in %d files for %d dates %s..%s -> version %d in %.1f s",
                 spec.name, commit.rows, len(new), len(owned), owned[0], owned[-1],
                 commit.version, time.perf_counter() - started)
        return commit

    def discard(self) -> None:
        """Delete this write's files that the log does not list (after a failure)."""
        from gogooku3.lake import deltars
        from gogooku3.lake.errors import TableNotFound

        filesystem, root = open_filesystem(self.uri)
        try:
            listed = deltars.open_table(self.spec, self.lake_root).file_uris()
        except TableNotFound:
            listed = []
        self._delete_orphans(filesystem, root, listed)

    def _replaced(self, table, filesystem: fs.FileSystem, root: str, owned: list[dt.date],
                  now: int) -> tuple[list[tuple[str, int]], list]:
        """Stored files whose date range meets ``owned``: (path, size) to remove, and the
        adds of their rows on other dates, rewritten into files of this write."""
        from gogooku3.lake import deltars

        actions = pa.table(table.get_add_actions(flatten=True))
        if not actions.num_rows:
            return [], []
        first, last = deltars.file_dates(self.spec, actions)
        paths, sizes = actions.column("path").to_pylist(), actions.column("size_bytes").to_pylist()
        lo, hi, dates = owned[0], owned[-1], pa.array(owned, pa.date32())
        removed, kept = [], []
        for i, path in enumerate(paths):
            f, la = (None, None) if first is None else (first[i].as_py(), last[i].as_py())
            if f is not None and la is not None and (la < lo or f > hi):
                continue
            removed.append((path, sizes[i]))
            with filesystem.open_input_file(f"{root}/{path}") as fh:
                held = pq.read_table(fh, columns=["date"]).column("date")
            other = pc.invert(pc.is_in(held, value_set=dates))
            if not pc.any(other).as_py():  # every row on an owned date: drop the file
                continue
            with filesystem.open_input_file(f"{root}/{path}") as fh:
                rows = pq.read_table(fh, schema=self.spec.arrow_schema()).filter(other)
            if rows.num_rows:
                f = _write_file(filesystem, root, self.write_id, rows)
                kept.append(_add(f["path"], f["size"], f["stats"], now))
        return removed, kept

    def _delete_orphans(self, filesystem: fs.FileSystem, root: str, listed: list[str]) -> None:
        """Delete the files of this write that are not among ``listed`` (the table's current
        files): those of retried tasks, or all of them when the commit never happened."""
        names = {uri.rsplit("/", 1)[-1] for uri in listed}
        prefix = f"part-{self.write_id}-"
        for info in filesystem.get_file_info(fs.FileSelector(root, allow_not_found=True)):
            if info.base_name.startswith(prefix) and info.base_name not in names:
                filesystem.delete_file(info.path)


def _add(path: str, size: int, stats: str, now: int):
    from deltalake.transaction import AddAction

    return AddAction(path, size, {}, now, True, stats)

