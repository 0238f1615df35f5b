"""The Feast objects of gogooku3: entity ``code``, wide views for history, packed views online.

Two offline sources (one per gold table) feed two kinds of feature view:

- **wide views, offline only** (one Feast field per gold column, for
  ``get_historical_features`` by name): ``stock_features_cs_z`` (every
  ``<feature>_cs_z`` column of ``gold.features``, the model's inputs),
  ``stock_features_raw`` (a few raw columns a person can read) and ``stock_forecast``
  (``gold.predictions``: point forecast and quantiles per horizon, model name, version);
- **vector views, online** (what Redis holds): the same numbers packed per code into one
  ``Array`` field per wide view — ``stock_features_cs_z_vector:cs_z``,
  ``stock_features_raw_vector:raw``, ``stock_forecast_vector:forecast`` (plus its
  ``model_name`` and ``model_version`` strings). Element ``i`` of a vector is column ``i``
  of its wide view, in catalogue order (``Vector.columns``, also stored in the view's
  ``vector_columns`` tag for clients outside Python); a null gold value is NaN.

Why packed: Feast's Python SDK converts every value of a response one proto at a time,
so a request costs per value; one list per view makes a 100-code request convert
5 values per code instead of 144 (benchmarks/results/serving.md).

Offline sources are Parquet snapshots exported from the Delta tables
(``gogooku3.serving.offline_export``, which also writes the packed columns): Feast's
file source reads Delta only through its ``delta`` extra, which needs deltalake < 1 and
cannot sit beside this project's deltalake 1.x. A row's event timestamp is its trade
date at 00:00 UTC, so an entity row at date T sees the latest value dated on or before
T (never after), for up to ``TTL`` (longer than any JPX holiday run).
"""

from __future__ import annotations

from dataclasses import dataclass
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
#: scalar columns of the forecast view served beside its vector
FORECAST_LABELS = ("model_name", "model_version")

#: offline source name -> gold table it is exported from
SOURCE_TABLES = {"gold_features": "gold.features", "gold_predictions": "gold.predictions"}


@dataclass(frozen=True)
class Vector:
    """One packed online field: the numeric ``columns`` of wide view ``wide`` as one list.

    ``view`` is the online feature view, ``field`` its list field, ``element`` the Arrow
    type of one element (``float`` or ``double``), ``labels`` scalar columns served
    beside the vector in the same view.
    """

    wide: str
    view: str
    field: str
    element: str
    columns: tuple[str, ...]
    labels: tuple[str, ...] = ()

    @property
    def refs(self) -> list[str]:
        """``view:field`` references a request needs for this vector."""
        return [f"{self.view}:{name}" for name in (self.field, *self.labels)]


@lru_cache(maxsize=1)
def view_columns() -> dict[str, tuple[str, ...]]:
    """Wide feature view name -> its feature columns, in table order (read once per process)."""
    cs_z = tuple(f"{name}_cs_z" for name in feature_names())
    forecast = tuple(c for c in catalog.table("gold.predictions").column_names
                     if c not in ("date", "code"))
    return {CS_Z_VIEW: cs_z, RAW_VIEW: RAW_FEATURES, FORECAST_VIEW: forecast}


def view_source() -> dict[str, str]:
    """Wide feature view name -> offline source name."""
    return {CS_Z_VIEW: "gold_features", RAW_VIEW: "gold_features", FORECAST_VIEW: "gold_predictions"}


def _column_types() -> dict[str, str]:
    return {col: typ for table in SOURCE_TABLES.values() for col, typ in catalog.table(table).columns}


@lru_cache(maxsize=1)
def vectors() -> dict[str, Vector]:
    """Wide view name -> its packed online ``Vector`` (element order = ``view_columns()``).

    Raises ``ValueError`` if a packed column is not numeric or of mixed precision, or a
    field name collides with a gold column (the catalogue changed under the views).
    """
    types = _column_types()
    out = {}
    for wide, field, labels in ((CS_Z_VIEW, "cs_z", ()), (RAW_VIEW, "raw", ()),
                                (FORECAST_VIEW, "forecast", FORECAST_LABELS)):
        columns = tuple(c for c in view_columns()[wide] if c not in labels)
        elements = {types[c] for c in columns}
        if len(elements) != 1 or not elements <= {"float", "double"}:
            raise ValueError(f"feature view {wide}: cannot pack columns of types {sorted(elements)}")
        if field in types:
            raise ValueError(f"feature view {wide}_vector: field {field!r} is also a gold column")
        out[wide] = Vector(wide, f"{wide}_vector", field, elements.pop(), columns, labels)
    return out


def online_refs() -> list[str]:
    """Every ``view:field`` reference the online store serves (the packed views)."""
    return [ref for vec in vectors().values() for ref in vec.refs]


def source_columns() -> dict[str, list[str]]:
    """Offline source name -> the gold columns it exports (beside code and the timestamp)."""
    out: dict[str, list[str]] = {name: [] for name in SOURCE_TABLES}
    for view, cols in view_columns().items():
        out[view_source()[view]].extend(cols)
    return out


def source_vectors() -> dict[str, list[Vector]]:
    """Offline source name -> the packed columns its snapshot carries."""
    out: dict[str, list[Vector]] = {name: [] for name in SOURCE_TABLES}
    for wide, vec in vectors().items():
        out[view_source()[wide]].append(vec)
    return out


def feast_objects(offline_dir: Path) -> list:
    """Entity, sources, wide (offline) and vector (online) views; sources under ``offline_dir``."""
    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast.data_format import ParquetFormat
    from feast.types import Array, Float32, Float64, String

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
    types = _column_types()

    def view(name, source, fields, online, **kw):
        return FeatureView(name=name, entities=[code], ttl=TTL, online=online,
                           source=sources[source], schema=[Field(name=ENTITY, dtype=String),
                                                           *fields], **kw)

    wide = [view(name, view_source()[name],
                 [Field(name=c, dtype=feast_type[types[c]]) for c in cols], online=False)
            for name, cols in view_columns().items()]
    packed = [view(vec.view, view_source()[vec.wide],
                   [Field(name=vec.field, dtype=Array(feast_type[vec.element])),
                    *[Field(name=c, dtype=feast_type[types[c]]) for c in vec.labels]],
                   online=True, tags={"vector_columns": ",".join(vec.columns)},
                   description=f"{vec.wide} packed: {vec.field}[i] = vector_columns[i]")
              for vec in vectors().values()]
    return [code, *sources.values(), *wide, *packed]
