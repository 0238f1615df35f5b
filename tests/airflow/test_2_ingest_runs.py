"""jquants_daily_ingest run by the real Airflow CLI against the simulated J-Quants server."""

from __future__ import annotations

import datetime as dt
import json
import os
import re

import pytest
from af_helpers import BAD_DAY, HISTORY_END, MARKET_START, STOCKS

from gogooku3.jpx.calendar import TradingCalendar
from gogooku3.lake import deltars

DAY = dt.date(2026, 11, 20)
HOLIDAY = dt.date(2026, 11, 23)
PANELS = ("bronze.equities_bars_daily", "bronze.equities_master",
          "silver.equities_prices_daily")


def _dates(table: str, lake: str, start=None, end=None) -> set[dt.date]:
    try:
        t = deltars.read_table(table, start, end, columns=["date"], lake_root=lake)
    except deltars.TableNotFound:
        return set()
    return set(t.column("date").to_pylist())


def _versions(lake: str) -> dict[str, int | None]:
    from gogooku3.lake import catalog

    return {s.name: deltars.table_info(s, lake_root=lake).version for s in catalog.tables()
            if s.layer in ("bronze", "silver", "quality")}


def test_history_load_in_one_run_publishes_every_trading_day(airflow_env, history):
    lake = airflow_env.lake
    days = set(TradingCalendar.from_lake(lake).trading_days(MARKET_START, HISTORY_END))
    assert len(days) > 260
    for table in PANELS:
        assert _dates(table, lake) == days, table


def test_dags_test_2026_11_20_writes_that_days_bronze_and_silver_and_passes_the_gate(
        airflow_env, history):
    lake = airflow_env.lake
    proc = airflow_env.dags_test("jquants_daily_ingest", DAY.isoformat())
    assert "state=success" in proc.stdout + proc.stderr
    for table in PANELS:
        rows = deltars.read_table(table, DAY, DAY, lake_root=lake)
        assert 0 < rows.num_rows <= STOCKS, table
    v = deltars.read_table("quality.validations", DAY, DAY, lake_root=lake).to_pylist()
    assert v and all(r["success"] for r in v)
    assert {r["table_name"] for r in v} >= {"bronze.equities_bars_daily",
                                            "bronze.equities_master"}
    staging = f"{lake}/_staging/ingest"
    leftovers = [p for p in os.listdir(staging) if "manual" in p]
    assert leftovers == [], "a finished run removes its staging"


def test_labor_thanksgiving_day_run_is_skipped_and_writes_nothing(airflow_env, history):
    before = _versions(airflow_env.lake)
    proc = airflow_env.dags_test("jquants_daily_ingest", HOLIDAY.isoformat())
    out = proc.stdout + proc.stderr
    assert "no JPX trading day" in out and "Skipping downstream tasks" in out
    assert "state=success" in out
    after = _versions(airflow_env.lake)
    changed = {t for t in before if before[t] != after[t] and t != "bronze.markets_calendar"}
    assert changed == set()
    for table in PANELS:
        assert HOLIDAY not in _dates(table, airflow_env.lake)


def test_one_fetch_task_runs_alone_with_tasks_test(airflow_env, history):
    day = dt.date(2026, 11, 25)
    before = _versions(airflow_env.lake)
    proc = airflow_env.run("tasks", "test", "jquants_daily_ingest", "fetch", day.isoformat(),
                           "--map-index", "1")
    out = proc.stdout + proc.stderr
    rows = re.search(r"'endpoint': 'bars_daily', 'table': 'bronze.equities_bars_daily', "
                     r"'rows': (\d+)", out)
    assert rows and 0 < int(rows.group(1)) <= STOCKS
    assert "new_state=success" in out
    after = _versions(airflow_env.lake)
    # a fetch only stages: no bronze/silver/ledger table changes
    assert {t for t in before if before[t] != after[t] and t != "bronze.markets_calendar"} \
        == set()


def test_a_bad_day_fails_its_gate_task_naming_table_date_and_check(airflow_env, history):
    proc = airflow_env.dags_test("jquants_daily_ingest", BAD_DAY.isoformat(), check=False)
    out = proc.stdout + proc.stderr
    assert "state=failed" in out
    assert "IngestGateFailed" in out
    line = next(x for x in out.splitlines() if f"{BAD_DAY}: quality gate:" in x)
    assert "bronze.equities_bars_daily" in line and "ohlc" in line
    lake = airflow_env.lake
    assert BAD_DAY not in _dates("silver.equities_prices_daily", lake)
    v = deltars.read_table("quality.validations", BAD_DAY, BAD_DAY, lake_root=lake).to_pylist()
    bars = [r for r in v if r["table_name"] == "bronze.equities_bars_daily"]
    assert bars and not bars[0]["success"] and "ohlc" in json.loads(bars[0]["failed_checks"])
    q = deltars.read_table("quality.quarantine", BAD_DAY, BAD_DAY, lake_root=lake).to_pylist()
    assert q and all(r["table_name"] == "bronze.equities_bars_daily" for r in q)
    # the days around it published
    assert DAY in _dates("silver.equities_prices_daily", lake)


def test_a_light_plan_run_skips_margin_and_publishes_the_day(airflow_env, history):
    """JQUANTS_PLAN=light serves no margin interest: its fetch skips, naming the plan, and
    the gate and silver publish the day from the plan's endpoints."""
    day, lake = dt.date(2026, 11, 26), airflow_env.lake
    margin = deltars.table_info("bronze.margin_interest", lake_root=lake).version
    proc = airflow_env.dags_test("jquants_daily_ingest", day.isoformat(),
                                 env={**airflow_env.env, "JQUANTS_PLAN": "light"})
    out = proc.stdout + proc.stderr
    assert "state=success" in out
    assert "margin_interest is not in the J-Quants plan 'light'" in out
    for table in PANELS:
        assert day in _dates(table, lake), table
    assert deltars.table_info("bronze.margin_interest", lake_root=lake).version == margin


@pytest.mark.parametrize("table", PANELS)
def test_each_published_day_has_one_row_per_listed_code(airflow_env, history, table):
    df = deltars.read_table(table, lake_root=airflow_env.lake).to_pandas()
    code = "code" if "code" in df else "Code"
    assert not df.duplicated(["date", code]).any()


def test_dags_show_draws_the_graph_without_a_graphviz_warning(airflow_env, history):
    proc = airflow_env.run("dags", "show", "jquants_daily_ingest")
    assert "digraph jquants_daily_ingest" in proc.stdout
    assert "is_trading_day -> fetch" in proc.stdout and "quality_gate -> build_silver" in proc.stdout
    assert "graphviz" not in (proc.stdout + proc.stderr).lower().replace("digraph", "")
