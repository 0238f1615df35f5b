"""Connection arguments for Airflow's SQLite metadata DB on the embedded default.

The scheduler, DAG processor, triggerer, API server, LocalExecutor workers and CLI
commands (``airflow backfill create``, ``dags test``) all write the same SQLite file.
Airflow already switches it to WAL journaling, which lets readers run beside one writer,
but a second writer fails at once with "database is locked" under sqlite3's default
5 s busy timeout. Waiting up to ``BUSY_TIMEOUT_S`` for the lock turns those collisions
into short waits. It does not cover every collision: SQLite answers "database is locked"
at once, without waiting, to a connection whose WAL read snapshot went stale before it
writes (seen once in CI: ``airflow backfill create`` beside the live scheduler; the test
retries that case only). Runs that matter belong on PostgreSQL. ``scripts/airflow_env.sh`` points
``[database] sql_alchemy_connect_args`` (and its async twin) here; a PostgreSQL
metadata DB (``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=postgresql+psycopg2://…``) ignores it.
"""

from __future__ import annotations

BUSY_TIMEOUT_S = 60

#: sqlite3.connect(timeout=...) for the sync engine
SQLITE_CONNECT_ARGS = {"timeout": BUSY_TIMEOUT_S}
#: aiosqlite.connect(timeout=...) for the async engine
SQLITE_CONNECT_ARGS_ASYNC = {"timeout": BUSY_TIMEOUT_S}
