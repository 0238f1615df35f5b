"""One J-Quants page body -> its rows: gzip inflate (ISA-L), then JSON into dicts (orjson)
or an Arrow table (Arrow's JSON reader, which releases the GIL; orjson + ``rows_table``
for pages Arrow cannot type uniformly, mixed fields as text).

Pure functions of the bytes received; ``gogooku3.jquants.client`` runs them (large pages
on worker threads) and maps ``CorruptBody`` to a retry and ``MalformedPage`` to
``JQuantsProtocolError``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import orjson
import pyarrow as pa
import pyarrow.json as pajson
from isal import isal_zlib


class Page(NamedTuple):
    """One decoded page: ``data`` (list of dicts or an Arrow table), its row count and the
    ``pagination_key`` of the next page (None on the last)."""

    data: Any
    rows: int
    key: str | None


class MalformedPage(Exception):
    """A page that is JSON but not the J-Quants page shape."""


class CorruptBody(Exception):
    """A body that is not gzip or not JSON (truncated on the wire): worth a retry."""


class Decoder:
    """Turns one page's JSON text into a ``Page``; raises ``MalformedPage`` or ``ValueError``
    (not JSON)."""

    def __call__(self, text: bytes) -> Page:
        raise NotImplementedError


class RowsDecoder(Decoder):
    """``data`` as a list of dicts (orjson)."""

    def __call__(self, text: bytes) -> Page:
        payload = _payload(text)
        data = payload["data"]
        return Page(data, len(data), payload.get("pagination_key") or None)


class ArrowDecoder(Decoder):
    """``data`` as an Arrow table (Arrow's JSON reader; orjson + ``rows_table`` for pages
    Arrow cannot type uniformly). ``fields`` types the row fields it names."""

    def __init__(self, fields: pa.Schema | None):
        page = [("data", pa.list_(pa.struct(list(fields))))] if fields is not None else []
        self._named = [(f.name, f'"{f.name}"'.encode()) for f in fields or ()]
        self._parse = pajson.ParseOptions(
            explicit_schema=pa.schema([*page, ("pagination_key", pa.string())]),
            newlines_in_values=True,  # pretty-printed pages too
        )

    def __call__(self, text: bytes) -> Page:
        try:
            page = pajson.read_json(
                pa.BufferReader(text),
                read_options=pajson.ReadOptions(use_threads=False, block_size=len(text) + 1),
                parse_options=self._parse,
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            payload = _payload(text)  # not uniformly typed, or not an object at all
            data = payload["data"]
            return Page(rows_table(data), len(data), payload.get("pagination_key") or None)
        data = page.column("data") if "data" in page.column_names else None
        if page.num_rows != 1 or data is None or not pa.types.is_list(data.type):
            raise MalformedPage("page has no 'data' list")
        values = data.chunk(0).values
        if pa.types.is_struct(values.type):
            table = pa.Table.from_struct_array(values)
            # Arrow fills a typed field that no row has with nulls: keep it absent instead
            absent = [name for name, quoted in self._named if quoted not in text]
            table = table.drop_columns(absent) if absent else table
        elif len(values) == 0:
            table = pa.table({})
        else:
            raise MalformedPage(f"page's 'data' holds {values.type}, not objects")
        key = page.column("pagination_key")[0].as_py()
        return Page(table, table.num_rows, key or None)


def _payload(text: bytes) -> dict[str, Any]:
    """The page as a dict with a ``data`` list (orjson); raises ``_Malformed`` otherwise."""
    payload = orjson.loads(text) if text else {"data": []}
    if not isinstance(payload, dict):
        raise MalformedPage("page is not a JSON object")
    data = payload.get("data")
    if not isinstance(data, list):
        raise MalformedPage(f"page has no 'data' list (keys {sorted(payload)[:5]})")
    return payload


def decode(decoder: Decoder, body: bytes, gzipped: bool) -> Page:
    """Inflate (gzip) and decode one 2xx body; raises ``CorruptBody`` or ``MalformedPage``."""
    if gzipped and body:
        body = inflate(body)
    try:
        return decoder(body)
    except ValueError:  # orjson.JSONDecodeError
        raise CorruptBody("a body that is not JSON") from None


def inflate(body: bytes) -> bytes:
    """The gzip ``body`` inflated (ISA-L: about 3x zlib's speed)."""
    try:
        return isal_zlib.decompress(body, wbits=31)
    except isal_zlib.error as exc:
        raise CorruptBody(f"a corrupt gzip body ({exc})") from None


def rows_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """JSON rows as an Arrow table; fields whose values mix JSON types (``1`` and ``"1"``)
    become text, to be parsed by the reader's types (bronze's ``typed_table``)."""
    try:
        return pa.Table.from_pylist(list(rows))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        names = sorted({k for r in rows for k in r})
        return pa.table(
            {k: pa.array([None if r.get(k) is None else str(r.get(k)) for r in rows], pa.string())
             for k in names}
        )


def concat_pages(tables: list[pa.Table]) -> pa.Table:
    """Pages of one query as one table; a field typed differently by two pages becomes text."""
    tables = [t for t in tables if t.num_columns]
    if len(tables) <= 1:
        return tables[0] if tables else pa.table({})
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.concat_tables(
            [t.cast(pa.schema([(f.name, pa.string()) for f in t.schema])) for t in tables],
            promote_options="permissive",
        )


def error_message(body: bytes) -> str:
    """The ``message`` of an error body (at most 200 characters), or its start as text."""
    try:
        data = orjson.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    if isinstance(data, dict):
        return str(data.get("message", ""))[:200]
    return ""
