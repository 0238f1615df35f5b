"""Bronze: J-Quants rows (API pages or J-Quants-shaped files) -> typed Arrow per the catalogue.

Contract:

* Columns are the API's names with the catalogue's types, plus ``date`` (the endpoint's
  partition field, e.g. ``Date`` or ``DiscDate``) and the ingest metadata
  ``_ingested_at`` (UTC) and ``_source`` (``api:<path>`` or ``files:<file>``).
* A catalogue column absent from every row, or a value that cannot be read as its type
  (a price "abc", a date "2024-13-01"), raises ``BronzeSchemaError`` naming the table,
  the date and the column. Fields the catalogue does not know (e.g. Premium-only
  morning-session bars) are dropped and logged once.
* A by-day page whose rows are dated other than the day asked raises; a trading day
  without rows of a *dense* endpoint (daily bars, master, TOPIX) is reported by
  ``empty_trading_days`` (an error for that date, never an empty partition).
* ``write_bronze`` replaces exactly the given dates in one Delta commit (delta-rs).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from gogooku3.jpx.calendar import TradingCalendar
from gogooku3.jpx.margin import publication_dates
from gogooku3.jquants.endpoints import ENDPOINTS, Endpoint
from gogooku3.jquants.pages import rows_table
from gogooku3.lake import catalog, contract, deltars
from gogooku3.lake.catalog import INGEST_COLUMNS, TableSpec

log = logging.getLogger(__name__)

_META = {c for c, _ in INGEST_COLUMNS}


class BronzeError(ValueError):
    """Rows that cannot become bronze; the message names table, date and problem."""


class BronzeSchemaError(BronzeError):
    """A missing column or a value that does not parse as the catalogue's type."""


def api_fields(endpoint: Endpoint) -> list[tuple[str, str, str]]:
    """``(api_field, bronze_column, type)`` for every field the endpoint sends.

    The partition field maps to ``date`` when it is the API's ``Date`` (Delta column
    names are case-insensitive, so ``Date`` and ``date`` cannot both exist).
    """
    spec = catalog.table(endpoint.table)
    types = dict(spec.columns)
    inverse = {b: a for a, b in endpoint.renames}
    out = [(inverse.get(c, c), c, t) for c, t in spec.columns if c != "date" and c not in _META]
    if endpoint.bronze_name(endpoint.partition_field) == "date":
        out.insert(0, (endpoint.partition_field, "date", types["date"]))
    return out


def _where(spec: TableSpec, day: dt.date | None) -> str:
    return f"{spec.name}{'' if day is None else f' on {day}'}"


def _as_double(col: pa.ChunkedArray | pa.Array, spec: TableSpec, name: str, day) -> pa.Array:
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    t = col.type
    if pa.types.is_null(t) or pa.types.is_integer(t) or pa.types.is_floating(t):
        return col.cast(pa.float64())
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        stripped = pc.utf8_trim_whitespace(col)
        cleaned = pc.if_else(pc.equal(stripped, ""), pa.scalar(None, col.type), stripped)
        try:
            return cleaned.cast(pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise BronzeSchemaError(
                f"{_where(spec, day)}: column {name!r} has non-numeric values ({exc})"
            ) from None
    raise BronzeSchemaError(f"{_where(spec, day)}: column {name!r} is {t}, expected a number")


def _as_date(col, spec: TableSpec, name: str, day) -> pa.Array:
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    t = col.type
    if pa.types.is_null(t):
        return col.cast(pa.date32())
    if pa.types.is_date(t):
        return col.cast(pa.date32())
    if pa.types.is_timestamp(t):
        return pc.cast(col, pa.date32())
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        stripped = pc.utf8_trim_whitespace(col)
        cleaned = pc.if_else(pc.equal(stripped, ""), pa.scalar(None, col.type), stripped)
        dashed = pc.if_else(
            pc.match_substring_regex(cleaned, r"^\d{8}$"),
            pc.binary_join_element_wise(
                pc.utf8_slice_codeunits(cleaned, 0, 4), pc.utf8_slice_codeunits(cleaned, 4, 6),
                pc.utf8_slice_codeunits(cleaned, 6, 8), "-",
            ),
            cleaned,
        )
        try:
            return dashed.cast(pa.date32())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            bad = [v for v in dashed.to_pylist() if v is not None and not _is_iso(v)][:3]
            raise BronzeSchemaError(
                f"{_where(spec, day)}: column {name!r} has values that are not dates: {bad}"
            ) from None
    raise BronzeSchemaError(f"{_where(spec, day)}: column {name!r} is {t}, expected a date")


def _is_iso(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _as_string(col, spec: TableSpec, name: str, day) -> pa.Array:
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    t = col.type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t):
        return col.cast(pa.string())
    if name == "Code":
        # an integer code has lost its leading zeros / letters: never guess them back
        raise BronzeSchemaError(f"{_where(spec, day)}: column 'Code' is {t}; codes are strings")
    return col.cast(pa.string())


_CONVERT = {"double": _as_double, "date": _as_date, "string": _as_string}


def typed_table(
    raw: pa.Table,
    endpoint: Endpoint,
    *,
    source: str,
    ingested_at: dt.datetime,
    day: dt.date | None = None,
    calendar: TradingCalendar | None = None,
) -> pa.Table:
    """Convert an untyped/loosely typed table of API fields into the bronze schema.

    ``day`` (by-day endpoints) is the date asked: every row's partition field must equal it.
    An endpoint that ``derives_publication`` (margin interest) needs ``calendar``: a row
    without ``PubDate`` (weekly era) is partitioned by the publication date derived from
    its record date (``gogooku3.jpx.margin``); ``PubDate`` itself stays as received.
    """
    spec = catalog.table(endpoint.table)
    fields = api_fields(endpoint)
    present = set(raw.column_names)
    missing = [f for f, _, _ in fields if f not in present]
    if missing and raw.num_rows:
        raise BronzeSchemaError(f"{_where(spec, day)}: {endpoint.path} rows lack columns {missing}")
    extra = sorted(present - {f for f, _, _ in fields})
    if extra:
        log.debug("%s: dropping fields the catalogue does not know: %s", spec.name, extra)
    n = raw.num_rows
    arrays: dict[str, pa.Array] = {}
    for field, column, typ in fields:
        col = raw.column(field) if field in present else pa.nulls(n)
        arrays[column] = _CONVERT[typ](col, spec, field, day)
    part = arrays[endpoint.bronze_name(endpoint.partition_field)]
    if part.null_count and endpoint.derives_publication:
        part = _derived_publication(part, arrays[endpoint.bronze_name("Date")], spec, day,
                                    calendar)
    if part.null_count:
        raise BronzeSchemaError(
            f"{_where(spec, day)}: {part.null_count} rows without {endpoint.partition_field}"
        )
    if day is not None and n:
        stray = pc.unique(pc.filter(part, pc.not_equal(part, pa.scalar(day, pa.date32()))))
        if len(stray):
            raise BronzeError(
                f"{_where(spec, day)}: {endpoint.path} answered rows dated "
                f"{[d.isoformat() for d in stray.to_pylist()[:3]]} for {day}"
            )
    arrays["date"] = part
    arrays["_ingested_at"] = pa.array([ingested_at] * n, pa.timestamp("us", tz="UTC"))
    arrays["_source"] = pa.array([source] * n, pa.string())
    return pa.table({c: arrays[c] for c in spec.column_names}, schema=spec.arrow_schema())


def _derived_publication(pub: pa.Array, record: pa.Array, spec: TableSpec, day,
                         calendar: TradingCalendar | None) -> pa.Array:
    if calendar is None:
        raise BronzeError(f"{_where(spec, day)}: rows without a publication date need the "
                          "trading calendar to derive it")
    if record.null_count:
        return pub  # rows without either date: reported as such by the caller
    return pa.array(publication_dates(pub.to_pylist(), record.to_pylist(), calendar),
                    pa.date32())


def rows_to_bronze(
    rows: Sequence[dict[str, Any]],
    endpoint: Endpoint,
    *,
    source: str,
    ingested_at: dt.datetime,
    day: dt.date | None = None,
) -> pa.Table:
    """API rows (a list of JSON objects) -> bronze Arrow table; see ``typed_table``."""
    if not rows:
        return catalog.table(endpoint.table).arrow_schema().empty_table()
    return typed_table(rows_table(rows), endpoint, source=source, ingested_at=ingested_at, day=day)


def page_fields(endpoint: Endpoint) -> pa.Schema:
    """How the client should type the endpoint's JSON fields (``JQuantsClient.get_table``):
    numbers as float64, everything else as text (dates too, parsed by ``typed_table``)."""
    return pa.schema(
        [(f, pa.float64() if t == "double" else pa.string()) for f, _, t in api_fields(endpoint)]
    )


def empty_trading_days(table: pa.Table, endpoint: Endpoint,
                       trading_days: Iterable[dt.date]) -> list[dt.date]:
    """Trading days without rows in ``table`` for a dense endpoint (daily bars, master,
    TOPIX); none for the others, whose days may legitimately be empty."""
    if not endpoint.dense:
        return []
    have = set(pc.unique(table.column("date")).to_pylist()) if table.num_rows else set()
    return [d for d in sorted(trading_days) if d not in have]


def write_bronze(
    table: pa.Table, endpoint: Endpoint, dates: Iterable[dt.date], lake_root: str | None = None
) -> contract.Commit:
    """Replace ``dates`` of the endpoint's bronze table with ``table`` (one commit)."""
    return deltars.write_dates(table, endpoint.table, list(dates), lake_root=lake_root)


# ---- J-Quants-shaped files ----------------------------------------------------------------

def match_endpoint(path: Path) -> Endpoint | None:
    """The endpoint a file belongs to, from its path (``bars_daily.csv``,
    ``equities_bars_daily/2024.parquet``, ``fins_summary_2023.csv``...)."""
    text = str(path).lower().replace("-", "_").replace("/", "_")
    best: tuple[int, Endpoint] | None = None
    for ep in ENDPOINTS.values():
        for name in (ep.table.split(".", 1)[1], ep.name):
            if name in text and (best is None or len(name) > best[0]):
                best = (len(name), ep)
    return best[1] if best else None


def read_file(path: Path, endpoint: Endpoint) -> pa.Table:
    """A CSV or Parquet file with J-Quants column names as an untyped Arrow table.

    CSV columns of the catalogue are read as text (codes keep leading zeros) and
    parsed by ``typed_table``.
    """
    suffix = "".join(path.suffixes).lower()
    if suffix.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(path)
    if suffix.endswith((".csv", ".csv.gz")):
        import pyarrow.csv as pcsv

        types = {f: pa.string() for f, _, _ in api_fields(endpoint)}
        return pcsv.read_csv(
            path,
            convert_options=pcsv.ConvertOptions(column_types=types, strings_can_be_null=True),
        )
    raise BronzeError(f"{path}: not a CSV or Parquet file")


def load_files(
    root: str | Path,
    endpoints: Sequence[Endpoint],
    start: dt.date,
    end: dt.date,
    *,
    ingested_at: dt.datetime,
    calendar: TradingCalendar | None = None,
) -> dict[str, pa.Table]:
    """Bronze tables (per endpoint name) from J-Quants-shaped files under ``root``.

    Rows outside ``[start, end]`` (by partition date) are left out. Files that match
    no requested endpoint are ignored with a log line. ``calendar`` derives weekly
    margin publication dates (``typed_table``).
    """
    base = Path(root)
    if not base.exists():
        raise BronzeError(f"--source files: {base} does not exist")
    files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
    wanted = {e.name: e for e in endpoints}
    parts: dict[str, list[pa.Table]] = {}
    for f in files:
        ep = match_endpoint(f.relative_to(base) if f != base else Path(f.name))
        if ep is None or ep.name not in wanted:
            log.info("files: ignoring %s (no requested endpoint matches its name)", f)
            continue
        table = typed_table(read_file(f, ep), ep, source=f"files:{f}", ingested_at=ingested_at,
                            calendar=calendar)
        d = table.column("date")
        keep = pc.and_(
            pc.greater_equal(d, pa.scalar(start, pa.date32())),
            pc.less_equal(d, pa.scalar(end, pa.date32())),
        )
        parts.setdefault(ep.name, []).append(table.filter(keep))
        log.info("files: %s -> %s", f, ep.table)
    return {name: pa.concat_tables(ts) for name, ts in parts.items()}
