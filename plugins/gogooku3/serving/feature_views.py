"""The Feast objects of gogooku3: entity ``code``, wide views for history, packed views online.

Two offline sources (one per gold table) feed two kinds of feature view:

- **wide views, offline only** (one Feast field per gold column, for
  ``get_historical_features`` by name): ``stock_features_cs_z`` (every
  ``<feature>_cs_z`` column of ``gold.features``, the model's inputs),
  ``stock_features_raw`` (a few raw columns a person can read) and ``stock_forecast``
  (``gold.predictions``: point forecast and quantiles per horizon, model name, version);
- **vector views, online** (what Redis holds), one per source: the same numbers packed
  per code into one ``Array`` field per wide view — ``stock_features_vector`` with
  ``cs_z`` and ``raw``, ``stock_forecast_vector`` with ``forecast`` plus the
  ``model_name`` and ``model_version`` strings. Element ``i`` of a vector is column ``i``
  of its wide view, in catalogue order (``Vector.columns``, also stored in the view's
  ``<field>_columns`` tag for clients outside Python); a null gold value is NaN.

Why packed, and why one online view per source: Feast's Python SDK costs per value
(each ``ValueProto`` converted on its own) and per code and view (entity key
serialization, one Redis ``HMGET``, timestamps). Packing makes a code 5 values instead
of 144, and two views instead of three (benchmarks/results/serving.md).

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
FEATURES_VECTOR_VIEW = "stock_features_vector"
FORECAST_VECTOR_VIEW = "stock_forecast_vector"
#: scalar columns of the forecast view served beside its vector
FORECAST_LABELS = ("model_name", "model_version")

#: offline source name -> gold table it is exported from
SOURCE_TABLES = {"gold_features": "gold.features", "gold_predictions": "gold.predictions"}


@dataclass(frozen=True)
class Vector:
    """One packed online field: the numeric ``columns`` of wide view ``wide`` as one list.

    ``field`` is the list field of online view ``view``; ``element`` the Arrow type of one
    element (``float`` or ``double``).
    """

    wide: str
    view: str
    field: str
    element: str
    columns: tuple[str, ...]

    @property
    def ref(self) -> str:
        """The ``view:field`` reference of this vector."""
        return f"{self.view}:{self.field}"


@dataclass(frozen=True)
class OnlineView:
    """An online feature view: packed ``vectors`` plus scalar ``labels``, from ``source``."""

    name: str
    source: str
    vectors: tuple[Vector, ...]
    labels: tuple[str, ...] = ()

    @property
    def refs(self) -> list[str]:
        """``view:field`` references a request needs for this view."""
        return [f"{self.name}:{f}" for f in (*(v.field for v in self.vectors), *self.labels)]


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


#: online view -> (source, ((wide view, packed field), ...), labels)
_ONLINE = {
    FEATURES_VECTOR_VIEW: ("gold_features", ((CS_Z_VIEW, "cs_z"), (RAW_VIEW, "raw")), ()),
    FORECAST_VECTOR_VIEW: ("gold_predictions", ((FORECAST_VIEW, "forecast"),), FORECAST_LABELS),
}


@lru_cache(maxsize=1)
def online_views() -> dict[str, OnlineView]:
    """Online view name -> its ``OnlineView`` (vector element order = ``view_columns()``).

    Raises ``ValueError`` if a packed column is not numeric or of mixed precision, or a
    field name collides with a gold column (the catalogue changed under the views).
    """
    types = _column_types()
    out = {}
    for name, (source, packed, labels) in _ONLINE.items():
        vecs = []
        for wide, field in packed:
            columns = tuple(c for c in view_columns()[wide] if c not in labels)
            elements = {types[c] for c in columns}
            if len(elements) != 1 or not elements <= {"float", "double"}:
                raise ValueError(f"feature view {name}: cannot pack the {wide} columns of "
                                 f"types {sorted(elements)} into {field!r}")
            if field in types:
                raise ValueError(f"feature view {name}: field {field!r} is also a gold column")
            vecs.append(Vector(wide, name, field, elements.pop(), columns))
        out[name] = OnlineView(name, source, tuple(vecs), labels)
    return out


def vectors() -> dict[str, Vector]:
    """Wide view name -> the packed ``Vector`` that serves it online."""
    return {v.wide: v for view in online_views().values() for v in view.vectors}


def online_refs() -> list[str]:
    """Every ``view:field`` reference the online store serves (the packed views)."""
    return [ref for view in online_views().values() for ref in view.refs]


def source_columns() -> dict[str, list[str]]:
    """Offline source name -> the gold columns it exports (beside code and the timestamp)."""
    out: dict[str, list[str]] = {name: [] for name in SOURCE_TABLES}
    for view, cols in view_columns().items():
        out[view_source()[view]].extend(cols)
    return out


def source_vectors() -> dict[str, list[Vector]]:
    """Offline source name -> the packed columns its snapshot carries."""
    out: dict[str, list[Vector]] = {name: [] for name in SOURCE_TABLES}
    for view in online_views().values():
        out[view.source].extend(view.vectors)
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
    packed = [view(ov.name, ov.source,
                   [*[Field(name=v.field, dtype=Array(feast_type[v.element])) for v in ov.vectors],
                    *[Field(name=c, dtype=feast_type[types[c]]) for c in ov.labels]],
                   online=True, tags={f"{v.field}_columns": ",".join(v.columns) for v in ov.vectors},
                   description="packed " + ", ".join(
                       f"{v.wide} as {v.field} ({v.field}[i] = tag {v.field}_columns[i])"
                       for v in ov.vectors))
              for ov in online_views().values()]
    return [code, *sources.values(), *wide, *packed]
