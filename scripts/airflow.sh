#!/usr/bin/env bash
# make airflow: Airflow 3 on the embedded default — API server (UI), scheduler,
# DAG processor and triggerer — with this repo's DAGs, plugins and connections.
# Ctrl-C (or SIGTERM) stops every component.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/airflow_env.sh
mkdir -p "$AIRFLOW_HOME/logs"
PASSWORD_FILE=$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE
if [ ! -s "$PASSWORD_FILE" ]; then
  # A fresh random password per installation, readable only by this user.
  python - "$PASSWORD_FILE" <<'PY'
import json, secrets, sys
with open(sys.argv[1], "w") as fh:
    json.dump({"admin": secrets.token_urlsafe(12)}, fh)
PY
  chmod 600 "$PASSWORD_FILE"
fi
airflow db migrate >"$AIRFLOW_HOME/logs/db-migrate.log" 2>&1
bash scripts/airflow_pools.sh >/dev/null

pids=()
stopping=0
stop() {
  trap - INT TERM EXIT
  echo "stopping Airflow..."
  # each component runs in its own process group (setsid): stop the whole group, so
  # executor workers and task processes go with their parent
  for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
  for _ in $(seq 1 30); do
    alive=0
    for p in "${pids[@]}"; do kill -0 -- "-$p" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && break
    sleep 1
  done
  for p in "${pids[@]}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
}
trap 'stopping=1' INT TERM
trap stop EXIT
for component in api-server scheduler dag-processor triggerer; do
  setsid airflow "$component" >"$AIRFLOW_HOME/logs/$component.log" 2>&1 &
  pids+=($!)
done
URL=$AIRFLOW__API__BASE_URL
for _ in $(seq 1 120); do
  [ $stopping -eq 1 ] && exit 0
  curl -fsS "$URL/api/v2/monitor/health" >/dev/null 2>&1 && break
  sleep 1
done
PASSWORD=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['admin'])" "$PASSWORD_FILE")
cat <<MSG

  Airflow UI:   $URL
  login:        admin / $PASSWORD   (stored in $PASSWORD_FILE)
  logs:         $AIRFLOW_HOME/logs/{api-server,scheduler,dag-processor,triggerer}.log
  Spark jobs:   make history-server  ->  http://127.0.0.1:18080
  Ctrl-C stops Airflow.

MSG
wait -n "${pids[@]}" || true
if [ $stopping -eq 1 ]; then
  stop
  exit 0
fi
echo "an Airflow component exited; see $AIRFLOW_HOME/logs" >&2
exit 1
