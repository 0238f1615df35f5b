#!/usr/bin/env bash
# make demo: run every pipeline stage that exists on the embedded default.
# Stages are added here as they are built (ingestion, features, Airflow, training...).
set -euo pipefail
cd "$(dirname "$0")/.."
G=.venv/bin/gogooku3
START=${DEMO_START:-2025-11-20}
END=${DEMO_END:-2025-12-05}

echo "== settings (secrets redacted)"
$G config show
echo "== JPX trading days $START..$END"
$G calendar --from "$START" --to "$END"
echo "== lake"
$G lake ls --all
