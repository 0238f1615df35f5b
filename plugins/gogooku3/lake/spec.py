"""What a lake table is: ``TableSpec`` (name, columns, key, how its files are laid out).

Column types are short names mapped to Spark and Arrow types here, so both writers
(Spark and delta-rs) enforce the same schema. This module imports nothing of the lake
package: the catalogue and the config-built schemas both build on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

# short type name -> (Spark DDL type, Arrow type)
TYPES: dict[str, tuple[str, pa.DataType]] = {
    "string": ("STRING", pa.string()),
    "date": ("DATE", pa.date32()),
    "timestamp": ("TIMESTAMP", pa.timestamp("us", tz="UTC")),
    "double": ("DOUBLE", pa.float64()),
    "float": ("FLOAT", pa.float32()),
    "long": ("BIGINT", pa.int64()),
    "int": ("INT", pa.int32()),
    "boolean": ("BOOLEAN", pa.bool_()),
}

#: storage layouts of a table replaced by date
PARTITIONED = "partitioned"  # one Delta partition (directory) per date
CLUSTERED = "clustered"  # no Delta partitions; files hold runs of dates, sorted by date
#: values (rows x columns) a clustered file holds at most, ~32 MiB of float32: replacing a
#: date rewrites only the files whose date range holds it, so a file stays a bounded run
CLUSTERED_FILE_VALUES = 1 << 23


@dataclass(frozen=True)
class TableSpec:
    """A lake table: ``name`` is ``layer.table`` (e.g. ``silver.equities_prices_daily``).

    ``columns`` are ``(name, type)`` pairs in storage order; ``nullable`` columns may hold
    nulls (keys never may). ``partition_by`` is ``("date",)`` for daily panels — a write
    replaces exactly the dates it owns — or ``()`` for small tables replaced whole.
    ``storage`` says how a dated table's files are laid out: ``PARTITIONED`` (a Delta
    partition per date) or ``CLUSTERED`` (no Delta partitions: each write's files are
    sorted by date and a date is replaced with a data predicate, so a wide panel is
    stored in few large files instead of one small file per date).
    """

    name: str
    columns: tuple[tuple[str, str], ...]
    primary_key: tuple[str, ...]
    partition_by: tuple[str, ...] = ("date",)
    description: str = ""
    not_null: tuple[str, ...] = field(default=())
    storage: str = PARTITIONED

    def __post_init__(self) -> None:
        names = [c for c, _ in self.columns]
        for col in (*self.primary_key, *self.partition_by, *self.not_null):
            if col not in names:
                raise ValueError(f"{self.name}: key/partition column {col!r} not in schema")
        if not set(self.partition_by) <= set(self.primary_key):
            # a date's rows never share a key with another date's (writers check keys per date)
            raise ValueError(f"{self.name}: partition columns must be part of the primary key")
        if self.storage not in (PARTITIONED, CLUSTERED):
            raise ValueError(f"{self.name}: unknown storage {self.storage!r}")
        if self.storage == CLUSTERED and not self.partition_by:
            raise ValueError(f"{self.name}: clustered storage needs a date to cluster by")
        for col, typ in self.columns:
            if typ not in TYPES:
                raise ValueError(f"{self.name}.{col}: unknown type {typ!r}")

    @property
    def layer(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def short_name(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def column_names(self) -> list[str]:
        return [c for c, _ in self.columns]

    @property
    def delta_partitions(self) -> tuple[str, ...]:
        """The Delta partition columns of the stored table (none when clustered)."""
        return () if self.storage == CLUSTERED else self.partition_by

    @property
    def rows_per_file(self) -> int | None:
        """The most rows a writer puts in one file of a clustered table (``None``: no cap)."""
        if self.storage != CLUSTERED:
            return None
        return max(1, CLUSTERED_FILE_VALUES // len(self.columns))

    @property
    def required(self) -> frozenset[str]:
        """Columns that must never be null: keys, partitions and declared not-null."""
        return frozenset((*self.primary_key, *self.partition_by, *self.not_null))

    def arrow_schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field(c, TYPES[t][1], nullable=c not in self.required) for c, t in self.columns]
        )

    def spark_ddl(self) -> str:
        return ", ".join(f"`{c}` {TYPES[t][0]}" for c, t in self.columns)

    def path(self, lake_root: str) -> str:
        return f"{lake_root.rstrip('/')}/{self.layer}/{self.short_name}"
