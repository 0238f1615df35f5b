"""The J-Quants-compatible server: the official client reads it; protocol and faults."""

import datetime as dt
import time

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
    # 62 requests against a bucket of 20 (+20/s): more than a loaded machine can pace away
    faults = FaultConfig(rate_limit_per_s=20, retry_after_s=0.2, error_rate=0.05, latency_ms=20,
                         seed=3)
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


def _iso(col: pd.Series) -> list[str]:
    return [str(v)[:10] for v in col]


def test_official_client_values_match_the_simulator(official, market):
    topix = official.get_idx_bars_daily_topix(from_yyyymmdd="20241001", to_yyyymmdd="20241031")
    want = market.topix[market.topix["Date"].between("2024-10-01", "2024-10-31")]
    assert _iso(topix["Date"]) == list(want["Date"])
    assert topix["C"].astype(float).tolist() == want["C"].tolist()

    master = official.get_eq_master(date="2024-10-15").set_index("Code").sort_index()
    snap = market.master[market.master["Date"] == "2024-10-15"].set_index("Code").sort_index()
    for col in ("CoName", "S17", "S33Nm", "MktNm", "ScaleCat"):
        assert master[col].tolist() == snap[col].tolist()

    day = market.fins["DiscDate"].iloc[len(market.fins) // 2]
    fins = official.get_fin_summary(date_yyyymmdd=day.replace("-", ""))
    sim = market.fins[market.fins["DiscDate"] == day]
    assert sorted(fins["Code"]) == sorted(sim["Code"])
    got = fins.set_index("Code")["EPS"].sort_index().astype(str).tolist()
    assert got == sim.set_index("Code")["EPS"].sort_index().tolist()

    code = market.margin["Code"].iloc[0]
    margin = official.get_mkt_margin_interest(code=code)
    sim_m = market.margin[market.margin["Code"] == code]
    assert margin["LongVol"].astype(float).tolist() == sim_m["LongVol"].tolist()

    inv = official.get_eq_investor_types(section="TSEPrime", from_yyyymmdd="20240901",
                                         to_yyyymmdd="20241231")
    sim_i = market.investor_types[(market.investor_types["Section"] == "TSEPrime")
                                  & market.investor_types["PubDate"].between("2024-09-01", "2024-12-31")]
    assert inv["FrgnBal"].astype(float).tolist() == sim_i["FrgnBal"].astype(float).tolist()


def test_dates_in_both_formats_and_four_char_codes(server, market):
    url, _ = server
    h = {"x-api-key": KEY}
    code5 = market.bars_for_date(dt.date(2024, 11, 5))["Code"].iloc[3]

    def rows(**params):
        out, params = [], dict(params)
        while True:
            page = requests.get(f"{url}/equities/bars/daily", params=params, headers=h).json()
            out += page["data"]
            if "pagination_key" not in page:
                return out
            params["pagination_key"] = page["pagination_key"]

    a = rows(code=code5, **{"from": "20241001", "to": "20241031"})
    b = rows(code=code5, **{"from": "2024-10-01", "to": "2024-10-31"})
    from gogooku3.jpx.calendar import TradingCalendar

    october = TradingCalendar().trading_days(dt.date(2024, 10, 1), dt.date(2024, 10, 31))
    assert a == b and [r["Date"] for r in a] == [d.isoformat() for d in october]  # no 10-14
    if code5.endswith("0"):
        assert rows(code=code5[:4], date="20241105") == rows(code=code5, date="2024-11-05")
    assert all(r["UL"] in ("0", "1") for r in rows(date="20241105"))


def test_master_as_of_date_lists_only_codes_listed_that_day(server, market):
    url, _ = server
    h = {"x-api-key": KEY}
    for day in (market.days[0], market.days[-1]):
        data, params = [], {"date": day.isoformat()}
        while True:
            page = requests.get(f"{url}/equities/master", params=params, headers=h).json()
            data += page["data"]
            if "pagination_key" not in page:
                break
            params["pagination_key"] = page["pagination_key"]
        assert {r["Code"] for r in data} == set(market.bars_for_date(day)["Code"])


def test_server_errors_drops_and_latency_are_injected(market):
    h = {"x-api-key": KEY}
    with serve_in_thread(market, KEY, faults=FaultConfig(error_rate=1.0, seed=1)) as (url, _):
        codes = {requests.get(f"{url}/markets/calendar", headers=h).status_code for _ in range(8)}
        assert codes <= {500, 503} and codes
        assert "message" in requests.get(f"{url}/markets/calendar", headers=h).json()
    with serve_in_thread(market, KEY, faults=FaultConfig(drop_rate=1.0)) as (url, _):
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(f"{url}/markets/calendar", headers=h)
    with serve_in_thread(market, KEY, faults=FaultConfig(latency_ms=150)) as (url, _):
        t0 = time.perf_counter()
        assert requests.get(f"{url}/markets/calendar", headers=h).status_code == 200
        assert time.perf_counter() - t0 >= 0.15


def test_stats_endpoint_counts_concurrent_requests(market):
    from concurrent.futures import ThreadPoolExecutor

    h = {"x-api-key": KEY}
    with serve_in_thread(market, KEY, faults=FaultConfig(latency_ms=200)) as (url, _):
        with ThreadPoolExecutor(6) as pool:
            done = list(pool.map(lambda _: requests.get(f"{url}/markets/calendar", headers=h), range(6)))
        stats = requests.get(f"{url}/_sim/stats").json()
    assert all(r.status_code == 200 for r in done)
    assert stats["requests"] == 6 and stats["in_flight"] == 0
    assert 2 <= stats["peak_in_flight"] <= 6 and stats["by_status"] == {"200": 6}
