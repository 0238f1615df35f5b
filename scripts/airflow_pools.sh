#!/usr/bin/env bash
# Pools the DAGs use: jquants_api bounds concurrent fetch tasks (the client bounds
# requests inside each), spark serialises Spark jobs on one host, gpu is for training.
set -euo pipefail
airflow pools set jquants_api "${POOL_JQUANTS_API:-4}" "J-Quants fetch tasks running at once"
airflow pools set spark "${POOL_SPARK:-1}" "Spark applications running at once on this host"
airflow pools set gpu "${POOL_GPU:-1}" "GPU training jobs running at once"
