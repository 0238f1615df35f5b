"""The Feast objects of gogooku3: entity ``code`` and the feature views over gold.

Three views, two offline sources (one per gold table):

- ``stock_features_cs_z``: every ``<feature>_cs_z`` column of ``gold.features``, the
  same-day z-scores the model reads;
- ``stock_features_raw``: a few raw ``gold.features`` columns a person can read
  (returns, volatility, turnover);
- ``stock_forecast``: ``gold.predictions`` (point forecast and quantiles per horizon,
  model name and version).

Offline sources are Parquet snapshots exported from the Delta tables
(``gogooku3.serving.offline_export``): Feast's file source reads Delta only through
its ``delta`` extra, which needs deltalake < 1 and cannot sit beside this project's
deltalake 1.x. A row's event timestamp is its trade date at 00:00 UTC, so an entity
row at date T sees the latest value dated on or before T (never after), for up to
``TTL`` (longer than any JPX holiday run).
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from gogooku3.lake import catalog
from gogooku3.lake.features_schema import feature_names

ENTITY = "code"
EVENT_TIMESTAMP = "event_timestamp"
TTL = timedelta(days=14)
CS_Z_VIEW = "stock_features_cs_z"
RAW_VIEW = "stock_features_raw"
FORECAST_VIEW = "stock_forecast"
RAW_FEATURES = ("ret_1d", "ret_5d", "ret_20d", "vol_20d", "log_turnover_20d", "beta_60d")

#: offline source name -> gold table it is exported from
SOURCE_TABLES = {"gold_features": "gold.features", "gold_predictions": "gold.predictions"}


@lru_cache(maxsize=1)
def view_columns() -> dict[str, tuple[str, ...]]:
    """Feature view name -> its feature columns, in table order (read once per process)."""
    cs_z = tuple(f"{name}_cs_z" for name in feature_names())
    forecast = tuple(c for c in catalog.table("gold.predictions").column_names
                     if c not in ("date", "code"))
    return {CS_Z_VIEW: cs_z, RAW_VIEW: RAW_FEATURES, FORECAST_VIEW: forecast}


def view_source() -> dict[str, str]:
    """Feature view name -> offline source name."""
    return {CS_Z_VIEW: "gold_features", RAW_VIEW: "gold_features", FORECAST_VIEW: "gold_predictions"}


def source_columns() -> dict[str, list[str]]:
    """Offline source name -> the gold columns it exports (beside code and the timestamp)."""
    out: dict[str, list[str]] = {name: [] for name in SOURCE_TABLES}
    for view, cols in view_columns().items():
        out[view_source()[view]].extend(cols)
    return out


def feast_objects(offline_dir: Path) -> list:
    """Entity, sources and feature views, with sources under ``offline_dir/<source>/``."""
    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast.data_format import ParquetFormat
    from feast.types import Float32, Float64, String

    from gogooku3.lake import catalog

    code = Entity(
        name=ENTITY, join_keys=[ENTITY], value_type=ValueType.STRING,
        description="5-character J-Quants stock code, e.g. 72030",
    )
    sources = {
        name: FileSource(
            name=name, path=str(offline_dir / name), timestamp_field=EVENT_TIMESTAMP,
            file_format=ParquetFormat(), description=f"Parquet snapshot of {table}",
        )
        for name, table in SOURCE_TABLES.items()
    }
    # Feast's value types follow the stored Arrow types (gold.features holds float32)
    feast_type = {"float": Float32, "double": Float64, "string": String}
    types = {col: feast_type[typ] for table in SOURCE_TABLES.values()
             for col, typ in catalog.table(table).columns if typ in feast_type}
    views = [
        FeatureView(
            name=view, entities=[code], ttl=TTL, online=True, source=sources[view_source()[view]],
            schema=[Field(name=ENTITY, dtype=String),
                    *[Field(name=c, dtype=types.get(c, Float64)) for c in cols]],
        )
        for view, cols in view_columns().items()
    ]
    return [code, *sources.values(), *views]
