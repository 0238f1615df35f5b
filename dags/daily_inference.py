"""Predictions for the trade dates gold was built for: gold.predictions, ClickHouse, Feast.

Scheduled on the gold Assets: a run predicts the ``trade_dates`` the triggering events
carry (manual runs: ``params.start``..``end``, else the run's JST date) with
``gogooku3 predict``, then loads the ClickHouse analytics tables and materializes Feast
up to the last date. Until a champion model exists, predict skips (and so does the rest).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, task

from gogooku3.airflow.assets import gold_assets
from gogooku3.airflow.defaults import HISTORY_START, OWNER_MODEL
from gogooku3.airflow.params import date_range_params

DOC = __doc__


@dag(
    dag_id="daily_inference",
    schedule=gold_assets(),
    start_date=HISTORY_START,
    catchup=False,
    max_active_runs=1,
    tags=["gogooku3", "model", "serving"],
    default_args={"owner": OWNER_MODEL, "retries": 1, "retry_delay": dt.timedelta(minutes=2)},
    params=date_range_params("the dates of the triggering gold events, else the run's"),
    doc_md=DOC,
)
def daily_inference():
    @task.short_circuit(task_id="trade_dates")
    def trade_dates(**context):
        """The trading days to predict; none -> skip the rest."""
        from gogooku3.airflow.inference_tasks import plan

        return plan(context) or False

    @task(task_id="predict", retries=0)
    def predict(days: list[str]):
        """gold.predictions for each day; skipped when no champion is registered."""
        from gogooku3.airflow.inference_tasks import predict as run

        return run(days)

    @task(task_id="load_clickhouse")
    def load_clickhouse(days: list[str]):
        """Predictions and per-date model metrics into the ClickHouse tables."""
        from gogooku3.airflow.inference_tasks import load_clickhouse as run

        run(days)

    @task(task_id="materialize_feast")
    def materialize_feast(days: list[str]):
        """Feast materialization up to the last day (online store: Redis)."""
        from gogooku3.airflow.inference_tasks import materialize as run

        run(days)

    days = predict(trade_dates())
    load_clickhouse(days) >> materialize_feast(days)


daily_inference()
