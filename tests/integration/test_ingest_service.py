"""Ingestion against the real service's shapes: margin interest across the switch from
weekly (no PubDate) to daily history, and plans that answer 403 outside them."""

import datetime as dt

import pytest
import requests

from gogooku3.cli import main
from gogooku3.ingest.cli import EXIT_ENDPOINTS_SKIPPED
from gogooku3.ingest.driver import ingest_range
from gogooku3.jquants.client import JQuantsClient
from gogooku3.lake import deltars
from gogooku3.market.server import serve_in_thread
from gogooku3.market.sim import MarketConfig, simulate_market
from gogooku3.settings import get_settings

KEY = "margin-key"
d = dt.date


@pytest.fixture(scope="module")
def served():
    market = simulate_market(MarketConfig(stocks=10, start=d(2026, 8, 3), end=d(2026, 10, 9),
                                          seed=3))
    with serve_in_thread(market, KEY) as (url, _):
        yield market, url


def test_server_answers_published_date_only_in_the_daily_era(served):
    market, url = served

    def rows(**q):
        r = requests.get(f"{url}/markets/margin-interest", params=q, headers={"x-api-key": KEY})
        r.raise_for_status()
        return r.json()["data"]

    assert rows(published_date="2026-09-15") == []  # the weekly record of 09-11 is public
    weekly = rows(date="2026-09-11")
    assert len(weekly) == 10 and {r["PubDate"] for r in weekly} == {""}
    assert {r["ShrtVal"] for r in weekly} == {None}
    daily = rows(published_date="2026-09-29")
    assert {r["Date"] for r in daily} == {"2026-09-28"} and all(r["ShrtVal"] for r in daily)
    bad = requests.get(f"{url}/markets/margin-interest", headers={"x-api-key": KEY},
                       params={"published_date": "2026-09-29", "date": "2026-09-28"})
    assert bad.status_code == 400


def test_silver_margin_is_usable_the_trade_date_after_publication_in_both_eras(served,
                                                                              lake_root):
    market, url = served
    client = JQuantsClient(url, KEY, max_concurrent=4)
    summary = ingest_range(d(2026, 9, 7), d(2026, 10, 6), client=client, lake_root=lake_root,
                           endpoints=["calendar", "margin_interest"])
    assert summary.ok, summary.failed
    rows = deltars.read_table("silver.margin_interest", lake_root=lake_root).to_pylist()
    usable = {}
    for r in rows:
        usable.setdefault(r["as_of_date"], set()).add((r["date"], r["published_date"]))
    # weekly: JPX published on the 2nd business day of the next week (derived here)
    assert usable[d(2026, 9, 4)] == {(d(2026, 9, 9), d(2026, 9, 8))}
    assert usable[d(2026, 9, 11)] == {(d(2026, 9, 16), d(2026, 9, 15))}
    assert usable[d(2026, 9, 18)] == {(d(2026, 9, 28), d(2026, 9, 25))}  # over Silver Week
    # daily: PubDate as served (the simulator publishes on the next trade date)
    assert usable[d(2026, 9, 25)] == {(d(2026, 9, 29), d(2026, 9, 28))}
    assert usable[d(2026, 10, 2)] == {(d(2026, 10, 6), d(2026, 10, 5))}
    assert max(usable) == d(2026, 10, 2)  # 10-05's balance is usable only after the range
    assert all(len(v) == 1 for v in usable.values())
    assert len(rows) == 10 * len(usable)
    bronze = deltars.read_table("bronze.margin_interest", lake_root=lake_root).to_pylist()
    assert {r["PubDate"] for r in bronze if r["AsOfDate"] < d(2026, 9, 25)} == {None}


def test_the_server_answers_403_outside_its_plan(served):
    market, _ = served
    with serve_in_thread(market, KEY, plan="light") as (url, _):
        def status(path, **q):
            return requests.get(f"{url}{path}", params=q, headers={"x-api-key": KEY}).status_code

        assert status("/markets/margin-interest", date="2026-09-11") == 403
        assert status("/equities/investor-types") == 200  # light includes flows
        assert status("/equities/bars/daily", date="2026-09-11") == 200
        assert status("/no/such/resource") == 403


def test_an_endpoint_outside_the_plan_is_skipped_and_the_others_publish(
        served, lake_root, monkeypatch, capsys):
    market, _ = served
    with serve_in_thread(market, KEY, plan="light") as (url, _):
        for name, value in {"JQUANTS_API_URL": url, "JQUANTS_API_KEY": KEY,
                            "GOGOOKU_LAKE": lake_root}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("JQUANTS_PLAN", raising=False)  # every endpoint is asked for
        get_settings.cache_clear()
        try:
            code = main(["ingest", "--start", "2026-09-28", "--end", "2026-10-02", "--quiet"])
        finally:
            get_settings.cache_clear()
    out = capsys.readouterr().out
    assert code == EXIT_ENDPOINTS_SKIPPED
    skipped = [line for line in out.splitlines() if "SKIPPED" in line]
    assert skipped == ["  SKIPPED margin_interest is not in your plan (HTTP 403): skipped; "
                       "set JQUANTS_PLAN or --endpoints"]
    prices = deltars.read_table("silver.equities_prices_daily", lake_root=lake_root)
    assert sorted(set(prices.column("date").to_pylist())) == [
        d(2026, 9, 28), d(2026, 9, 29), d(2026, 9, 30), d(2026, 10, 1), d(2026, 10, 2)]
    flows = deltars.read_table("bronze.investor_types", lake_root=lake_root)
    assert flows.num_rows > 0
    with pytest.raises(deltars.TableNotFound):
        deltars.read_table("bronze.margin_interest", lake_root=lake_root)


def test_the_staged_stages_skip_an_endpoint_outside_the_plan(served, lake_root):
    from gogooku3.ingest import staging as st
    from gogooku3.jquants.endpoints import FETCHED_ENDPOINTS

    market, _ = served
    days = [d(2026, 9, 29), d(2026, 9, 30)]
    area = st.staging_uri("plan-test", lake_root)
    with serve_in_thread(market, KEY, plan="light") as (url, _):
        st.refresh_calendar(JQuantsClient(url, KEY), days[0], days[-1], lake_root)
        fetched = {n: st.stage_fetch(n, days, client=JQuantsClient(url, KEY), staging=area,
                                     lake_root=lake_root) for n in FETCHED_ENDPOINTS}
    assert fetched["margin_interest"]["not_in_plan"].startswith(
        "margin_interest is not in your plan (HTTP 403)")
    assert "not_in_plan" not in fetched["bars_daily"] and fetched["bars_daily"]["rows"] == 20
    outcome = st.stage_gate(days, staging=area, lake_root=lake_root)
    assert outcome.publish == days and set(outcome.not_in_plan) == {"margin_interest"}
    summary = st.stage_silver(staging=area, lake_root=lake_root)
    assert summary.published == days and set(summary.not_in_plan) == {"margin_interest"}
    assert deltars.read_table("silver.equities_prices_daily", lake_root=lake_root).num_rows == 20
    for table in ("bronze.margin_interest", "silver.margin_interest"):
        with pytest.raises(deltars.TableNotFound):
            deltars.read_table(table, lake_root=lake_root)
