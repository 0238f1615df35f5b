# Source me: Airflow on the embedded default (SQLite metadata DB, LocalExecutor,
# this repo's dags/ and plugins/, Tokyo as the UI/default time zone).
# Connections come from AIRFLOW_CONN_* so nothing secret is stored in the DB.
GOGOOKU_ROOT=${GOGOOKU_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
export GOGOOKU_ROOT
export AIRFLOW_HOME=${AIRFLOW_HOME:-$GOGOOKU_ROOT/airflow_home}
export AIRFLOW__CORE__DAGS_FOLDER=$GOGOOKU_ROOT/dags
export AIRFLOW__CORE__PLUGINS_FOLDER=$GOGOOKU_ROOT/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR=${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}
export AIRFLOW__CORE__DEFAULT_TIMEZONE=Asia/Tokyo
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=${AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION:-True}
export AIRFLOW__CORE__PARALLELISM=${AIRFLOW__CORE__PARALLELISM:-8}
export AIRFLOW__API__PORT=${AIRFLOW_PORT:-8080}
# the UI and the task execution API listen on loopback only (Airflow's default is 0.0.0.0)
export AIRFLOW__API__HOST=${AIRFLOW__API__HOST:-127.0.0.1}
export AIRFLOW__API__BASE_URL=http://127.0.0.1:${AIRFLOW_PORT:-8080}
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:${AIRFLOW_PORT:-8080}/execution/
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:///$AIRFLOW_HOME/airflow.db}
if [[ $AIRFLOW__DATABASE__SQL_ALCHEMY_CONN == sqlite* ]]; then
  # every component and CLI command writes this one file: wait for its lock, don't fail
  export AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS=gogooku3.airflow.metadata_db.SQLITE_CONNECT_ARGS
  export AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC=gogooku3.airflow.metadata_db.SQLITE_CONNECT_ARGS_ASYNC
fi
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS:-admin:admin}
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=$AIRFLOW_HOME/simple_auth_manager_passwords.json
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=${AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL:-30}
export AIRFLOW__LOGGING__BASE_LOG_FOLDER=$AIRFLOW_HOME/logs
export AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK=False
# Embedded-default connections (override by exporting your own before sourcing).
export AIRFLOW_CONN_SPARK_DEFAULT=${AIRFLOW_CONN_SPARK_DEFAULT:-'{"conn_type": "spark", "host": "local[*]"}'}
_jq_url=$("$GOGOOKU_ROOT/.venv/bin/python" -c "from gogooku3.settings import get_settings as g; print(g().jquants_api_url)")
export AIRFLOW_CONN_JQUANTS_DEFAULT=${AIRFLOW_CONN_JQUANTS_DEFAULT:-"{\"conn_type\": \"http\", \"host\": \"$_jq_url\", \"password\": \"${JQUANTS_API_KEY:-demo-key}\"}"}
unset _jq_url
export PATH=$GOGOOKU_ROOT/.venv/bin:$PATH
