"""The DAG files as Airflow parses them: no import errors, the declared contract, no work."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from types import SimpleNamespace

import pendulum
import pytest
from af_helpers import ROOT

DAGS = ("jquants_daily_ingest", "spark_features_daily", "atft_training_weekly",
        "daily_inference")


@pytest.fixture(scope="module")
def dagbag(airflow_env):
    """DagBag of dags/ parsed in a subprocess with the session's Airflow environment."""
    script = r"""
import json, time
from airflow.dag_processing.dagbag import DagBag
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.providers.docker.operators.docker import DockerOperator
bag = DagBag(dag_folder="dags")
out = {"errors": {k: str(v) for k, v in bag.import_errors.items()},
       "stats": {s.file: s.duration.total_seconds() for s in bag.dagbag_stats}, "dags": {}}
for dag_id, dag in bag.dags.items():
    out["dags"][dag_id] = {
        "timetable": type(dag.timetable).__name__,
        "cron": getattr(dag.timetable, "expression", None),
        "tz": str(getattr(dag.timetable, "timezone", "")),
        "dag_tz": str(dag.timezone),
        "assets": [a.uri for a in dag.timetable.asset_condition.objects]
                  if getattr(dag.timetable, "asset_condition", None) is not None else [],
        "tags": sorted(dag.tags), "catchup": dag.catchup,
        "start_date": dag.start_date.isoformat(),
        "params": {k: v.schema for k, v in dag.params.items()},
        "tasks": {t.task_id: {"owner": t.owner, "retries": t.retries, "pool": t.pool,
                              "type": type(t).__name__, "trigger_rule": str(t.trigger_rule),
                              "backoff": float(t.retry_exponential_backoff or 0),
                              "spark_submit": isinstance(t, SparkSubmitOperator),
                              "docker": isinstance(t, DockerOperator),
                              "outlets": sorted(o.uri for o in t.outlets),
                              "downstream": sorted(t.downstream_task_ids)}
                  for t in dag.tasks},
    }
import sys
out["heavy"] = sorted(m for m in ("torch", "training", "pyspark", "deltalake", "mlflow",
                                  "feast", "great_expectations", "pandas", "gogooku3.lake")
                      if m in sys.modules)
print("JSON" + json.dumps(out))
"""
    proc = subprocess.run([str(ROOT / ".venv/bin/python"), "-c", script], cwd=ROOT,
                          env=airflow_env.env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.split("JSON", 1)[1])


def test_every_dag_loads_without_import_errors(dagbag):
    assert dagbag["errors"] == {}
    assert set(DAGS) <= set(dagbag["dags"])


def test_dag_files_do_no_work_at_parse_time(dagbag):
    """The scheduler parses every file every few seconds: no model, Spark, lake or data
    library is imported by parsing (task bodies import them when they run)."""
    assert set(dagbag["stats"]) == {f"{d}.py" for d in DAGS}
    assert dagbag["heavy"] == []


def test_ingest_dag_runs_on_the_tokyo_weekday_cron_with_pools_retries_owner(dagbag):
    d = dagbag["dags"]["jquants_daily_ingest"]
    assert d["timetable"] == "CronTriggerTimetable"
    assert d["cron"] == "30 18 * * 1-5" and d["tz"] == "Asia/Tokyo"
    assert d["dag_tz"] == "Asia/Tokyo" and d["catchup"] is False
    assert d["tags"] == ["gogooku3", "ingest", "jquants"]
    tasks = d["tasks"]
    assert set(tasks) == {"is_trading_day", "fetch", "quality_gate", "build_silver"}
    assert tasks["is_trading_day"]["type"] == "_ShortCircuitDecoratedOperator"
    assert tasks["is_trading_day"]["downstream"] == ["build_silver", "fetch", "quality_gate"]
    assert tasks["fetch"]["pool"] == "jquants_api"
    assert tasks["fetch"]["retries"] == 4 and tasks["fetch"]["backoff"] == 2.0
    assert tasks["fetch"]["downstream"] == ["quality_gate"]
    assert tasks["quality_gate"]["retries"] == 0  # a failed check is not transient
    assert tasks["quality_gate"]["downstream"] == ["build_silver"]
    assert tasks["quality_gate"]["pool"] == tasks["build_silver"]["pool"] == "lake_writes"
    assert all(t["owner"] == "gogooku3-data" for t in tasks.values())
    assert "gogooku3://lake/bronze/equities_bars_daily" in tasks["quality_gate"]["outlets"]
    assert "gogooku3://lake/silver/equities_prices_daily" in tasks["build_silver"]["outlets"]


def test_features_dag_runs_on_silver_assets_through_spark_submit(dagbag):
    d = dagbag["dags"]["spark_features_daily"]
    assert d["timetable"] == "AssetTriggeredTimetable"
    assert "gogooku3://lake/silver/equities_prices_daily" in d["assets"]
    assert d["tags"] == ["features", "gogooku3", "spark"]
    tasks = d["tasks"]
    assert tasks["build_features"]["spark_submit"] and tasks["build_features"]["pool"] == "spark"
    assert tasks["build_features"]["retries"] == 1
    assert tasks["gold_check"]["outlets"] == ["gogooku3://lake/gold/features",
                                              "gogooku3://lake/gold/labels"]
    assert all(t["owner"] == "gogooku3-data" for t in tasks.values())


def test_training_dag_runs_saturdays_1000_jst_on_the_gpu_pool_and_emits_the_model(dagbag):
    d = dagbag["dags"]["atft_training_weekly"]
    assert d["timetable"] == "CronTriggerTimetable"
    assert d["cron"] == "0 10 * * 6" and d["tz"] == "Asia/Tokyo" and d["catchup"] is False
    assert d["tags"] == ["gogooku3", "model", "training"]
    tasks = d["tasks"]
    assert tasks["check_gold_range"]["downstream"] == ["train"]
    assert tasks["train"]["downstream"] == ["evaluate_baselines", "register"]
    assert tasks["evaluate_baselines"]["downstream"] == ["register"]
    assert tasks["register"]["downstream"] == ["promote"]
    assert tasks["train"]["docker"] and tasks["train"]["pool"] == "gpu"
    assert tasks["promote"]["outlets"] == ["gogooku3://mlflow/models/atft_gat_fan"]
    assert all(t["owner"] == "gogooku3-model" for t in tasks.values())
    params = d["params"]
    assert params["phase"]["enum"] == ["baseline", "adaptive_norm", "gat", "augmentation", "all"]
    assert params["overrides"]["type"] == "object"


def test_inference_dag_runs_on_the_gold_assets_and_ends_in_feast(dagbag):
    d = dagbag["dags"]["daily_inference"]
    assert d["timetable"] == "AssetTriggeredTimetable"
    assert sorted(d["assets"]) == ["gogooku3://lake/gold/features", "gogooku3://lake/gold/labels"]
    assert d["tags"] == ["gogooku3", "model", "serving"]
    tasks = d["tasks"]
    assert tasks["trade_dates"]["type"] == "_ShortCircuitDecoratedOperator"
    assert tasks["predict"]["downstream"] == ["load_clickhouse", "materialize_feast"]
    assert tasks["load_clickhouse"]["downstream"] == ["materialize_feast"]
    assert all(t["owner"] == "gogooku3-model" for t in tasks.values())


def test_every_dag_takes_the_same_start_end_params(dagbag):
    schemas = {dag_id: {k: dagbag["dags"][dag_id]["params"][k]["type"] for k in ("start", "end")}
               for dag_id in DAGS}
    assert all(s == {"start": ["null", "string"], "end": ["null", "string"]}
               for s in schemas.values()), schemas


@pytest.mark.parametrize("dag_id", DAGS)
def test_dags_start_before_any_history_so_backfills_get_tasks(dagbag, dag_id):
    """Airflow makes no task instances for logical dates before start_date: a late start
    would make a history backfill (or make demo's 2023-2025 load) an empty success."""
    start = pendulum.parse(dagbag["dags"][dag_id]["start_date"])
    assert start <= pendulum.datetime(2023, 1, 4, tz="Asia/Tokyo")
    assert start.in_timezone("Asia/Tokyo").hour == 0


# ---- trade dates of runs ------------------------------------------------------------------

def _ctx(logical=None, run_after=None, **params):
    return {"logical_date": logical, "dag_run": SimpleNamespace(run_after=run_after),
            "params": params}


def test_the_1830_jst_run_of_2026_11_24_is_trade_date_2026_11_24():
    from gogooku3.airflow.dates import run_trade_date

    fire = pendulum.datetime(2026, 11, 24, 18, 30, tz="Asia/Tokyo").in_timezone("UTC")
    assert fire.day == 24 and fire.hour == 9
    assert run_trade_date(_ctx(fire)) == dt.date(2026, 11, 24)


def test_a_run_near_midnight_utc_maps_to_the_next_jst_day():
    from gogooku3.airflow.dates import run_trade_date

    late = pendulum.datetime(2026, 11, 23, 23, 59, tz="UTC")  # 08:59 JST on the 24th
    assert run_trade_date(_ctx(late)) == dt.date(2026, 11, 24)
    before = pendulum.datetime(2026, 11, 23, 14, 59, tz="UTC")  # 23:59 JST on the 23rd
    assert run_trade_date(_ctx(before)) == dt.date(2026, 11, 23)


def test_a_run_without_logical_date_uses_run_after_and_params_give_a_range():
    from gogooku3.airflow.dates import run_trade_date, run_window, triggered_window

    after = pendulum.datetime(2026, 11, 20, 16, 0, tz="UTC")  # 01:00 JST on the 21st
    assert run_trade_date(_ctx(None, after)) == dt.date(2026, 11, 21)
    assert run_window(_ctx(after, start="2026-11-02", end="2026-11-06")) == (
        dt.date(2026, 11, 2), dt.date(2026, 11, 6))
    ev = SimpleNamespace(extra={"trade_dates": ["2026-11-19", "2026-11-20"]})
    ctx = _ctx(after) | {"triggering_asset_events": {"silver": [ev]}}
    assert triggered_window(ctx) == (dt.date(2026, 11, 19), dt.date(2026, 11, 20))


def test_labor_thanksgiving_day_2026_is_not_a_trading_day():
    from gogooku3.jpx.calendar import TradingCalendar

    assert not TradingCalendar().is_trading_day(dt.date(2026, 11, 23))
    assert TradingCalendar().is_trading_day(dt.date(2026, 11, 24))
