"""silver -> gold.features / gold.labels with Spark, whenever ingestion publishes silver.

Scheduled on the silver Assets (``gogooku3://lake/silver/*``): a run builds the trade
dates carried by the triggering events (``extra.trade_dates``); a manual run or
``airflow dags test`` builds the JST date of its logical date, or ``params.start``..
``params.end``. ``spark-submit`` runs ``spark_jobs/build_features.py`` through
connection ``spark_default`` with the lake's Delta/Ivy/event-log conf, so every run is
listed by the Spark history server. A gold check gates the gold Asset events.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, task

from gogooku3.airflow.assets import gold_assets, silver_assets
from gogooku3.airflow.defaults import HISTORY_START, OWNER, POOL_SPARK, SPARK_CONN_ID
from gogooku3.airflow.params import date_range_params
from gogooku3.airflow.spark import FEATURES_JOB, LakeSparkSubmitOperator

DOC = __doc__
WINDOW = "{{ ti.xcom_pull(task_ids='trade_dates')['%s'] }}"


@dag(
    dag_id="spark_features_daily",
    schedule=silver_assets(),
    start_date=HISTORY_START,
    catchup=False,
    max_active_runs=1,
    tags=["gogooku3", "features", "spark"],
    default_args={"owner": OWNER, "retries": 1, "retry_delay": dt.timedelta(minutes=2)},
    params=date_range_params("the dates of the triggering silver events, else the run's"),
    doc_md=DOC,
)
def spark_features_daily():
    @task.short_circuit(task_id="trade_dates")
    def trade_dates(**context):
        """The window to build; no JPX trading day in it -> skip the rest."""
        from gogooku3.airflow.features_tasks import plan_features

        return plan_features(context) or False

    build = LakeSparkSubmitOperator(
        task_id="build_features",
        job=FEATURES_JOB,
        conn_id=SPARK_CONN_ID,
        application_args=["--start", WINDOW % "start", "--end", WINDOW % "end"],
        pool=POOL_SPARK,
        retries=1,
        execution_timeout=dt.timedelta(hours=2),
        doc_md="spark-submit spark_jobs/build_features.py for the window; replaces exactly "
               "those dates of gold.features and gold.labels.",
    )

    @task(task_id="gold_check", retries=0, outlets=gold_assets())
    def gold_check(window: dict, **context):
        """Rows for every trading day, unique non-null keys, labels match features;
        warns of feature groups that are entirely null on a date (optional sources)."""
        from gogooku3.airflow.features_tasks import check

        return check(window, context)

    window = trade_dates()
    window >> build >> gold_check(window)


spark_features_daily()
