"""J-Quants -> bronze -> quality gate -> silver, once per JPX trading day at 18:30 JST.

Timetable: ``CronTriggerTimetable("30 18 * * 1-5", Asia/Tokyo)`` — a run fires at the
cron time and its trade date is the JST date of its logical date (no data interval).
Holidays short-circuit, so their runs show the work as *skipped*. ``params.start`` /
``params.end`` make one run ingest a whole range (history loads, ``make demo``).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import CronTriggerTimetable, Param, dag, task

from gogooku3.airflow.assets import bronze_assets, silver_assets
from gogooku3.airflow.defaults import FETCH_ENDPOINTS, HISTORY_START, OWNER, POOL_JQUANTS, POOL_LAKE
from gogooku3.airflow.params import date_range_params

DOC = __doc__


@dag(
    dag_id="jquants_daily_ingest",
    schedule=CronTriggerTimetable("30 18 * * 1-5", timezone="Asia/Tokyo"),
    start_date=HISTORY_START,
    catchup=False,
    max_active_runs=4,
    tags=["gogooku3", "ingest", "jquants"],
    default_args={"owner": OWNER, "retries": 1, "retry_delay": dt.timedelta(minutes=2)},
    params={
        **date_range_params(),
        "resume": Param(False, type="boolean",
                        description="skip dates that already passed the gate"),
    },
    doc_md=DOC,
)
def jquants_daily_ingest():
    @task.short_circuit(task_id="is_trading_day", retries=2)
    def is_trading_day(**context):
        """Refresh the JPX calendar; no trading day in the run's window -> skip the rest."""
        from gogooku3.airflow.ingest_tasks import plan_run

        return plan_run(context) or False

    @task(task_id="fetch", pool=POOL_JQUANTS, retries=4,
          retry_delay=dt.timedelta(seconds=20), retry_exponential_backoff=2.0,
          max_retry_delay=dt.timedelta(minutes=10),
          map_index_template="{{ task.op_kwargs['endpoint'] }}")
    def fetch(endpoint: str, plan: dict | None, **context):
        """One J-Quants endpoint for the run's trade dates -> staging (bounded by the pool);
        skips when the endpoint is outside the configured plan (JQUANTS_PLAN)."""
        from gogooku3.airflow.ingest_tasks import fetch as run

        return run(endpoint, plan, context)

    # runs when fetches of endpoints outside the J-Quants plan skipped (none may fail)
    @task(task_id="quality_gate", retries=0, pool=POOL_LAKE, outlets=bronze_assets(),
          trigger_rule="none_failed")
    def quality_gate(plan: dict, **context):
        """Great Expectations gate + bronze; fails naming table, date and check."""
        from gogooku3.airflow.ingest_tasks import gate

        return gate(plan, context)

    @task(task_id="build_silver", pool=POOL_LAKE, outlets=silver_assets())
    def build_silver(plan: dict, **context):
        """Adjusted silver tables for the gated dates, then the validation ledger."""
        from gogooku3.airflow.ingest_tasks import silver

        return silver(plan, context)

    plan = is_trading_day()
    fetched = fetch.partial(plan=plan).expand(endpoint=list(FETCH_ENDPOINTS))
    gated = quality_gate(plan)
    fetched >> gated
    gated >> build_silver(plan)


jquants_daily_ingest()
