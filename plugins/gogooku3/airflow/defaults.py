"""Names the DAGs share: owner, pools, connections, the endpoints fetched per run.

Kept free of heavy imports: DAG files import this at parse time.
"""

from __future__ import annotations

import pendulum

from gogooku3.jquants.endpoints import FETCHED_ENDPOINTS

OWNER = "gogooku3-data"
OWNER_MODEL = "gogooku3-model"
POOL_JQUANTS = "jquants_api"
POOL_LAKE = "lake_writes"
POOL_SPARK = "spark"
POOL_GPU = "gpu"
JQUANTS_CONN_ID = "jquants_default"
SPARK_CONN_ID = "spark_default"

#: endpoints fetched by one mapped task each (the calendar is refreshed by the first task)
FETCH_ENDPOINTS: tuple[str, ...] = FETCHED_ENDPOINTS

#: start_date of every DAG: before any history the pipeline loads. Airflow creates no task
#: instances for a logical date before start_date, so a later start would turn backfills and
#: history loads of earlier dates into empty "successful" runs; with catchup=False an early
#: start schedules nothing extra.
HISTORY_START = pendulum.datetime(2008, 1, 4, tz="Asia/Tokyo")
