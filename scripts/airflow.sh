#!/usr/bin/env bash
# make airflow: Airflow 3 on the embedded default — API server (UI), scheduler,
# DAG processor and triggerer — with this repo's DAGs, plugins and connections.
# Ctrl-C, SIGTERM or SIGHUP (to this script or its process group) stops every component.
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

# Each component runs in a session of its own (setsid): its pid is the session id, and
# every process it starts stays in that session, including the task and parser processes
# Airflow puts in process groups of their own. Stopping signals each session whole.
sessions=()
stop() {
  trap '' INT TERM HUP PIPE  # a second Ctrl-C, or a gone terminal, must not cut this short
  trap - EXIT
  echo "stopping Airflow..." 2>/dev/null || true
  [ ${#sessions[@]} -eq 0 ] && return
  local ids
  ids=$(IFS=,; echo "${sessions[*]}")
  pkill -TERM -s "$ids" 2>/dev/null || true
  for _ in $(seq 1 30); do
    pgrep -s "$ids" >/dev/null 2>&1 || break
    sleep 1
  done
  pkill -KILL -s "$ids" 2>/dev/null || true
  wait 2>/dev/null || true
}
# INT (Ctrl-C), TERM (timeout, a supervisor, kill) and HUP (the terminal closed) alike
trap 'stop; exit 0' INT TERM HUP
trap stop EXIT
for component in api-server scheduler dag-processor triggerer; do
  setsid airflow "$component" >"$AIRFLOW_HOME/logs/$component.log" 2>&1 &
  sessions+=($!)
done
URL=$AIRFLOW__API__BASE_URL
for _ in $(seq 1 120); do
  curl -fsS "$URL/api/v2/monitor/health" >/dev/null 2>&1 && break
  sleep 1
done
PASSWORD=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['admin'])" "$PASSWORD_FILE")
cat <<MSG

  Airflow UI:   $URL
  login:        admin / $PASSWORD   (stored in $PASSWORD_FILE)
  logs:         $AIRFLOW_HOME/logs/{api-server,scheduler,dag-processor,triggerer}.log
  Spark jobs:   make history-server  ->  http://127.0.0.1:18080
  schedules:    jquants_daily_ingest 18:30 JST Mon-Fri -> spark_features_daily (silver
                assets) -> daily_inference (gold assets); atft_training_weekly Sat 10:00 JST
  go live:      make airflow-unpause   (paused DAGs show no next run; docs/airflow.md)
  time zone:    the UI shows your browser's; pick Asia/Tokyo under User -> Timezone
  Ctrl-C stops Airflow.

MSG
wait -n "${sessions[@]}" || true
echo "an Airflow component exited; see $AIRFLOW_HOME/logs" >&2
exit 1
