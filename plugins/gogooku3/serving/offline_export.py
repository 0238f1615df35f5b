"""Parquet snapshots of the gold Delta tables for Feast's file offline store.

One file per trade date per source: ``<offline_dir>/<source>/<YYYY-MM-DD>.parquet`` with
``code``, ``event_timestamp`` (the trade date at 00:00 UTC), the exported gold columns and
the packed vectors of the online views (``feature_views.Vector``: one list per row, the
columns in catalogue order, a null value as NaN).
An export of ``[start, end]`` replaces exactly the files of those dates (each written to
a temporary name and renamed, so a reader never sees half a file) and removes the files
of dates in the range that the gold table no longer holds. Re-running it is a no-op.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gogooku3.lake import deltars
from gogooku3.serving.feature_views import (
    ENTITY,
    EVENT_TIMESTAMP,
    SOURCE_TABLES,
    Vector,
    source_columns,
    source_vectors,
)

log = logging.getLogger(__name__)

#: trade dates read from Delta per batch (bounds memory on multi-year backfills)
CHUNK_DAYS = 20


def event_timestamps(dates: pa.Array) -> pa.Array:
    """Trade dates -> UTC timestamps at 00:00 of that date (Feast's event time)."""
    return pc.cast(pc.cast(dates, pa.timestamp("s")), pa.timestamp("us", tz="UTC"))


def pack(table: pa.Table, vector: Vector) -> pa.Array:
    """``vector.columns`` of ``table`` as one list per row (nulls -> NaN, element type kept)."""
    dtype = np.float32 if vector.element == "float" else np.float64
    width = len(vector.columns)
    matrix = np.empty((table.num_rows, width), dtype=dtype)
    for i, name in enumerate(vector.columns):
        matrix[:, i] = table.column(name).to_numpy(zero_copy_only=False)  # null -> NaN
    offsets = pa.array(np.arange(0, table.num_rows * width + 1, width, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(matrix.ravel()))


def _date_files(directory: Path) -> dict[dt.date, Path]:
    out = {}
    for path in directory.glob("*.parquet"):
        try:
            out[dt.date.fromisoformat(path.stem)] = path
        except ValueError:
            continue
    return out


def export_source(
    source: str, start: dt.date, end: dt.date, offline_dir: Path, lake_root: str | None = None
) -> list[dt.date]:
    """Export ``[start, end]`` of ``source``'s gold table; return the dates written.

    Files of the window's dates that gold no longer has, and files of any date whose
    schema is not the one written now (an earlier layout), are removed.

    Raises ``gogooku3.lake.errors.TableNotFound`` (naming the table) when the gold table
    does not exist; nothing under ``offline_dir`` changes then.
    """
    table = SOURCE_TABLES[source]
    columns = source_columns()[source]
    directory = offline_dir / source
    data = deltars.read_table(table, start, end, columns=["date", ENTITY, *columns],
                              lake_root=lake_root)
    directory.mkdir(parents=True, exist_ok=True)
    dates = sorted(pc.unique(data.column("date")).to_pylist())
    for date in dates:
        day = data.filter(pc.field("date") == pa.scalar(date, pa.date32()))
        out = pa.table(
            {ENTITY: day.column(ENTITY), EVENT_TIMESTAMP: event_timestamps(day.column("date")),
             **{c: day.column(c) for c in columns},
             **{v.field: pack(day, v) for v in source_vectors()[source]}}
        )
        target = directory / f"{date.isoformat()}.parquet"
        tmp = target.with_suffix(".parquet.tmp")
        pq.write_table(out, tmp)
        os.replace(tmp, target)
    files = _date_files(directory)
    stale = [p for d, p in files.items() if start <= d <= end and d not in dates]
    if dates:  # Feast reads the directory as one dataset: one schema, today's
        layout = pq.read_schema(directory / f"{dates[0].isoformat()}.parquet")
        stale += [p for d, p in files.items() if not start <= d <= end
                  and not pq.read_schema(p).equals(layout, check_metadata=False)]
    for path in stale:
        path.unlink()
    log.info("%s: exported %d dates %s..%s to %s (%d stale removed: dates gone from gold "
             "or files of an earlier layout)", table, len(dates), start, end, directory,
             len(stale))
    return dates


def export_range(
    source: str, start: dt.date, end: dt.date, offline_dir: Path, lake_root: str | None = None
) -> list[dt.date]:
    """``export_source`` in batches of ``CHUNK_DAYS`` calendar days; all dates written."""
    written: list[dt.date] = []
    lo = start
    while lo <= end:
        hi = min(end, lo + dt.timedelta(days=CHUNK_DAYS - 1))
        written += export_source(source, lo, hi, offline_dir, lake_root)
        lo = hi + dt.timedelta(days=1)
    return written


def exported_dates(source: str, offline_dir: Path) -> list[dt.date]:
    """Dates with a snapshot file for ``source``, ascending."""
    return sorted(_date_files(offline_dir / source))
