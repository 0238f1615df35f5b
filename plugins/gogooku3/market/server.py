"""A J-Quants API v2-compatible HTTP server over a ``SimulatedMarket``.

Protocol (spec: jpx-jquants.com/en/spec, mirrored from ``shared/JQUANTS_V2.md``):
base path ``/v2``; header ``x-api-key`` (missing → 401, wrong → 403); responses
``{"data": [...], "pagination_key": "..."}`` (gzip when asked); 400 with
``{"message": ...}`` for bad parameters; **403** for unknown resource paths (as the real
service); dates accepted as ``YYYYMMDD`` or ``YYYY-MM-DD``.

Endpoints: ``/equities/master``, ``/equities/bars/daily``, ``/indices/bars/daily/topix``,
``/markets/calendar``, ``/fins/summary``, ``/equities/investor-types``,
``/markets/margin-interest``. ``GET /v2/_sim/stats`` (no auth) reports request counters
and the in-flight peak for tests.

``create_app(..., plan="light")`` answers 403 for endpoints outside that J-Quants plan
(``gogooku3.jquants.endpoints.PLANS``), as the real service does.

Faults (``FaultConfig``, seeded): a token-bucket rate limit answered with 429 and
``Retry-After``; random 500/503; added latency; dropped connections. Planted bad rows
(``BadRows``) corrupt chosen dates for quality-gate tests.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import json
import logging
import random
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
import pandas as pd
from aiohttp import web

from gogooku3.jquants.endpoints import plan_endpoints
from gogooku3.market.queries import ROUTES, BadRequest, BadRows, MarketAPI, records
from gogooku3.market.sim import SimulatedMarket

log = logging.getLogger(__name__)

STATS = web.AppKey("stats", object)
STATS_PATH = "/v2/_sim/stats"
#: encoded pages kept per server (one trade date of bars for 4,000 stocks is ~1 MB raw)
PAGE_CACHE = 512
#: gzip level of responses: fast, as a server under load would choose (6 costs ~4x the CPU)
GZIP_LEVEL = 1


@dataclass
class FaultConfig:
    """Fault injection for one server run (all probabilities per request)."""

    rate_limit_per_s: float | None = None  # token bucket; excess → 429 + Retry-After
    retry_after_s: float = 1.0
    error_rate: float = 0.0     # 500/503
    drop_rate: float = 0.0      # connection closed without a response
    latency_ms: float = 0.0
    seed: int = 0


@dataclass
class ServerStats:
    requests: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    by_status: dict[int, int] = field(default_factory=dict)

    def count(self, status: int) -> None:
        """One more answer with ``status`` (0: a dropped connection)."""
        self.by_status[status] = self.by_status.get(status, 0) + 1

    def as_dict(self) -> dict:
        return {"requests": self.requests, "in_flight": self.in_flight,
                "peak_in_flight": self.peak_in_flight,
                "by_status": {str(k): v for k, v in sorted(self.by_status.items())}}


def _encode_key(offset: int, query_sig: str) -> str:
    # opaque, changes per page, contains characters that need URL-encoding ('+', '/', '=')
    raw = json.dumps({"o": offset, "q": query_sig}).encode()
    return base64.b64encode(b"\xfb\xff" + raw).decode()


def _decode_key(key: str, query_sig: str) -> int:
    try:
        data = json.loads(base64.b64decode(key.encode())[2:])
        if data["q"] != query_sig:
            raise ValueError
        return int(data["o"])
    except Exception:
        raise BadRequest("invalid 'pagination_key' for this query") from None


def _api_only(middleware):
    """An aiohttp middleware that leaves ``STATS_PATH`` (no auth, not counted) alone."""

    @web.middleware
    async def wrapped(request: web.Request, handler):
        if request.path == STATS_PATH:
            return await handler(request)
        return await middleware(request, handler)

    return wrapped


def _answer(stats: ServerStats, status: int, message: str, **headers: str) -> web.Response:
    stats.count(status)
    return web.json_response({"message": message}, status=status, headers=headers or None)


def counting(stats: ServerStats):
    """Requests, in-flight peak."""

    async def mw(request, handler):
        stats.requests += 1
        stats.in_flight += 1
        stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
        try:
            return await handler(request)
        finally:
            stats.in_flight -= 1

    return _api_only(mw)


def authenticating(api_key: str, stats: ServerStats, plan: str | None):
    """``x-api-key`` (missing 401, wrong 403), then the resource: an unknown path or one
    outside ``plan`` answers 403, as the real service does."""
    served = set(plan_endpoints(plan))

    async def mw(request, handler):
        key = request.headers.get("x-api-key")
        if not key:
            return _answer(stats, 401, "Missing API key (x-api-key header).")
        if key != api_key:
            return _answer(stats, 403, "Invalid API key.")
        name = ROUTES.get(request.path.rstrip("/"))
        if name is None:
            return _answer(stats, 403, "Forbidden: unknown resource.")
        if name not in served:
            return _answer(stats, 403, f"Forbidden: your plan ({plan}) does not include "
                                       "this resource.")
        return await handler(request)

    return _api_only(mw)


def rate_limiting(faults: FaultConfig, stats: ServerStats):
    """A token bucket of ``faults.rate_limit_per_s``; excess answers 429 + Retry-After."""
    rate = faults.rate_limit_per_s
    bucket = {"tokens": rate or 0.0, "t": time.monotonic()}

    async def mw(request, handler):
        if rate:
            now = time.monotonic()
            bucket["tokens"] = min(rate, bucket["tokens"] + (now - bucket["t"]) * rate)
            bucket["t"] = now
            if bucket["tokens"] < 1:
                return _answer(stats, 429, "Rate limit exceeded.",
                               **{"Retry-After": f"{faults.retry_after_s:g}"})
            bucket["tokens"] -= 1
        return await handler(request)

    return _api_only(mw)


def delaying(faults: FaultConfig):
    """Added latency before anything else (a far-away server)."""

    async def mw(request, handler):
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        return await handler(request)

    return _api_only(mw)


def faulty(faults: FaultConfig, stats: ServerStats):
    """Dropped connections and 500/503 answers (seeded)."""
    rng = random.Random(faults.seed)

    async def mw(request, handler):
        if faults.drop_rate and rng.random() < faults.drop_rate:
            stats.count(0)
            request.transport.close()
            raise ConnectionResetError("dropped by fault injection")
        if faults.error_rate and rng.random() < faults.error_rate:
            return _answer(stats, rng.choice([500, 503]), "Internal server error.")
        return await handler(request)

    return _api_only(mw)


class PageServer:
    """Answers a query with one page of rows; the market is immutable, so each encoded
    page is cached (``PAGE_CACHE`` of them) and reused."""

    def __init__(self, api: MarketAPI, page_size: int, stats: ServerStats):
        self.api, self.page_size, self.stats = api, page_size, stats
        self.pages: OrderedDict[tuple[str, int, bool], bytes] = OrderedDict()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = ROUTES[request.path.rstrip("/")]
        q = dict(request.query)
        pkey = q.pop("pagination_key", None)
        sig = f"{name}?{sorted(q.items())}"
        gz = "gzip" in request.headers.get("Accept-Encoding", "")
        try:
            offset = _decode_key(pkey, sig) if pkey else 0
            payload = self.pages.get((sig, offset, gz))
            if payload is None:
                payload = self._encode(getattr(self.api, name)(q), sig, offset, gz)
                self.pages[(sig, offset, gz)] = payload
                if len(self.pages) > PAGE_CACHE:
                    self.pages.popitem(last=False)
        except BadRequest as exc:
            return _answer(self.stats, 400, str(exc))
        self.stats.count(200)
        headers = {"Content-Encoding": "gzip"} if gz else None
        return web.Response(body=payload, content_type="application/json", headers=headers)

    def _encode(self, rows: pd.DataFrame, sig: str, offset: int, gz: bool) -> bytes:
        body: dict = {"data": records(rows.iloc[offset: offset + self.page_size])}
        if offset + self.page_size < len(rows):
            body["pagination_key"] = _encode_key(offset + self.page_size, sig)
        raw = orjson.dumps(body)
        return gzip.compress(raw, compresslevel=GZIP_LEVEL) if gz else raw


def create_app(
    market: SimulatedMarket,
    api_key: str,
    *,
    faults: FaultConfig | None = None,
    page_size: int = 5000,
    bad_rows: BadRows | None = None,
    plan: str | None = None,
) -> web.Application:
    """The aiohttp application; ``app[STATS]`` is the live ``ServerStats``.

    Middlewares, outermost first: counting, latency, auth (and ``plan``: endpoints
    outside it answer 403; None serves every endpoint), rate limit, dropped connections
    and server errors; then the page handler.
    """
    faults = faults or FaultConfig()
    stats = ServerStats()
    app = web.Application(middlewares=[
        counting(stats), delaying(faults), authenticating(api_key, stats, plan),
        rate_limiting(faults, stats), faulty(faults, stats),
    ])
    app[STATS] = stats

    async def stats_handler(request: web.Request) -> web.Response:
        return web.json_response(stats.as_dict())

    app.router.add_get(STATS_PATH, stats_handler)
    app.router.add_route("*", "/{tail:.*}", PageServer(MarketAPI(market, bad_rows), page_size,
                                                       stats).handle)
    return app


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve_in_thread(
    market: SimulatedMarket,
    api_key: str = "test-key",
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    **app_kwargs,
) -> Iterator[tuple[str, web.Application]]:
    """Run the server on a background thread; yields ``(base_url, app)``.

    ``base_url`` ends with ``/v2``. The server stops when the block exits.
    """
    port = port or free_port(host)
    app = create_app(market, api_key, **app_kwargs)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    runner = web.AppRunner(app, access_log=None)

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, host, port, backlog=1024).start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="mock-jquants", daemon=True)
    thread.start()
    if not started.wait(30):
        raise RuntimeError("simulated J-Quants server did not start")
    try:
        yield f"http://{host}:{port}/v2", app
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)


def run_server(market: SimulatedMarket, api_key: str, host: str, port: int, **app_kwargs) -> None:
    """Serve until interrupted (the ``gogooku3 mock-jquants`` command)."""
    web.run_app(create_app(market, api_key, **app_kwargs), host=host, port=port,
                print=None, access_log=None)
