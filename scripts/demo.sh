#!/usr/bin/env bash
# make demo: every pipeline stage that exists, on the embedded default:
#   simulated J-Quants v2 server -> async ingestion -> bronze -> quality gate -> silver.
# Stages are added here as they are built (features, Airflow, training...).
# Re-running resumes: dates already ingested and validated are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
G=.venv/bin/gogooku3
STOCKS=${DEMO_STOCKS:-500}
START=${DEMO_START:-2023-01-04}
END=${DEMO_END:-2025-12-30}
PORT=${DEMO_PORT:-8765}
export JQUANTS_API_KEY=${JQUANTS_API_KEY:-demo-key-$(date +%s)}
export JQUANTS_API_URL=http://127.0.0.1:$PORT/v2
mkdir -p logs

echo "== simulated J-Quants server: $STOCKS stocks, $START..$END (log: logs/mock-jquants.log)"
$G mock-jquants --port "$PORT" --stocks "$STOCKS" --start "$START" --end "$END" --seed 7 \
  >logs/mock-jquants.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$PORT/v2/_sim/stats" >/dev/null 2>&1 && break
  kill -0 $SERVER 2>/dev/null || { cat logs/mock-jquants.log; exit 1; }
  sleep 0.5
done

echo "== ingest $START..$END -> bronze, quality gate, silver (lake: $($G config get lake_root))"
$G ingest --start "$START" --end "$END"

echo "== lake"
$G lake ls
echo
echo "Next: make airflow (UI) · make history-server (Spark jobs) · docs/ingestion.md"
