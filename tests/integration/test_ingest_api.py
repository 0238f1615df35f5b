"""Ingestion over HTTP from the simulated J-Quants server, with faults on."""

import datetime as dt

import pytest

from gogooku3.ingest.driver import ingest_range
from gogooku3.jquants.client import JQuantsClient, RetryPolicy
from gogooku3.lake import deltars
from gogooku3.market.server import STATS, BadRows, FaultConfig, serve_in_thread
from gogooku3.market.sim import MarketConfig, simulate_market

KEY = "api-test-key-42"
START, END = dt.date(2024, 10, 28), dt.date(2024, 11, 29)
BAD_DAY = dt.date(2024, 11, 13)


@pytest.fixture(scope="module")
def market():
    return simulate_market(MarketConfig(stocks=50, start=dt.date(2024, 9, 2),
                                        end=dt.date(2024, 12, 27), seed=9))


def _ingest(url, lake_root, **kw):
    client = JQuantsClient(url, KEY, max_concurrent=6, retry=RetryPolicy(max_attempts=30))
    return ingest_range(START, END, client=client, lake_root=lake_root, **kw)


def _snapshot(lake_root):
    table = deltars.read_table("silver.equities_prices_daily", lake_root=lake_root)
    return table.sort_by([("date", "ascending"), ("code", "ascending")]).to_pylist()


def test_faulty_server_still_gives_every_row_once_and_reruns_change_nothing(market, lake_root):
    # 60 requests/s is still exceeded by 6 in flight (429s asserted); pages of 25 rows
    # page every date of 50 stocks in two
    faults = FaultConfig(rate_limit_per_s=60, retry_after_s=0.1, error_rate=0.05,
                         latency_ms=5, seed=4)
    with serve_in_thread(market, KEY, faults=faults, page_size=25) as (url, app):
        summary = _ingest(url, lake_root)
        assert summary.ok, summary.failed
        assert app[STATS].by_status.get(429, 0) > 0 and app[STATS].peak_in_flight <= 6
        first = _snapshot(lake_root)
        days = {r["date"] for r in first}
        assert len(first) == sum(len(market.bars_for_date(d)) for d in days)
        assert days == {d for d in market.days if START <= d <= END}
        again = _ingest(url, lake_root, resume=False)
        assert again.ok
    assert _snapshot(lake_root) == first


def test_a_bad_day_fails_alone_and_the_other_days_publish(market, lake_root):
    with serve_in_thread(market, KEY, bad_rows=BadRows({BAD_DAY: "negative_price"})) as (url, _):
        summary = _ingest(url, lake_root)
    assert list(summary.failed) == [BAD_DAY]
    assert any("bars_daily" in m and "2024-11-13" in m for m in summary.failed[BAD_DAY])
    silver_days = {r["date"] for r in _snapshot(lake_root)}
    assert BAD_DAY not in silver_days
    assert len(silver_days) == len([d for d in market.days if START <= d <= END]) - 1
    quarantine = deltars.read_table("quality.quarantine", lake_root=lake_root).to_pylist()
    assert any(r["date"] == BAD_DAY for r in quarantine)
