#!/usr/bin/env bash
# A standalone Spark cluster on this host — one master and one worker — started with
# pyspark's own daemon script (sbin/spark-daemon.sh; this pyspark ships no start-master.sh).
#
#   scripts/spark_cluster.sh start    # prints the master URL (spark://HOST:PORT) last
#   scripts/spark_cluster.sh stop
#   scripts/spark_cluster.sh status
#
# Environment (defaults in brackets):
#   SPARK_CLUSTER_DIR        pids, logs and worker scratch       [.cache/spark-cluster]
#   SPARK_MASTER_HOST        bind address                        [127.0.0.1]
#   SPARK_MASTER_PORT        master RPC port                     [7077]
#   SPARK_MASTER_WEBUI_PORT  master UI (and /json/ status)       [8080]
#   SPARK_WORKER_WEBUI_PORT  worker UI                           [8081]
#   SPARK_WORKER_CORES       cores the worker offers             [2]
#   SPARK_WORKER_MEMORY      memory the worker offers            [2g]
# Jobs: spark-submit --master "$(scripts/spark_cluster.sh url)" spark_jobs/<job>.py ...
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/.venv/bin
SPARK_HOME=$("$BIN/python" -c "import pyspark, os; print(os.path.dirname(pyspark.__file__))")
export SPARK_HOME

DIR=${SPARK_CLUSTER_DIR:-$ROOT/.cache/spark-cluster}
HOST=${SPARK_MASTER_HOST:-127.0.0.1}
PORT=${SPARK_MASTER_PORT:-7077}
UI=${SPARK_MASTER_WEBUI_PORT:-8080}
WUI=${SPARK_WORKER_WEBUI_PORT:-8081}
CORES=${SPARK_WORKER_CORES:-2}
MEM=${SPARK_WORKER_MEMORY:-2g}
URL="spark://$HOST:$PORT"

# daemons (and the executors/Python workers they spawn) use the project's interpreter and
# find the project's packages; pid files live in our directory so clusters do not collide
export SPARK_PID_DIR=$DIR/pids SPARK_LOG_DIR=$DIR/logs SPARK_WORKER_DIR=$DIR/work
export SPARK_IDENT_STRING=gogooku3 SPARK_LOCAL_IP=$HOST
export PYSPARK_PYTHON=$BIN/python PYTHONPATH=$ROOT:$ROOT/plugins${PYTHONPATH:+:$PYTHONPATH}
DAEMON="$SPARK_HOME/sbin/spark-daemon.sh"
MASTER=org.apache.spark.deploy.master.Master
WORKER=org.apache.spark.deploy.worker.Worker

alive_workers() {  # number of ALIVE workers the master reports, or -1 if it does not answer
  "$BIN/python" - "$HOST" "$UI" <<'EOF'
import json, sys, urllib.request
try:
    with urllib.request.urlopen(f"http://{sys.argv[1]}:{sys.argv[2]}/json/", timeout=2) as r:
        print(json.load(r).get("aliveworkers", 0))
except Exception:
    print(-1)
EOF
}

wait_for() {  # wait_for <min alive workers> <seconds>
  local want=$1 secs=$2 n
  for _ in $(seq 1 $((secs * 2))); do
    n=$(alive_workers)
    if [ "$n" -ge "$want" ]; then return 0; fi
    sleep 0.5
  done
  echo "spark cluster: master $URL (UI $HOST:$UI) not ready after ${secs}s; logs in $SPARK_LOG_DIR" >&2
  return 1
}

case "${1:-}" in
  start)
    mkdir -p "$SPARK_PID_DIR" "$SPARK_LOG_DIR" "$SPARK_WORKER_DIR"
    "$DAEMON" start "$MASTER" 1 --host "$HOST" --port "$PORT" --webui-port "$UI" >/dev/null
    wait_for 0 60
    "$DAEMON" start "$WORKER" 1 --host "$HOST" --webui-port "$WUI" --cores "$CORES" \
      --memory "$MEM" --work-dir "$SPARK_WORKER_DIR" "$URL" >/dev/null
    wait_for 1 60
    echo "$URL"
    ;;
  stop)
    "$DAEMON" stop "$WORKER" 1 || true
    "$DAEMON" stop "$MASTER" 1 || true
    ;;
  status)
    "$DAEMON" status "$MASTER" 1 || true
    "$DAEMON" status "$WORKER" 1 || true
    echo "alive workers: $(alive_workers)"
    ;;
  url)
    echo "$URL"
    ;;
  *)
    echo "usage: $0 start|stop|status|url" >&2
    exit 2
    ;;
esac
