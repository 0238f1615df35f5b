"""Airflow Assets for lake tables: one per catalogued table, named like the table.

Ingestion tasks emit events on the bronze/silver assets with ``extra={"trade_date": ...}``;
the feature DAG is scheduled on the silver assets and reads the trade dates from those
events. Training and serving DAGs will schedule on the gold assets the same way.
"""

from __future__ import annotations

from airflow.sdk import Asset

from gogooku3.jquants.endpoints import BRONZE_TABLES, SILVER_TABLES

GOLD_TABLES = ("gold.features", "gold.labels")


def lake_asset(table: str) -> Asset:
    """The Asset of lake table ``layer.name`` (URI ``gogooku3://lake/<layer>/<name>``)."""
    layer, name = table.split(".", 1)
    return Asset(name=table, uri=f"gogooku3://lake/{layer}/{name}", group=layer)


def bronze_assets() -> list[Asset]:
    return [lake_asset(t) for t in BRONZE_TABLES]


def silver_assets() -> list[Asset]:
    return [lake_asset(t) for t in SILVER_TABLES]


def gold_assets() -> list[Asset]:
    return [lake_asset(t) for t in GOLD_TABLES]
