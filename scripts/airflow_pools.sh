#!/usr/bin/env bash
# Pools the DAGs use, set in one `airflow pools import` (one CLI start, not four):
# jquants_api bounds concurrent fetch tasks (the client bounds requests inside each),
# lake_writes serialises Delta commits of ingestion tasks, spark serialises Spark jobs on
# one host, gpu runs one training at a time.
set -euo pipefail
file=$(mktemp)
trap 'rm -f "$file"' EXIT
cat >"$file" <<JSON
{
  "jquants_api": {"slots": ${POOL_JQUANTS_API:-4}, "description": "J-Quants fetch tasks running at once"},
  "lake_writes": {"slots": ${POOL_LAKE_WRITES:-1}, "description": "Tasks committing to the same Delta tables (delta-rs has no multi-writer lock on local disk)"},
  "spark": {"slots": ${POOL_SPARK:-1}, "description": "Spark applications running at once on this host"},
  "gpu": {"slots": ${POOL_GPU:-1}, "description": "Training jobs running at once (one GPU)"}
}
JSON
airflow pools import "$file"
