#!/usr/bin/env bash
# Spark history server on the configured event-log directory (foreground; Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
EVENTS=$($BIN/python -c "from gogooku3.settings import get_settings as g; print(g().resolved_path('spark_event_log_dir'))")
PORT=${HISTORY_PORT:-18080}
mkdir -p "$EVENTS"
SPARK_HOME=$($BIN/python -c "import pyspark, os; print(os.path.dirname(pyspark.__file__))")
export SPARK_HOME SPARK_NO_DAEMONIZE=1
export SPARK_HISTORY_OPTS="-Dspark.history.fs.logDirectory=file://$EVENTS -Dspark.history.ui.port=$PORT -Dspark.history.fs.update.interval=5s"
echo "Spark history server: http://127.0.0.1:$PORT  (event logs: $EVENTS)"
exec "$SPARK_HOME/sbin/start-history-server.sh"
