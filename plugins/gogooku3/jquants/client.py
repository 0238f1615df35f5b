"""Async J-Quants v2 client: one aiohttp session, capped concurrency, paced, retried, paginated.

Contract (spec: jpx-jquants.com/en/spec, "API Overview" / "Status codes"):

* Authentication is the ``x-api-key`` header. The key is held privately, sent only as
  that header and never appears in logs, exceptions or ``repr``.
* At most ``max_concurrent`` requests are on the wire at once, and (when
  ``requests_per_minute`` is set) no more than that many start per minute.
* 429, 5xx, timeouts, dropped connections and truncated bodies are retried with
  exponential backoff and full jitter; ``Retry-After`` (seconds or HTTP-date) is honoured
  and pauses every request of the client. Each request has a bounded budget
  (``RetryPolicy.max_attempts`` and ``deadline_s``) after which ``JQuantsRetryExhausted``.
* 401/403 raise ``JQuantsAuthError`` at once, 400 and other 4xx ``JQuantsRequestError``;
  both name the path and parameters.
* ``get`` follows ``pagination_key`` until a page carries none and returns all rows;
  ``get_table`` does the same into one Arrow table of the API's fields (what bronze is
  built from). Pages are parsed by Arrow's JSON reader on worker threads (it releases the
  GIL, so pages parse in parallel with each other and with the event loop); a page that
  Arrow cannot type uniformly (e.g. a field that is a number in one row and text in the
  next) is parsed by orjson instead, mixed fields as text.

The client has no Airflow imports; an Airflow hook builds it from a connection.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import aiohttp
import orjson
import pyarrow as pa
import pyarrow.json as pajson
from isal import isal_zlib

from gogooku3.jquants.errors import (
    JQuantsAuthError,
    JQuantsError,
    JQuantsProtocolError,
    JQuantsRequestError,
    JQuantsRetryExhausted,
    describe_request,
)
from gogooku3.jquants.ratelimit import InFlight, RateLimiter

log = logging.getLogger(__name__)

Row = dict[str, Any]
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_AUTH_STATUS = frozenset({401, 403})
_TRANSIENT = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError)
#: bodies at least this large (as sent) are inflated and, for ``get_table``, parsed on a
#: worker thread: ISA-L's inflate and Arrow's JSON reader release the GIL, so that work overlaps with
#: other pages and with the event loop; smaller ones are not worth the hop
_OFF_LOOP_BYTES = 64 * 1024


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: ``max_attempts`` tries and ``deadline_s`` seconds per request.

    Backoff before retry ``n`` (1-based) is uniform in ``[0, min(max_delay_s,
    base_delay_s * 2**n)]`` ("full jitter"); a server ``Retry-After`` replaces it (capped
    at ``max_retry_after_s``) plus up to ``base_delay_s`` of jitter.
    """

    max_attempts: int = 10
    base_delay_s: float = 0.2
    max_delay_s: float = 20.0
    max_retry_after_s: float = 300.0
    deadline_s: float = 900.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, min(self.max_delay_s, self.base_delay_s * 2**attempt))


@dataclass
class ClientStats:
    """Counters of one client's life (what benchmarks and tests look at)."""

    requests: int = 0
    pages: int = 0
    rows: int = 0
    retries: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    in_flight: InFlight = field(default_factory=InFlight)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date.

    Returns ``None`` when absent or unparseable, never a negative number.
    """
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


class _Retry(Exception):
    """Internal: a retryable failure with an optional server-requested delay."""

    def __init__(self, reason: str, status: int | None = None, delay: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.delay = delay


class JQuantsClient:
    """Async client for the J-Quants v2 API (or the compatible simulated server).

    Use as ``async with JQuantsClient(url, key) as client: rows = await client.get(path, params)``
    (or ``table = await client.get_table(path, params)``).
    ``on_rows`` (optional) is called with the row count of every page received (progress bars).
    """

    def __init__(
        self,
        base_url: str,
        api_key: Any,
        *,
        max_concurrent: int = 150,
        requests_per_minute: int | None = None,
        retry: RetryPolicy | None = None,
        timeout_s: float = 60.0,
        seed: int | None = None,
    ):
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be >= 1, got {max_concurrent}")
        secret = api_key.get_secret_value() if hasattr(api_key, "get_secret_value") else api_key
        self._key: str | None = secret or None
        self.base_url = base_url.rstrip("/")
        self.max_concurrent = max_concurrent
        self.retry = retry or RetryPolicy()
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.limiter = RateLimiter(requests_per_minute)
        self.stats = ClientStats()
        self._sem: asyncio.Semaphore | None = None
        self._session: aiohttp.ClientSession | None = None
        self._rng = random.Random(seed)

    def __repr__(self) -> str:  # never show the key
        return (
            f"JQuantsClient({self.base_url!r}, key={'***' if self._key else None}, "
            f"max_concurrent={self.max_concurrent}, rpm={self.limiter.per_minute})"
        )

    @classmethod
    def from_settings(cls, settings=None, **overrides: Any) -> JQuantsClient:
        """Client from ``gogooku3.settings`` (URL, key, concurrency, requests per minute: the
        explicit setting, else the plan's limit)."""
        if settings is None:
            from gogooku3.settings import get_settings

            settings = get_settings()
        kwargs: dict[str, Any] = {
            "max_concurrent": settings.jquants_max_concurrent,
            "requests_per_minute": settings.requests_per_minute,
        }
        kwargs.update(overrides)
        return cls(settings.jquants_api_url, settings.jquants_api_key, **kwargs)

    # ---- lifecycle -------------------------------------------------------------------------
    async def __aenter__(self) -> JQuantsClient:
        self._open()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.max_concurrent, ttl_dns_cache=300)
            headers = {"Accept-Encoding": "gzip", "User-Agent": "gogooku3-jquants/1"}
            if self._key:
                headers["x-api-key"] = self._key
            self._session = aiohttp.ClientSession(
                connector=connector, headers=headers, timeout=self.timeout,
                auto_decompress=False,  # see _inflate
            )
            self._sem = asyncio.Semaphore(self.max_concurrent)
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    # ---- public API ------------------------------------------------------------------------
    async def get(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        on_rows: Callable[[int], None] | None = None,
    ) -> list[Row]:
        """All rows of ``path?params``, following ``pagination_key`` to the last page."""
        rows: list[Row] = []
        for page in await self._pages(path, params, on_rows, _RowsDecoder()):
            rows.extend(page)
        return rows

    async def get_table(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        on_rows: Callable[[int], None] | None = None,
        *,
        fields: pa.Schema | None = None,
    ) -> pa.Table:
        """All rows of ``path?params`` as one Arrow table with the API's field names.

        ``fields`` (optional) types the fields it names (e.g. ``Code`` as string, prices as
        float64) so that every page agrees; others are inferred. Fields that pages type
        differently are returned as text. A page without rows contributes no columns.
        """
        return _concat(await self._pages(path, params, on_rows, _ArrowDecoder(fields)))

    async def _pages(self, path, params, on_rows, decoder: _Decoder) -> list[Any]:
        """Each page's ``data`` as ``decoder`` parses it, following ``pagination_key``."""
        query = {k: str(v) for k, v in (params or {}).items() if v not in (None, "")}
        pages: list[Any] = []
        seen: set[str] = set()
        total = 0
        self.stats.requests += 1
        while True:
            page = await self._page(path, query, params, decoder)
            pages.append(page.data)
            total += page.rows
            self.stats.rows += page.rows
            if on_rows is not None:
                on_rows(page.rows)
            if not page.key:
                return pages
            if page.key in seen:
                raise JQuantsProtocolError(
                    f"pagination_key repeated after {total} rows", path=path, params=params
                )
            seen.add(page.key)
            query = {**query, "pagination_key": page.key}

    async def get_many(
        self,
        path: str,
        queries: Sequence[Mapping[str, Any]],
        *,
        progress: str | None = None,
        return_errors: bool = False,
        as_table: bool = False,
        fields: pa.Schema | None = None,
    ) -> list[list[Row] | pa.Table | JQuantsError]:
        """Fan out one ``get`` per query with the client's concurrency; results in query order.

        With ``as_table`` each result is ``get_table``'s (``fields`` as there).

        By default the first error cancels the rest and is raised. With ``return_errors``,
        a query that exhausted its retries or got a malformed page yields its
        ``JQuantsError`` in place of rows; auth and request errors (which no other query
        would escape) still raise. ``progress`` (a description) shows a rich progress bar
        with queries done, rows and rows/s.
        """
        if not queries:
            return []
        with _Progress(progress, len(queries)) as bar:

            async def one(q: Mapping[str, Any]) -> list[Row] | pa.Table | JQuantsError:
                try:
                    if as_table:
                        rows = await self.get_table(path, q, bar.rows, fields=fields)
                    else:
                        rows = await self.get(path, q, on_rows=bar.rows)
                except (JQuantsRetryExhausted, JQuantsProtocolError) as exc:
                    if not return_errors:
                        raise
                    log.warning("%s", exc)
                    rows = exc
                bar.done()
                return rows

            tasks = [asyncio.ensure_future(one(q)) for q in queries]
            try:
                return list(await asyncio.gather(*tasks))
            except BaseException:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise

    # ---- one page with retries -------------------------------------------------------------
    async def _page(
        self, path: str, query: Mapping[str, str], params: Mapping[str, Any] | None,
        decoder: _Decoder,
    ) -> _Page:
        session = self._open()
        assert self._sem is not None
        url = f"{self.base_url}{path}"
        started = time.monotonic()
        last: _Retry | None = None
        for attempt in range(1, self.retry.max_attempts + 1):
            try:
                return await self._try_page(session, url, path, query, params, decoder)
            except _Retry as exc:
                last = exc
            if attempt == self.retry.max_attempts:
                break
            if last.delay is not None:
                delay = min(last.delay, self.retry.max_retry_after_s)
                self.limiter.pause_until(time.monotonic() + delay)
                delay += self._rng.uniform(0.0, self.retry.base_delay_s)
            else:
                delay = self.retry.backoff(attempt, self._rng)
            if time.monotonic() - started + delay > self.retry.deadline_s:
                break
            self.stats.retries += 1
            log.debug(
                "J-Quants %s: %s; retry %d in %.2fs",
                describe_request(path, params), last.reason, attempt, delay,
            )
            await asyncio.sleep(delay)
        assert last is not None
        raise JQuantsRetryExhausted(
            f"gave up after {attempt} attempts in {time.monotonic() - started:.1f}s: {last.reason}",
            path=path, params=params, status=last.status,
        )

    async def _try_page(
        self,
        session: aiohttp.ClientSession,
        url: str,
        path: str,
        query: Mapping[str, str],
        params: Mapping[str, Any] | None,
        decoder: _Decoder,
    ) -> _Page:
        assert self._sem is not None
        async with self._sem:
            await self.limiter.acquire()
            try:
                with self.stats.in_flight:
                    async with session.get(url, params=query) as resp:
                        status = resp.status
                        body = await resp.read()
                        retry_after = resp.headers.get("Retry-After")
                        gzipped = "gzip" in resp.headers.get("Content-Encoding", "")
            except _TRANSIENT as exc:
                raise _Retry(f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
        self.stats.statuses[status] = self.stats.statuses.get(status, 0) + 1
        if 200 <= status < 300:
            self.stats.pages += 1
            decode = functools.partial(_decode, decoder, body, gzipped, status)
            try:
                if len(body) < _OFF_LOOP_BYTES:
                    return decode()
                return await asyncio.get_running_loop().run_in_executor(None, decode)
            except _Malformed as exc:
                raise JQuantsProtocolError(str(exc), path=path, params=params,
                                           status=status) from None
        if gzipped and body:
            body = _inflate(body, status)
        message = _message(body)
        if status in _RETRY_STATUS or status >= 500:
            raise _Retry(f"HTTP {status} {message}".strip(), status, parse_retry_after(retry_after))
        if status in _AUTH_STATUS:
            hint = "" if self._key else " (no API key configured)"
            raise JQuantsAuthError(f"{message or 'forbidden'}{hint}", path=path, params=params,
                                   status=status)
        raise JQuantsRequestError(message or "request rejected", path=path, params=params,
                                  status=status)


# ---- page decoding (runs on a worker thread for large pages) ------------------------------

class _Page(NamedTuple):
    data: Any  # list[Row] or pa.Table
    rows: int
    key: str | None


class _Malformed(Exception):
    """Internal: a page that is JSON but not the J-Quants page shape."""


class _Decoder:
    """Turns one page's JSON text into a ``_Page``; raises ``_Malformed`` or ``ValueError``
    (not JSON: a truncated body, retried)."""

    def __call__(self, text: bytes) -> _Page:
        raise NotImplementedError


class _RowsDecoder(_Decoder):
    """``data`` as a list of dicts (orjson)."""

    def __call__(self, text: bytes) -> _Page:
        payload = _payload(text)
        data = payload["data"]
        return _Page(data, len(data), payload.get("pagination_key") or None)


class _ArrowDecoder(_Decoder):
    """``data`` as an Arrow table (Arrow's JSON reader; orjson + ``rows_table`` for pages
    Arrow cannot type uniformly). ``fields`` types the row fields it names."""

    def __init__(self, fields: pa.Schema | None):
        page = [("data", pa.list_(pa.struct(list(fields))))] if fields is not None else []
        self._named = [(f.name, f'"{f.name}"'.encode()) for f in fields or ()]
        self._parse = pajson.ParseOptions(
            explicit_schema=pa.schema([*page, ("pagination_key", pa.string())]),
            newlines_in_values=True,  # pretty-printed pages too
        )

    def __call__(self, text: bytes) -> _Page:
        try:
            page = pajson.read_json(
                pa.BufferReader(text),
                read_options=pajson.ReadOptions(use_threads=False, block_size=len(text) + 1),
                parse_options=self._parse,
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            payload = _payload(text)  # not uniformly typed, or not an object at all
            data = payload["data"]
            return _Page(rows_table(data), len(data), payload.get("pagination_key") or None)
        data = page.column("data") if "data" in page.column_names else None
        if page.num_rows != 1 or data is None or not pa.types.is_list(data.type):
            raise _Malformed("page has no 'data' list")
        values = data.chunk(0).values
        if pa.types.is_struct(values.type):
            table = pa.Table.from_struct_array(values)
            # Arrow fills a typed field that no row has with nulls: keep it absent instead
            absent = [name for name, quoted in self._named if quoted not in text]
            table = table.drop_columns(absent) if absent else table
        elif len(values) == 0:
            table = pa.table({})
        else:
            raise _Malformed(f"page's 'data' holds {values.type}, not objects")
        key = page.column("pagination_key")[0].as_py()
        return _Page(table, table.num_rows, key or None)


def _payload(text: bytes) -> dict[str, Any]:
    """The page as a dict with a ``data`` list (orjson); raises ``_Malformed`` otherwise."""
    payload = orjson.loads(text) if text else {"data": []}
    if not isinstance(payload, dict):
        raise _Malformed("page is not a JSON object")
    data = payload.get("data")
    if not isinstance(data, list):
        raise _Malformed(f"page has no 'data' list (keys {sorted(payload)[:5]})")
    return payload


def _decode(decoder: _Decoder, body: bytes, gzipped: bool, status: int) -> _Page:
    """Inflate (gzip) and decode one 2xx body; undecodable bodies become ``_Retry``."""
    if gzipped and body:
        body = _inflate(body, status)
    try:
        return decoder(body)
    except ValueError:  # orjson.JSONDecodeError
        raise _Retry(f"HTTP {status} with a body that is not JSON", status) from None


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


def _concat(tables: list[pa.Table]) -> pa.Table:
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


def _inflate(body: bytes, status: int) -> bytes:
    """The gzip ``body`` inflated (ISA-L: about 3x zlib's speed); a corrupt body is retried."""
    try:
        return isal_zlib.decompress(body, wbits=31)
    except isal_zlib.error as exc:
        raise _Retry(f"HTTP {status} with a corrupt gzip body ({exc})", status) from None


def _message(body: bytes) -> str:
    try:
        data = orjson.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    if isinstance(data, dict):
        return str(data.get("message", ""))[:200]
    return ""


class _Progress:
    """A rich progress bar (requests done, rows, rows/s) or a no-op when ``description`` is None."""

    def __init__(self, description: str | None, total: int):
        self._bar = None
        self._task = None
        self._rows = 0
        self._start = time.monotonic()
        if description:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rows]:,} rows  {task.fields[rate]:,.0f} rows/s"),
                TimeElapsedColumn(), transient=False,
            )
            self._task = self._bar.add_task(description, total=total, rows=0, rate=0.0)

    def __enter__(self) -> _Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()

    def rows(self, n: int) -> None:
        self._rows += n

    def done(self) -> None:
        if self._bar is not None:
            rate = self._rows / max(1e-9, time.monotonic() - self._start)
            self._bar.update(self._task, advance=1, rows=self._rows, rate=rate)


def run(coro):
    """Run ``coro`` to completion from synchronous code (CLI, Airflow tasks)."""
    return asyncio.run(coro)


__all__ = [
    "ClientStats",
    "JQuantsClient",
    "JQuantsError",
    "RetryPolicy",
    "parse_retry_after",
    "rows_table",
    "run",
]
