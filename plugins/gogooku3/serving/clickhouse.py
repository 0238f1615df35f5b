"""ClickHouse for analytics: one schema and one set of queries, two engines.

``CLICKHOUSE_URL`` picks the engine: ``http(s)://user:password@host:8123/database`` talks
to a server through clickhouse-connect (the cluster); ``chdb://<path>`` runs ClickHouse
in-process with chdb on a directory (the embedded default ``chdb://clickhouse`` is
``<project>/clickhouse``; ``chdb:///abs/path`` is absolute). The DDL is
``configs/clickhouse/schema.sql`` and the named queries are
``configs/clickhouse/queries/<name>.sql`` with ClickHouse ``{name:Type}`` parameters,
bound by the engine, never formatted into the SQL text.

A load replaces a whole date range of a table: it deletes ``[start, end]`` and inserts
the new rows, so re-running a load leaves the table as one run left it.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gogooku3.settings import PROJECT_ROOT

log = logging.getLogger(__name__)

SQL_DIR = PROJECT_ROOT / "configs" / "clickhouse"
TABLES = ("predictions", "model_metrics_daily", "feature_coverage_daily")


class ClickHouseError(ValueError):
    """A bad URL, an unknown query or table, or rows that do not fit a table."""


def _statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def query_sql(name: str) -> str:
    """Text of the named query in ``configs/clickhouse/queries``."""
    path = SQL_DIR / "queries" / f"{name}.sql"
    if not path.exists():
        known = sorted(p.stem for p in (SQL_DIR / "queries").glob("*.sql"))
        raise ClickHouseError(f"unknown ClickHouse query {name!r}; known: {', '.join(known)}")
    return path.read_text()


def query_names() -> list[str]:
    return sorted(p.stem for p in (SQL_DIR / "queries").glob("*.sql"))


def _chdb_params(params: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in (params or {}).items()}


class _Chdb:
    """chdb session on a directory (ClickHouse in this process)."""

    def __init__(self, path: Path):
        from chdb import session

        path.mkdir(parents=True, exist_ok=True)
        self._session = session.Session(str(path))

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        self._session.query(sql, "CSV", params=_chdb_params(params))

    def query_df(self, sql: str, params: dict[str, Any]) -> pd.DataFrame:
        return self._session.query(sql, "DataFrame", params=_chdb_params(params))

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        with tempfile.TemporaryDirectory(prefix="gogooku3-ch-") as tmp:
            path = Path(tmp) / "rows.parquet"
            pq.write_table(data, path)
            cols = ", ".join(data.column_names)
            self._session.query(
                f"INSERT INTO {table} ({cols}) SELECT {cols} FROM file({{path:String}}, Parquet)",
                "CSV", params={"path": str(path)},
            )

    def close(self) -> None:
        self._session.close()


class _Server:
    """A ClickHouse server over HTTP(S) through clickhouse-connect."""

    def __init__(self, url: str):
        import clickhouse_connect

        self._client = clickhouse_connect.get_client(dsn=url)

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        self._client.command(sql, parameters=params or None)

    def query_df(self, sql: str, params: dict[str, Any]) -> pd.DataFrame:
        return self._client.query_df(sql, parameters=params)

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        self._client.insert_arrow(table, data)

    def close(self) -> None:
        self._client.close()


class ClickHouse:
    """The analytics store: schema, date-range loads and named queries on one engine."""

    def __init__(self, url: str):
        if url.startswith(("http://", "https://")):
            self._engine = _Server(url)
        elif url.startswith("chdb://"):
            rest = url.removeprefix("chdb://")
            path = Path(rest) if rest.startswith("/") else PROJECT_ROOT / (rest or "clickhouse")
            self._engine = _Chdb(path)
        else:
            raise ClickHouseError(
                f"CLICKHOUSE_URL must start with http://, https:// or chdb://, got "
                f"{url.split('://', 1)[0]}://..."
            )
        self.ensure_schema()

    def __enter__(self) -> ClickHouse:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._engine.close()

    def ensure_schema(self) -> None:
        """Create the tables of ``schema.sql`` that do not exist yet."""
        for statement in _statements((SQL_DIR / "schema.sql").read_text()):
            self._engine.command(statement)

    def replace_dates(self, table: str, data: pa.Table, start: dt.date, end: dt.date) -> int:
        """Replace ``[start, end]`` of ``table`` with ``data``; return the rows inserted.

        Rows dated outside ``[start, end]`` raise ``ClickHouseError`` before anything changes.
        """
        if table not in TABLES:
            raise ClickHouseError(f"unknown ClickHouse table {table!r}; known: {', '.join(TABLES)}")
        if data.num_rows:
            dates = data.column("date")
            lo, hi = pc.min(dates).as_py(), pc.max(dates).as_py()
            if lo < start or hi > end:
                raise ClickHouseError(
                    f"{table}: rows dated {lo}..{hi} outside the replaced range {start}..{end}")
        self._engine.command(
            f"DELETE FROM {table} WHERE date BETWEEN {{start:Date}} AND {{end:Date}}",
            {"start": start, "end": end},
        )
        if data.num_rows:
            self._engine.insert_arrow(table, data)
        log.info("ClickHouse %s: replaced %s..%s with %d rows", table, start, end, data.num_rows)
        return data.num_rows

    def query(self, name: str, **params: Any) -> pd.DataFrame:
        """Run the named query of ``configs/clickhouse/queries`` with ``params`` bound."""
        return self.sql(query_sql(name), **params)

    def sql(self, text: str, **params: Any) -> pd.DataFrame:
        """Run one SELECT with ``{name:Type}`` parameters bound; a DataFrame."""
        return self._engine.query_df(text, params)
