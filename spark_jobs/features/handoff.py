"""Per-code features handed from the per-code pass to the cross-sectional pass as files.

The driver files the per-code pass's inputs by bucket (``<dir>/_inputs/prices-<n>.arrow``,
``events-<n>.arrow``): each task of that pass reads its bucket's rows. The per-code pass
(``series``) computes ~90 feature columns per row; the cross-sectional pass
(``crosssection``) needs them grouped by snapshot period. Through Spark those wide
rows went Arrow -> rows -> cache -> shuffle -> rows -> Arrow (``benchmarks/results/features.md``).
Instead each per-code task writes its bucket's rows of each period as one Arrow IPC file,
``<dir>/<period>/bucket-<n>.arrow``, and each cross-sectional task reads its period's
files. Only the narrow columns (keys, trailing returns) travel through Spark. The driver
files each period's peer-graph edges beside them (``<dir>/<period>/edges.arrow``).

The directory lives under the lake root (``_scratch/``) so that every executor of a
cluster reaches it (local path or ``s3://``); the build removes it once the chunk's tables
are written. A task that is retried or recomputed rewrites the same names with the same
rows, and a file appears under its name only when complete (written under a temporary
name, then moved), so a reader never sees a partial file.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from pyarrow import fs

from gogooku3.lake.worker_files import open_filesystem

SCRATCH = "_scratch"
_TEMP = ".tmp-"
_BUCKET = "bucket-"
_EDGES = "edges.arrow"
_INPUTS = "_inputs"


@dataclass(frozen=True)
class Handoff:
    """One build chunk's scratch directory of per-code rows (module docstring)."""

    uri: str

    @classmethod
    def start(cls, lake_root: str | None = None) -> Handoff:
        """A new, empty handoff under ``<lake root>/_scratch/``."""
        from gogooku3.settings import get_settings  # the driver's: the workers load no settings

        root = (lake_root or get_settings().lake_uri).rstrip("/")
        return cls(f"{root}/{SCRATCH}/features-{uuid.uuid4().hex[:12]}")

    def write(self, bucket: int, periods: np.ndarray, table: pa.Table) -> None:
        """Write ``table``'s rows (``date``, ``code``, features) of bucket ``bucket`` as one
        file per period; ``periods[i]`` is the period (a date) of row ``i``."""
        keys, inverse = np.unique(periods, return_inverse=True)
        for i, period in enumerate(keys):
            rows = table.take(pa.array(np.flatnonzero(inverse == i)))
            self._put(f"{_period_name(period)}/{_BUCKET}{bucket}.arrow", rows)

    def write_edges(self, period: dt.date, edges: pa.Table) -> None:
        """Write the peer-graph edges of the snapshot serving ``period`` (``peers``)."""
        self._put(f"{_period_name(period)}/{_EDGES}", edges)

    def write_inputs(self, bucket: int, prices: pa.Table, events: pa.Table | None) -> None:
        """File bucket ``bucket``'s price rows and as-of source rows (``series``)."""
        self._put(f"{_INPUTS}/prices-{bucket}.arrow", prices)
        if events is not None:
            self._put(f"{_INPUTS}/events-{bucket}.arrow", events)

    def read_inputs(self, bucket: int) -> tuple[pa.Table, pa.Table | None]:
        """The price rows and as-of source rows (``None``: none) ``write_inputs`` filed."""
        filesystem, root = open_filesystem(self.uri)
        prices = _read_file(filesystem, f"{root}/{_INPUTS}/prices-{bucket}.arrow")
        events = f"{root}/{_INPUTS}/events-{bucket}.arrow"
        if filesystem.get_file_info(events).type == fs.FileType.NotFound:
            return prices, None
        return prices, _read_file(filesystem, events)

    def read_edges(self, period: dt.date) -> pa.Table | None:
        """The edges ``write_edges`` wrote for ``period``, or ``None``."""
        filesystem, root = open_filesystem(self.uri)
        path = f"{root}/{_period_name(period)}/{_EDGES}"
        if filesystem.get_file_info(path).type == fs.FileType.NotFound:
            return None
        return _read_file(filesystem, path)

    def _put(self, name: str, table: pa.Table) -> None:
        """Write ``table`` as the Arrow IPC file ``name``, whole or not at all."""
        filesystem, root = open_filesystem(self.uri)
        folder, _, base = f"{root}/{name}".rpartition("/")
        filesystem.create_dir(folder, recursive=True)
        temp = f"{folder}/{_TEMP}{uuid.uuid4().hex}"
        with filesystem.open_output_stream(temp) as out, pa.ipc.new_file(out, table.schema) as w:
            w.write_table(table)
        filesystem.move(temp, f"{folder}/{base}")

    def read(self, period: dt.date) -> pa.Table | None:
        """Every bucket's rows of ``period``, or ``None`` when no bucket wrote any."""
        filesystem, root = open_filesystem(self.uri)
        selector = fs.FileSelector(f"{root}/{_period_name(period)}", allow_not_found=True)
        tables = []
        for info in sorted(filesystem.get_file_info(selector), key=lambda i: i.base_name):
            if info.base_name.startswith(_BUCKET):
                tables.append(_read_file(filesystem, info.path))
        return pa.concat_tables(tables) if tables else None

    def remove(self) -> None:
        """Delete the directory and everything in it (a missing one is fine)."""
        filesystem, root = open_filesystem(self.uri)
        if filesystem.get_file_info(root).type != fs.FileType.NotFound:
            filesystem.delete_dir(root)


def _read_file(filesystem: fs.FileSystem, path: str) -> pa.Table:
    with filesystem.open_input_file(path) as fh:
        return pa.ipc.open_file(fh).read_all()


def _period_name(period: dt.date | np.datetime64) -> str:
    return str(period)[:10]
