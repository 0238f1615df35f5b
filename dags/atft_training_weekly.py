"""ATFT-GAT-FAN training, Saturdays at 10:00 JST and on demand.

Timetable: ``CronTriggerTimetable("0 10 * * 6", Asia/Tokyo)``. Trigger with params to
train one phase, override config keys, or fix the gold window (default: every gold date
up to the run's JST date). The train task runs ``python -m gogooku3.cli train --cv-only``
locally or in the trainer container (setting ``training_backend``), one at a time (pool
``gpu``); the other tasks call ``training.pipeline``. Promote emits the model Asset.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import CronTriggerTimetable, Param, dag, task

from gogooku3.airflow.assets import model_asset
from gogooku3.airflow.defaults import HISTORY_START, OWNER_MODEL, POOL_GPU
from gogooku3.airflow.params import date_range_params
from gogooku3.airflow.train_step import PHASES
from gogooku3.airflow.trainer import TrainOperator

DOC = __doc__


@dag(
    dag_id="atft_training_weekly",
    schedule=CronTriggerTimetable("0 10 * * 6", timezone="Asia/Tokyo"),
    start_date=HISTORY_START,
    catchup=False,
    max_active_runs=1,
    tags=["gogooku3", "model", "training"],
    default_args={"owner": OWNER_MODEL, "retries": 0},
    params={
        "phase": Param("all", enum=list(PHASES), description="training phase"),
        "overrides": Param({}, type="object",
                           description='config overrides, e.g. {"train.max_epochs": 1}'),
        **date_range_params("every gold date up to the run's JST date"),
    },
    doc_md=DOC,
)
def atft_training_weekly():
    @task(task_id="check_gold_range")
    def check_gold_range(**context):
        """The gold window exists and is complete; returns the {start, end} trained on."""
        from gogooku3.airflow.training_tasks import check_range

        return check_range(context)

    train = TrainOperator(
        task_id="train", window_task="check_gold_range", pool=POOL_GPU,
        execution_timeout=dt.timedelta(hours=12),
        doc_md="Walk-forward training; returns the parent MLflow run id.")

    @task(task_id="evaluate_baselines")
    def evaluate_baselines(cv_run_id: str):  # not "run_id": that is Airflow's context key
        """ATFT-GAT-FAN against ridge, LightGBM, no-graph and the oracle, per horizon."""
        from gogooku3.airflow.training_tasks import evaluate

        return evaluate(cv_run_id)

    @task(task_id="register")
    def register(cv_run_id: str):
        """A new version of the registered model from the MLflow run."""
        from gogooku3.airflow.training_tasks import register as run

        return run(cv_run_id)

    @task(task_id="promote", outlets=[model_asset()])
    def promote(version: str, **context):
        """The champion gate: alias "champion" moves only if the version beats it."""
        from gogooku3.airflow.training_tasks import promote as run

        return run(version, context)

    window = check_gold_range()
    window >> train
    evaluated = evaluate_baselines(train.output)
    version = register(train.output)
    evaluated >> version
    promote(version)


atft_training_weekly()
