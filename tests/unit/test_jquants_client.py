"""The async J-Quants client against tiny hand-made aiohttp apps (one behaviour per test)."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time

import pytest
from aiohttp import web

from gogooku3.jquants.client import JQuantsClient, RetryPolicy, parse_retry_after
from gogooku3.jquants.errors import (
    JQuantsAuthError,
    JQuantsRequestError,
    JQuantsRetryExhausted,
)

KEY = "sk-test-secret-0123"
FAST = RetryPolicy(max_attempts=5, base_delay_s=0.01, max_delay_s=0.05)


def serve(handler, call):
    """Run ``call(base_url)`` (a coroutine function) against an app routing everything to ``handler``."""

    async def main():
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        try:
            return await call(f"http://127.0.0.1:{port}/v2")
        finally:
            await runner.cleanup()

    return asyncio.run(main())


def fetch(base, path="/equities/bars/daily", params=None, key=KEY, **kw):
    async def go():
        async with JQuantsClient(base, key, retry=kw.pop("retry", FAST), **kw) as c:
            return await c.get(path, params or {"date": "2024-01-04"}), c

    return go()


def test_follows_pagination_key_to_the_last_page_and_sends_it_verbatim():
    keys = ["k1+a/b=", "k2&x y", None]
    seen = []

    async def handler(request):
        seen.append(dict(request.query))
        i = 0 if "pagination_key" not in request.query else keys.index(request.query["pagination_key"]) + 1
        body = {"data": [{"Code": f"{i}{j}"} for j in range(3)]}
        if keys[i]:
            body["pagination_key"] = keys[i]
        return web.json_response(body)

    rows, client = serve(handler, fetch)
    assert [r["Code"] for r in rows] == ["00", "01", "02", "10", "11", "12", "20", "21", "22"]
    assert seen[1] == {"date": "2024-01-04", "pagination_key": "k1+a/b="}
    assert seen[2] == {"date": "2024-01-04", "pagination_key": "k2&x y"}
    assert client.stats.pages == 3


def test_sends_key_header_and_never_shows_it(caplog):
    got = {}

    async def handler(request):
        got["key"] = request.headers.get("x-api-key")
        return web.json_response({"message": "forbidden"}, status=403)

    caplog.set_level(logging.DEBUG)
    with pytest.raises(JQuantsAuthError) as err:
        serve(handler, fetch)
    assert got["key"] == KEY
    assert KEY not in str(err.value) and KEY not in caplog.text
    assert KEY not in repr(JQuantsClient("http://x", KEY))


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failure_raises_at_once_naming_endpoint_and_params(status):
    hits = []

    async def handler(request):
        hits.append(1)
        return web.json_response({"message": "Invalid API key"}, status=status)

    with pytest.raises(JQuantsAuthError) as err:
        serve(handler, lambda b: fetch(b, params={"date": "2024-01-05"}))
    assert len(hits) == 1
    assert err.value.status == status
    assert "/equities/bars/daily" in str(err.value) and "date=2024-01-05" in str(err.value)


def test_bad_request_is_not_retried():
    hits = []

    async def handler(request):
        hits.append(1)
        return web.json_response({"message": "code or date is required"}, status=400)

    with pytest.raises(JQuantsRequestError, match="code or date is required"):
        serve(handler, fetch)
    assert len(hits) == 1


@pytest.mark.parametrize("header", ["seconds", "http-date"])
def test_429_waits_retry_after_then_succeeds(header):
    calls = []

    async def handler(request):
        calls.append(time.monotonic())
        if len(calls) == 1:
            value = "1" if header == "seconds" else email.utils.formatdate(time.time() + 1.2, usegmt=True)
            return web.json_response({"message": "Rate limit exceeded"}, status=429,
                                     headers={"Retry-After": value})
        return web.json_response({"data": [{"Code": "13010"}]})

    rows, client = serve(handler, fetch)
    assert rows == [{"Code": "13010"}]
    assert calls[1] - calls[0] >= 0.2  # HTTP-date has one-second resolution
    if header == "seconds":
        assert calls[1] - calls[0] >= 0.99
    assert client.stats.retries == 1


def test_5xx_and_dropped_connections_are_retried():
    calls = []

    async def handler(request):
        calls.append(1)
        if len(calls) == 1:
            return web.Response(status=503, text="busy")
        if len(calls) == 2:
            request.transport.close()  # drop the connection without an answer
            await asyncio.sleep(0.01)
            return web.Response(status=200)
        return web.json_response({"data": [{"Code": "13010"}]})

    rows, client = serve(handler, fetch)
    assert rows == [{"Code": "13010"}] and len(calls) == 3


def test_retry_budget_is_bounded():
    calls = []

    async def handler(request):
        calls.append(1)
        return web.Response(status=500, text="boom")

    with pytest.raises(JQuantsRetryExhausted, match="gave up after 5 attempts"):
        serve(handler, fetch)
    assert len(calls) == 5


def test_in_flight_never_exceeds_the_cap():
    state = {"now": 0, "peak": 0}

    async def handler(request):
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
        await asyncio.sleep(0.01)
        state["now"] -= 1
        return web.json_response({"data": [{"Code": request.query["date"]}]})

    async def call(base):
        async with JQuantsClient(base, KEY, max_concurrent=7) as c:
            out = await c.get_many("/equities/bars/daily", [{"date": str(i)} for i in range(60)])
            return out, c.stats.in_flight.peak

    out, client_peak = serve(handler, call)
    assert [rows[0]["Code"] for rows in out] == [str(i) for i in range(60)]
    assert state["peak"] <= 7 and client_peak <= 7
    assert state["peak"] >= 5  # the cap is actually used


def test_requests_per_minute_paces_starts():
    starts = []

    async def handler(request):
        starts.append(time.monotonic())
        return web.json_response({"data": []})

    created = []

    async def call(base):
        # 120/min: a burst of 12 tokens, then one token every 0.5 s
        created.append(time.monotonic())  # the bucket starts full no earlier than this
        async with JQuantsClient(base, KEY, requests_per_minute=120) as c:
            await c.get_many("/x", [{"date": str(i)} for i in range(16)])

    serve(handler, call)
    # 12 burst tokens, then 2 requests/s: the 16th cannot start before 4 more tokens,
    # 2 s after the bucket was created (measured from there, not from the first arrival,
    # which connection set-up can delay on a loaded machine)
    assert len(starts) == 16
    assert starts[-1] - created[0] >= 1.95


@pytest.mark.parametrize(
    "value, expected",
    [("3", 3.0), ("0", 0.0), ("-2", 0.0), ("soon", None), (None, None),
     ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0)],
)
def test_parse_retry_after(value, expected):
    now = email.utils.parsedate_to_datetime("Wed, 21 Oct 2015 07:28:00 GMT").timestamp()
    assert parse_retry_after(value, now=now) == expected


def test_a_429_storm_still_ends_with_every_row_exactly_once():
    import random

    rng = random.Random(3)
    pages = 4  # each date answers 4 pages of 5 rows

    async def handler(request):
        roll = rng.random()
        if roll < 0.3:
            return web.json_response({"message": "Rate limit exceeded"}, status=429,
                                     headers={"Retry-After": "0"})
        if roll < 0.35:
            return web.Response(status=502)
        if roll < 0.4:
            request.transport.close()
            return web.Response(status=200)
        day = request.query["date"]
        page = int(request.query.get("pagination_key", "p0")[1:])
        body = {"data": [{"Date": day, "Code": f"{page}{j}"} for j in range(5)]}
        if page + 1 < pages:
            body["pagination_key"] = f"p{page + 1}"
        return web.json_response(body)

    async def call(base):
        retry = RetryPolicy(max_attempts=40, base_delay_s=0.001, max_delay_s=0.01)
        async with JQuantsClient(base, KEY, max_concurrent=20, retry=retry) as c:
            out = await c.get_many("/equities/bars/daily", [{"date": f"d{i}"} for i in range(50)])
            return out, c.stats

    out, stats = serve(handler, call)
    keys = [(r["Date"], r["Code"]) for rows in out for r in rows]
    assert len(keys) == len(set(keys)) == 50 * pages * 5
    assert stats.retries > 50 and stats.statuses.get(429, 0) > 30


@pytest.mark.parametrize("as_table", [False, True])
@pytest.mark.parametrize("rows", [1, 20_000])  # a small page decodes inline, a large one off-loop
def test_gzip_pages_are_inflated_and_a_corrupt_one_is_retried(rows, as_table):
    import gzip
    import json
    import random

    from gogooku3.jquants import client as client_module

    rng = random.Random(rows)
    data = [{"Code": f"{13010 + i}", "C": rng.random()} for i in range(rows)]
    good = gzip.compress(json.dumps({"data": data}).encode())
    assert (len(good) >= client_module._OFF_LOOP_BYTES) == (rows > 1)
    calls = []

    async def handler(request):
        calls.append(request.headers.get("Accept-Encoding"))
        body = good[: len(good) // 2] + bytes(len(good) - len(good) // 2) if len(calls) == 1 else good
        return web.Response(body=body, headers={"Content-Encoding": "gzip"},
                            content_type="application/json")

    async def call(base):
        async with JQuantsClient(base, KEY, retry=FAST) as c:
            got = await (c.get_table if as_table else c.get)("/equities/bars/daily", {"date": "d"})
            return (got.to_pylist() if as_table else got), c

    got, client = serve(handler, call)
    assert got == data and len(calls) == 2 and calls[0] == "gzip"
    assert client.stats.retries == 1


def _pages_app(pages):
    """An app serving ``pages`` (JSON texts) in order, chained by pagination keys."""

    async def handler(request):
        i = int(request.query.get("pagination_key", "0"))
        text = pages[i]
        if i + 1 < len(pages):  # splice the key into the object's text, as sent
            text = text[: text.rindex("}")] + f', "pagination_key": "{i + 1}"}}'
        return web.Response(text=text, content_type="application/json")

    return handler


def test_get_table_holds_the_rows_of_get_whatever_the_pages_look_like():
    import json

    import pyarrow as pa

    rows = [
        {"Date": "2024-01-04", "Code": "13010", "O": 101.5, "UL": "0", "Extra": 1},
        {"Date": "2024-01-04", "Code": "130A0", "O": None, "UL": "1", "Extra": None},
    ]
    pages = [
        json.dumps({"data": rows[:1]}),
        json.dumps({"data": []}),  # a page without rows
        json.dumps({"data": rows[1:]}, indent=2),  # pretty-printed: newlines inside
        json.dumps({"data": [{**rows[0], "O": "101.5"}, rows[1]]}),  # O: number, then text
    ]
    fields = pa.schema([("Date", pa.string()), ("Code", pa.string()), ("O", pa.float64()),
                        ("UL", pa.string()), ("Absent", pa.float64())])

    async def call(base):
        async with JQuantsClient(base, KEY, retry=FAST) as c:
            return (await c.get("/x", {"date": "d"}),
                    await c.get_table("/x", {"date": "d"}, fields=fields))

    got_rows, table = serve(_pages_app(pages), call)
    assert got_rows == rows + [{**rows[0], "O": "101.5"}, rows[1]]
    # typed fields keep their type while the pages agree; fields typed differently by two
    # pages are text (to be parsed by bronze); a typed field that no row sends stays absent
    assert table.num_rows == 4 and "Absent" not in table.column_names
    assert table.schema.field("Code").type == pa.string()
    assert table.column("O").to_pylist() == ["101.5", None, "101.5", None]
    assert table.column("Code").to_pylist() == ["13010", "130A0"] * 2
    assert table.column("UL").to_pylist() == ["0", "1", "0", "1"]


@pytest.mark.parametrize("text", ['[{"Code": "1"}]', '{"data": {"Code": "1"}}', '{"data": [1, 2]}',
                                  '{"data": null}'])
def test_a_page_that_is_not_the_page_shape_is_a_protocol_error(text):
    from gogooku3.jquants.errors import JQuantsProtocolError

    async def call(base):
        async with JQuantsClient(base, KEY, retry=FAST) as c:
            await c.get_table("/equities/bars/daily", {"date": "2024-01-04"})

    with pytest.raises(JQuantsProtocolError,
                       match=r"/equities/bars/daily\?date=2024-01-04 \(HTTP 200\): page"):
        serve(_pages_app([text]), call)
