"""The J-Quants-compatible server: the official client reads it; protocol and faults."""

import datetime as dt

import aiohttp
import pandas as pd
import pytest
import requests

from gogooku3.market.server import STATS, BadRows, FaultConfig, serve_in_thread
from gogooku3.market.sim import MarketConfig, simulate_market

KEY = "test-key-0123456789"


@pytest.fixture(scope="module")
def market():
    return simulate_market(MarketConfig(stocks=80, start=dt.date(2024, 9, 2),
                                        end=dt.date(2024, 12, 27), seed=5))


@pytest.fixture(scope="module")
def server(market):
    with serve_in_thread(market, KEY, page_size=37) as (url, app):
        yield url, app


@pytest.fixture(scope="module")
def official(server):
    from jquantsapi import ClientV2

    client = ClientV2(api_key=KEY)
    client.JQUANTS_API_BASE = server[0]
    return client


def test_official_client_reads_every_endpoint_with_official_columns(official, market):
    from jquantsapi import constants as c

    bars = official.get_eq_bars_daily(date_yyyymmdd="20241105")
    assert list(bars.columns[:16]) == c.EQ_BARS_DAILY_COLUMNS_V2[:16]
    expected = market.bars_for_date(dt.date(2024, 11, 5))
    assert len(bars) == len(expected) > 37  # paged
    got = bars.set_index("Code")["C"].astype(float)
    want = expected.set_index("Code")["C"].astype(float)
    pd.testing.assert_series_equal(got.sort_index(), want.sort_index(), check_names=False)

    master = official.get_eq_master(date="20241105")
    assert list(master.columns) == c.EQ_MASTER_COLUMNS_V2
    assert set(master["Code"]) == set(expected["Code"])
    cal = official.get_mkt_calendar(from_yyyymmdd="20241101", to_yyyymmdd="20241105")
    assert list(cal.columns) == c.MARKETS_TRADING_CALENDAR_COLUMNS_V2
    assert dict(zip(cal["Date"].astype(str).str[:10], cal["HolDiv"], strict=True))["2024-11-04"] == "0"
    topix = official.get_idx_bars_daily_topix(from_yyyymmdd="20241101", to_yyyymmdd="20241130")
    assert list(topix.columns) == c.INDICES_TOPIX_COLUMNS_V2 and len(topix) == 20
    fins = official.get_fin_summary(code=market.fins["Code"].iloc[0])
    assert len(fins) >= 1 and "DiscTime" in fins.columns
    inv = official.get_eq_investor_types(from_yyyymmdd="20240901", to_yyyymmdd="20241231")
    assert set(c.EQ_INVESTOR_TYPES_COLUMNS_V2) <= set(inv.columns) and len(inv) > 0
    margin = official.get_mkt_margin_interest(code=market.margin["Code"].iloc[0])
    assert set(c.MKT_MARGIN_INTEREST_COLUMNS_V2[:10]) <= set(margin.columns) and len(margin) > 0


def test_auth_bad_params_and_unknown_paths(server):
    url, _ = server
    assert requests.get(f"{url}/equities/bars/daily?date=20241105").status_code == 401
    wrong = requests.get(f"{url}/equities/bars/daily?date=20241105", headers={"x-api-key": "no"})
    assert wrong.status_code == 403
    h = {"x-api-key": KEY}
    bad = requests.get(f"{url}/equities/bars/daily", headers=h)
    assert bad.status_code == 400 and "code" in bad.json()["message"]
    assert requests.get(f"{url}/equities/bars/daily?date=2024-13-01", headers=h).status_code == 400
    assert requests.get(f"{url}/no/such/thing", headers=h).status_code == 403


def test_pagination_keys_are_opaque_and_complete(server, market):
    url, _ = server
    h = {"x-api-key": KEY}
    rows, keys, params = [], [], {"date": "2024-11-05"}
    while True:
        page = requests.get(f"{url}/equities/bars/daily", params=params, headers=h).json()
        rows += page["data"]
        if "pagination_key" not in page:
            break
        keys.append(page["pagination_key"])
        params = {"date": "2024-11-05", "pagination_key": page["pagination_key"]}
    assert len(keys) == len(set(keys)) >= 2
    assert len(rows) == len(market.bars_for_date(dt.date(2024, 11, 5)))


def test_rate_limit_answers_429_with_retry_after(market):
    with serve_in_thread(market, KEY, faults=FaultConfig(rate_limit_per_s=2, retry_after_s=1)) as (url, app):
        statuses = [requests.get(f"{url}/markets/calendar", headers={"x-api-key": KEY}) for _ in range(6)]
        limited = [r for r in statuses if r.status_code == 429]
        assert limited and limited[0].headers["Retry-After"] == "1"
        assert requests.get(f"{url}/_sim/stats").json()["by_status"]["429"] == len(limited)


def test_planted_bad_rows_are_served_for_their_date(market):
    day = dt.date(2024, 11, 6)
    with serve_in_thread(market, KEY, bad_rows=BadRows({day: "high_below_low"})) as (url, _):
        data = requests.get(f"{url}/equities/bars/daily", params={"date": "20241106"},
                            headers={"x-api-key": KEY}).json()["data"]
    assert any(r["H"] is not None and r["H"] < r["L"] for r in data)


async def _fetch_all(url, dates, client_kwargs):
    from gogooku3.jquants.client import JQuantsClient

    async with JQuantsClient(url, KEY, **client_kwargs) as client:
        pages = await client.get_many("/equities/bars/daily", [{"date": d} for d in dates])
        return pages, client.stats


def test_client_caps_in_flight_and_survives_a_429_storm(market):
    import asyncio

    dates = [d.isoformat() for d in market.days[:30]]
    faults = FaultConfig(rate_limit_per_s=40, retry_after_s=0.2, error_rate=0.05, latency_ms=20, seed=3)
    with serve_in_thread(market, KEY, faults=faults, page_size=50) as (url, app):
        pages, stats = asyncio.run(_fetch_all(url, dates, {"max_concurrent": 8}))
        server_stats = app[STATS]
        assert server_stats.peak_in_flight <= 8
        assert server_stats.by_status.get(429, 0) > 0
    rows = [(r["Date"], r["Code"]) for page in pages for r in page]
    assert len(rows) == len(set(rows)) == sum(len(market.bars_for_date(d)) for d in market.days[:30])


def test_wrong_key_fails_at_once_without_retry(market):
    import asyncio

    from gogooku3.jquants.errors import JQuantsAuthError

    with serve_in_thread(market, "another-key-999") as (url, app):
        with pytest.raises(JQuantsAuthError, match="equities/bars/daily"):
            asyncio.run(_fetch_all(url, ["2024-11-05"], {}))
        assert app[STATS].requests == 1
    assert isinstance(aiohttp.__version__, str)
