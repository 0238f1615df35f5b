"""Airflow Assets for lake tables: one per catalogued table, named like the table.

Ingestion tasks emit events on the bronze/silver assets with ``extra={"trade_date": ...}``;
the feature DAG is scheduled on the silver assets and reads the trade dates from those
events; the gold events carry the dates built, which ``daily_inference`` predicts. The
training DAG's promote task emits the model Asset.
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


#: the registered model the training DAG promotes and the inference DAG serves
MODEL_NAME = "atft_gat_fan"


def model_asset() -> Asset:
    """The Asset of the registered model (URI ``gogooku3://mlflow/models/<name>``); its
    events carry the registry version and the champion decision."""
    return Asset(name=f"model.{MODEL_NAME}", uri=f"gogooku3://mlflow/models/{MODEL_NAME}",
                 group="model")
