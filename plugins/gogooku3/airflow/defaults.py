"""Names the DAGs share: owner, pools, connections, the endpoints fetched per run.

Kept free of heavy imports: DAG files import this at parse time.
"""

from __future__ import annotations

OWNER = "gogooku3-data"
POOL_JQUANTS = "jquants_api"
POOL_LAKE = "lake_writes"
POOL_SPARK = "spark"
POOL_GPU = "gpu"
JQUANTS_CONN_ID = "jquants_default"
SPARK_CONN_ID = "spark_default"

#: endpoints fetched by one mapped task each (the calendar is refreshed by the first task)
FETCH_ENDPOINTS: tuple[str, ...] = (
    "master", "bars_daily", "topix", "fins_summary", "investor_types", "margin_interest",
)
