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

Faults (``FaultConfig``, seeded): a token-bucket rate limit answered with 429 and
``Retry-After``; random 500/503; added latency; dropped connections. Planted bad rows
(``BadRows``) corrupt chosen dates for quality-gate tests.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
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

import numpy as np
import orjson
import pandas as pd
from aiohttp import web

from gogooku3.jpx.calendar import CalendarError, parse_date
from gogooku3.market.sim import SimulatedMarket

log = logging.getLogger(__name__)

STATS = web.AppKey("stats", object)
#: encoded pages kept per server (one trade date of bars for 4,000 stocks is ~1 MB raw)
PAGE_CACHE = 512
#: gzip level of responses: fast, as a server under load would choose (6 costs ~4x the CPU)
GZIP_LEVEL = 1
BAD_ROW_KINDS = ("negative_price", "high_below_low", "duplicate", "missing_day", "bad_adjfactor")


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
class BadRows:
    """Planted bad data: ``{date: kind}`` with kinds from ``BAD_ROW_KINDS``."""

    by_date: dict[dt.date, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for day, kind in self.by_date.items():
            if kind not in BAD_ROW_KINDS:
                raise ValueError(f"bad row kind {kind!r} on {day}; known: {BAD_ROW_KINDS}")


@dataclass
class ServerStats:
    requests: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    by_status: dict[int, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"requests": self.requests, "in_flight": self.in_flight,
                "peak_in_flight": self.peak_in_flight,
                "by_status": {str(k): v for k, v in sorted(self.by_status.items())}}


class BadRequest(Exception):
    """Becomes a 400 with ``{"message": ...}``."""


def _parse_day(value: str | None, name: str) -> dt.date | None:
    if value is None or value == "":
        return None
    try:
        return parse_date(value, f"'{name}'")
    except CalendarError as exc:
        raise BadRequest(str(exc)) from None


def _between(df: pd.DataFrame, col: str, lo: dt.date | None, hi: dt.date | None) -> pd.DataFrame:
    """Rows with ``lo <= df[col] <= hi`` (ISO date strings compare in date order)."""
    if lo:
        df = df[df[col] >= lo.isoformat()]
    if hi:
        df = df[df[col] <= hi.isoformat()]
    return df


def _records(df: pd.DataFrame) -> list[dict]:
    """JSON-ready rows: NaN → null, numpy scalars → Python (column-wise, then zipped)."""
    if df.empty:
        return []
    columns = []
    for name in df.columns:
        values = df[name].to_numpy()
        cells = values.astype(object)
        cells[pd.isna(values)] = None
        columns.append(cells.tolist())
    names = list(df.columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


class MarketAPI:
    """Query logic per endpoint: parameters → rows (a DataFrame in API columns)."""

    def __init__(self, market: SimulatedMarket, bad: BadRows | None = None):
        self.m = market
        self.bad = bad or BadRows()
        self._master_by_date = {d: g for d, g in market.master.groupby("Date", sort=True)}

    def _code(self, q) -> str | None:
        code = q.get("code")
        if code is None or code == "":
            return None
        if len(code) not in (4, 5):
            raise BadRequest(f"'code' must be 4 or 5 characters, got {code!r}")
        return code

    @staticmethod
    def _match_code(df: pd.DataFrame, code: str) -> pd.DataFrame:
        # a 4-character code matches the common stock (5th char '0') only
        return df[df["Code"] == (code + "0" if len(code) == 4 else code)]

    def _range(self, q) -> tuple[dt.date | None, dt.date | None]:
        lo, hi = _parse_day(q.get("from"), "from"), _parse_day(q.get("to"), "to")
        if lo and hi and lo > hi:
            raise BadRequest(f"'from' {lo} is after 'to' {hi}")
        return lo, hi

    def bars_daily(self, q) -> pd.DataFrame:
        code, day = self._code(q), _parse_day(q.get("date"), "date")
        lo, hi = self._range(q)
        if code is None and day is None:
            raise BadRequest("either 'code' or 'date' is required")
        if day is not None:
            out = self.m.bars_for_date(day)
            if code:
                out = self._match_code(out, code)
            return self._corrupt(day, out)
        return _between(self._match_code(self.m.bars, code), "Date", lo, hi)

    def _corrupt(self, day: dt.date, df: pd.DataFrame) -> pd.DataFrame:
        kind = self.bad.by_date.get(day)
        if kind is None or df.empty:
            return df
        df = df.copy()
        first = df.index[df["C"].notna()][0]
        if kind == "missing_day":
            return df.iloc[0:0]
        if kind == "negative_price":
            df.loc[first, "C"] = -abs(df.loc[first, "C"])
        elif kind == "high_below_low":
            df.loc[first, "H"] = df.loc[first, "L"] - 1
        elif kind == "duplicate":
            df = pd.concat([df, df.loc[[first]]])
        elif kind == "bad_adjfactor":
            df.loc[first, "AdjFactor"] = 0.5  # a split that did not happen
        return df

    def master(self, q) -> pd.DataFrame:
        code, day = self._code(q), _parse_day(q.get("date"), "date")
        if day is None:
            day = self.m.days[-1]
        key = day.isoformat()
        dates = list(self._master_by_date)
        # the snapshot in force on `day` (the latest listing day on or before it)
        i = np.searchsorted(dates, key, side="right") - 1
        if i < 0:
            return self.m.master.iloc[0:0]
        out = self._master_by_date[dates[i]].assign(Date=key)
        return self._match_code(out, code) if code else out

    def topix(self, q) -> pd.DataFrame:
        return _between(self.m.topix, "Date", *self._range(q))

    def calendar(self, q) -> pd.DataFrame:
        lo, hi = self._range(q)
        lo = lo or self.m.days[0]
        hi = hi or self.m.days[-1]
        rows = pd.DataFrame(self.m.calendar_rows(lo, hi))
        hol = q.get("hol_div")
        if hol is not None:
            if hol not in {"0", "1", "2", "3"}:
                raise BadRequest(f"'hol_div' must be 0-3, got {hol!r}")
            rows = rows[rows["HolDiv"] == hol]
        return rows

    def fins_summary(self, q) -> pd.DataFrame:
        code, day = self._code(q), _parse_day(q.get("date"), "date")
        if code is None and day is None:
            raise BadRequest("either 'code' or 'date' is required")
        out = self.m.fins
        if day is not None:
            out = out[out["DiscDate"] == day.isoformat()]
        if code:
            out = self._match_code(out, code)
        return out

    def investor_types(self, q) -> pd.DataFrame:
        lo, hi = self._range(q)
        out = self.m.investor_types
        section = q.get("section")
        if section:
            out = out[out["Section"] == section]
        return _between(out, "PubDate", lo, hi)

    def margin_interest(self, q) -> pd.DataFrame:
        code, day = self._code(q), _parse_day(q.get("date"), "date")
        pub = _parse_day(q.get("published_date"), "published_date")
        lo, hi = self._range(q)
        if code is None and day is None and pub is None:
            raise BadRequest("one of 'code', 'date' or 'published_date' is required")
        if pub is not None and (day is not None or lo is not None or hi is not None):
            raise BadRequest("'published_date' cannot be combined with 'date', 'from' or 'to'")
        if (lo is not None or hi is not None) and code is None:
            raise BadRequest("'from'/'to' need 'code'")
        # weekly-era rows have an empty PubDate: published_date= never finds them
        out = self.m.margin
        if day is not None:
            out = out[out["Date"] == day.isoformat()]
        if pub is not None:
            out = out[out["PubDate"] == pub.isoformat()]
        if code:
            out = self._match_code(out, code)
        return _between(out, "Date", lo, hi)


ROUTES = {
    "/v2/equities/master": "master",
    "/v2/equities/bars/daily": "bars_daily",
    "/v2/indices/bars/daily/topix": "topix",
    "/v2/markets/calendar": "calendar",
    "/v2/fins/summary": "fins_summary",
    "/v2/equities/investor-types": "investor_types",
    "/v2/markets/margin-interest": "margin_interest",
}


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


def create_app(
    market: SimulatedMarket,
    api_key: str,
    *,
    faults: FaultConfig | None = None,
    page_size: int = 5000,
    bad_rows: BadRows | None = None,
) -> web.Application:
    """The aiohttp application; ``app[STATS]`` is the live ``ServerStats``."""
    faults = faults or FaultConfig()
    api = MarketAPI(market, bad_rows)
    stats = ServerStats()
    rng = random.Random(faults.seed)
    bucket = {"tokens": faults.rate_limit_per_s or 0.0, "t": time.monotonic()}
    # The market is immutable, so an encoded page never changes: encode it once.
    pages: OrderedDict[tuple[str, int, bool], bytes] = OrderedDict()

    def _json(status: int, body: dict) -> web.Response:
        stats.by_status[status] = stats.by_status.get(status, 0) + 1
        return web.json_response(body, status=status)

    async def handle(request: web.Request) -> web.StreamResponse:
        stats.requests += 1
        stats.in_flight += 1
        stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
        try:
            return await _handle(request)
        finally:
            stats.in_flight -= 1

    async def _handle(request: web.Request) -> web.StreamResponse:
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        key = request.headers.get("x-api-key")
        if not key:
            return _json(401, {"message": "Missing API key (x-api-key header)."})
        if key != api_key:
            return _json(403, {"message": "Invalid API key."})
        name = ROUTES.get(request.path.rstrip("/"))
        if name is None:
            return _json(403, {"message": "Forbidden: unknown resource."})
        if faults.rate_limit_per_s:
            now = time.monotonic()
            bucket["tokens"] = min(faults.rate_limit_per_s,
                                   bucket["tokens"] + (now - bucket["t"]) * faults.rate_limit_per_s)
            bucket["t"] = now
            if bucket["tokens"] < 1:
                stats.by_status[429] = stats.by_status.get(429, 0) + 1
                return web.json_response(
                    {"message": "Rate limit exceeded."}, status=429,
                    headers={"Retry-After": f"{faults.retry_after_s:g}"})
            bucket["tokens"] -= 1
        if faults.drop_rate and rng.random() < faults.drop_rate:
            stats.by_status[0] = stats.by_status.get(0, 0) + 1
            request.transport.close()
            raise ConnectionResetError("dropped by fault injection")
        if faults.error_rate and rng.random() < faults.error_rate:
            return _json(rng.choice([500, 503]), {"message": "Internal server error."})
        q = dict(request.query)
        pkey = q.pop("pagination_key", None)
        sig = f"{name}?{sorted(q.items())}"
        gz = "gzip" in request.headers.get("Accept-Encoding", "")
        try:
            offset = _decode_key(pkey, sig) if pkey else 0
            payload = pages.get((sig, offset, gz))
            if payload is None:
                payload = _encode_page(getattr(api, name)(q), sig, offset, gz)
                pages[(sig, offset, gz)] = payload
                if len(pages) > PAGE_CACHE:
                    pages.popitem(last=False)
        except BadRequest as exc:
            return _json(400, {"message": str(exc)})
        stats.by_status[200] = stats.by_status.get(200, 0) + 1
        headers = {"Content-Encoding": "gzip"} if gz else None
        return web.Response(body=payload, content_type="application/json", headers=headers)

    def _encode_page(rows: pd.DataFrame, sig: str, offset: int, gz: bool) -> bytes:
        body: dict = {"data": _records(rows.iloc[offset: offset + page_size])}
        if offset + page_size < len(rows):
            body["pagination_key"] = _encode_key(offset + page_size, sig)
        raw = orjson.dumps(body)
        return gzip.compress(raw, compresslevel=GZIP_LEVEL) if gz else raw

    async def stats_handler(request: web.Request) -> web.Response:
        return web.json_response(stats.as_dict())

    app = web.Application()
    app[STATS] = stats
    app.router.add_get("/v2/_sim/stats", stats_handler)
    app.router.add_route("*", "/{tail:.*}", handle)
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
