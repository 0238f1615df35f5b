#!/usr/bin/env bash
# make airflow-unpause: put the gogooku3 DAGs on their Tokyo schedules (the UI then shows
# each one's next run). A cron DAG unpaused with catchup=False runs its latest past tick
# at once (Airflow's rule): the ingest of the last weekday 18:30 JST, the training of the
# last Saturday 10:00 JST. The DAGs must be parsed first (`make airflow` running, or after
# `make demo`). Pause again with `airflow dags pause <dag_id>`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/airflow_env.sh
ids=$(cd dags && ls ./*.py | sed 's|^\./||; s|\.py$||' | paste -sd'|')
airflow dags unpause --yes --treat-dag-id-as-regex "^($ids)$"
