#!/usr/bin/env bash
# Pools the DAGs use: jquants_api bounds concurrent fetch tasks (the client bounds
# requests inside each), lake_writes serialises Delta commits of ingestion tasks, spark serialises Spark jobs on one host, gpu is for training.
set -euo pipefail
airflow pools set jquants_api "${POOL_JQUANTS_API:-4}" "J-Quants fetch tasks running at once"
airflow pools set lake_writes "${POOL_LAKE_WRITES:-1}" "Tasks committing to the same Delta tables (delta-rs has no multi-writer lock on local disk)"
airflow pools set spark "${POOL_SPARK:-1}" "Spark applications running at once on this host"
airflow pools set gpu "${POOL_GPU:-1}" "GPU training jobs running at once"
