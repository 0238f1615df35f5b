"""Checks shared by the Spark and delta-rs writers, so both enforce one contract.

A write owns a set of trade dates: every row must carry one of them, keys must be
non-null and unique, and the columns and types must equal the catalogue's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import pyarrow as pa

from gogooku3.lake.errors import LakeDateError, LakeSchemaError
from gogooku3.lake.spec import TableSpec

_ARROW_NAMES = {
    pa.string(): "string",
    pa.large_string(): "string",
    pa.date32(): "date",
    pa.float64(): "double",
    pa.float32(): "float",
    pa.int64(): "long",
    pa.int32(): "int",
    pa.bool_(): "boolean",
}

_SPARK_NAMES = {
    "StringType": "string",
    "DateType": "date",
    "TimestampType": "timestamp",
    "DoubleType": "double",
    "FloatType": "float",
    "LongType": "long",
    "IntegerType": "int",
    "BooleanType": "boolean",
}


class Commit(NamedTuple):
    """What a ``write_dates`` committed: the table's new Delta version and the rows written
    (``None`` where Delta recorded no row count)."""

    version: int
    rows: int | None


def arrow_type_name(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_string_view(t):
        return "string"
    return _ARROW_NAMES.get(t, str(t))


def spark_type_name(t) -> str:
    return _SPARK_NAMES.get(type(t).__name__, t.simpleString())


def check_schema(spec: TableSpec, actual: Sequence[tuple[str, str]]) -> None:
    """Raise ``LakeSchemaError`` unless ``actual`` has exactly the catalogue's columns and types.

    Column order may differ (writers reorder); names are case-sensitive.
    """
    expected = dict(spec.columns)
    got = dict(actual)
    missing = [c for c in expected if c not in got]
    extra = [c for c in got if c not in expected]
    wrong = [f"{c} is {got[c]}, expected {t}" for c, t in expected.items() if c in got and got[c] != t]
    if missing or extra or wrong:
        parts = []
        if missing:
            parts.append(f"missing columns {missing}")
        if extra:
            parts.append(f"unexpected columns {extra}")
        if wrong:
            parts.append("wrong types: " + "; ".join(wrong))
        raise LakeSchemaError(f"{spec.name}: schema does not match the catalogue: {', '.join(parts)}")


def owned_dates(spec: TableSpec, dates: Iterable[dt.date] | None) -> list[dt.date] | None:
    """Validate the dates a write replaces: required for date-partitioned tables, else None."""
    if not spec.partition_by:
        if dates is not None:
            raise LakeDateError(f"{spec.name}: not partitioned by date; it is replaced whole")
        return None
    if dates is None:
        raise LakeDateError(f"{spec.name}: a write must name the trade dates it replaces")
    owned = sorted(set(dates))
    if not owned:
        raise LakeDateError(f"{spec.name}: a write must own at least one trade date")
    return owned


def check_row_dates(spec: TableSpec, row_dates: Iterable[dt.date], owned: list[dt.date]) -> None:
    stray = sorted(set(row_dates) - set(owned))
    if stray:
        shown = ", ".join(d.isoformat() for d in stray[:5])
        raise LakeDateError(
            f"{spec.name}: rows dated {shown}{' …' if len(stray) > 5 else ''} are outside the "
            f"dates this write replaces ({owned[0]}..{owned[-1]}, {len(owned)} dates)"
        )


def replace_predicate(spec: TableSpec, owned: list[dt.date]) -> str:
    """SQL predicate selecting exactly ``owned`` dates (Delta replaceWhere / delta-rs predicate)."""
    (col,) = spec.partition_by
    listed = ", ".join(f"'{d.isoformat()}'" for d in owned)
    return f"{col} IN ({listed})"


def describe_keys(spec: TableSpec, rows: Sequence[dict]) -> str:
    return "; ".join(
        ", ".join(f"{k}={r[k]}" for k in spec.primary_key) + f" (x{r['n']})" for r in rows
    )
