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
from typing import Any

import aiohttp
import pyarrow as pa

from gogooku3.jquants.endpoints import requests_per_minute
from gogooku3.jquants.errors import (
    JQuantsAuthError,
    JQuantsError,
    JQuantsProtocolError,
    JQuantsRequestError,
    JQuantsRetryExhausted,
    describe_request,
)
from gogooku3.jquants.pages import (
    ArrowDecoder,
    CorruptBody,
    Decoder,
    MalformedPage,
    Page,
    RowsDecoder,
    concat_pages,
    decode,
    error_message,
    inflate,
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
            "requests_per_minute": requests_per_minute(settings.jquants_plan,
                                                       settings.jquants_requests_per_minute),
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
        for page in await self._pages(path, params, on_rows, RowsDecoder()):
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
        return concat_pages(await self._pages(path, params, on_rows, ArrowDecoder(fields)))

    async def _pages(self, path, params, on_rows, decoder: Decoder) -> list[Any]:
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
        return_errors: bool = False,
        as_table: bool = False,
        fields: pa.Schema | None = None,
        on_rows: Callable[[int], None] | None = None,
        on_done: Callable[[], None] | None = None,
    ) -> list[list[Row] | pa.Table | JQuantsError]:
        """Fan out one ``get`` per query with the client's concurrency; results in query order.

        With ``as_table`` each result is ``get_table``'s (``fields`` as there).

        By default the first error cancels the rest and is raised. With ``return_errors``,
        a query that exhausted its retries or got a malformed page yields its
        ``JQuantsError`` in place of rows; auth and request errors (which no other query
        would escape) still raise. ``on_rows`` gets each page's row count and ``on_done``
        is called per finished query (a progress display).
        """

        async def one(q: Mapping[str, Any]) -> list[Row] | pa.Table | JQuantsError:
            try:
                if as_table:
                    rows = await self.get_table(path, q, on_rows, fields=fields)
                else:
                    rows = await self.get(path, q, on_rows=on_rows)
            except (JQuantsRetryExhausted, JQuantsProtocolError) as exc:
                if not return_errors:
                    raise
                log.warning("%s", exc)
                rows = exc
            if on_done is not None:
                on_done()
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
        decoder: Decoder,
    ) -> Page:
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
        decoder: Decoder,
    ) -> Page:
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
        try:
            if 200 <= status < 300:
                self.stats.pages += 1
                parse = functools.partial(decode, decoder, body, gzipped)
                if len(body) < _OFF_LOOP_BYTES:
                    return parse()
                return await asyncio.get_running_loop().run_in_executor(None, parse)
            if gzipped and body:
                body = inflate(body)
        except MalformedPage as exc:
            raise JQuantsProtocolError(str(exc), path=path, params=params,
                                       status=status) from None
        except CorruptBody as exc:
            raise _Retry(f"HTTP {status} with {exc}", status) from None
        message = error_message(body)
        if status in _RETRY_STATUS or status >= 500:
            raise _Retry(f"HTTP {status} {message}".strip(), status, parse_retry_after(retry_after))
        if status in _AUTH_STATUS:
            hint = "" if self._key else " (no API key configured)"
            raise JQuantsAuthError(f"{message or 'forbidden'}{hint}", path=path, params=params,
                                   status=status)
        raise JQuantsRequestError(message or "request rejected", path=path, params=params,
                                  status=status)


__all__ = [
    "ClientStats",
    "JQuantsClient",
    "JQuantsError",
    "RetryPolicy",
    "parse_retry_after",
]
