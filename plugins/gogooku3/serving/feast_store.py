"""Feast over the gold tables: configuration, materialization and online lookups.

``feature_repo/feature_store.yaml`` is the one shape of the configuration; its
``${...}`` values come from the project settings here (``redis_url``,
``feast_data_dir``, ``feast_registry``), so the CLI, the DAG and the tests need no
environment of their own. The online store holds, per code, the latest row dated on
or before the materialized end date, as the packed vectors of ``feature_views``.
"""

from __future__ import annotations

import datetime as dt
import logging
import string
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import yaml

from gogooku3.lake.errors import TableNotFound
from gogooku3.serving import offline_export
from gogooku3.serving.feature_views import (
    CS_Z_VIEW,
    ENTITY,
    FORECAST_VECTOR_VIEW,
    FORECAST_VIEW,
    RAW_VIEW,
    TTL,
    feast_objects,
    online_refs,
    online_views,
    vectors,
    view_source,
)
from gogooku3.settings import PROJECT_ROOT, Settings, get_settings

log = logging.getLogger(__name__)

FEATURE_REPO = PROJECT_ROOT / "feature_repo"


class ServingError(ValueError):
    """A serving request that cannot be met; the message says what and where."""


def redis_connection_string(url: str) -> str:
    """``redis://[:password@]host:port/db`` -> Feast's ``host:port,db=N[,password=..][,ssl=true]``."""
    parsed = urlparse(url)
    if parsed.scheme not in ("redis", "rediss") or not parsed.hostname:
        raise ServingError(f"redis_url {parsed.scheme}://{parsed.hostname}...: expected redis:// or rediss://")
    parts = [f"{parsed.hostname}:{parsed.port or 6379}", f"db={parsed.path.strip('/') or 0}"]
    if parsed.password:
        parts.append(f"password={unquote(parsed.password)}")
    if parsed.scheme == "rediss":
        parts.append("ssl=true")
    return ",".join(parts)


def offline_dir(settings: Settings) -> Path:
    return settings.resolved_path("feast_data_dir") / "offline"


def repo_config(settings: Settings):
    """The Feast ``RepoConfig`` of ``feature_repo/feature_store.yaml`` filled from ``settings``."""
    from feast.repo_config import RepoConfig

    registry = settings.feast_registry or str(settings.resolved_path("feast_data_dir") / "registry.db")
    values = {
        "FEAST_REGISTRY_TYPE": "sql" if registry.startswith("postgresql") else "file",
        "FEAST_REGISTRY_PATH": registry,
        "FEAST_REDIS_CONNECTION": redis_connection_string(settings.redis_url),
    }
    text = (FEATURE_REPO / "feature_store.yaml").read_text()
    config = RepoConfig(**yaml.safe_load(string.Template(text).substitute(values)))
    config.repo_path = FEATURE_REPO
    return config


def feature_store(settings: Settings | None = None):
    """A ``feast.FeatureStore`` for ``settings`` (registry directory created if local)."""
    from feast import FeatureStore

    settings = settings or get_settings()
    settings.resolved_path("feast_data_dir").mkdir(parents=True, exist_ok=True)
    return FeatureStore(config=repo_config(settings), repo_path=str(FEATURE_REPO))


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


@dataclass
class Materialized:
    """What one ``materialize`` did: dates exported per source, views written online."""

    exported: dict[str, list[dt.date]] = field(default_factory=dict)
    views: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def materialize(end: dt.date, start: dt.date | None = None,
                settings: Settings | None = None) -> Materialized:
    """Export gold ``[start, end]`` to Parquet, apply the repo, load the online store up to ``end``.

    ``start`` defaults to ``end - TTL`` (the history one online row can come from). Only
    the vector views are written online; the wide views stay offline. A view whose gold
    table does not exist yet is skipped and named in ``skipped``. Every run loads the
    latest row per code of ``[start, end]``; the online store keeps the newest row per
    code, so a repeat leaves it as it was, and an emptied store is refilled.
    """
    settings = settings or get_settings()
    start = start or end - TTL
    if start > end:
        raise ServingError(f"serve materialize: start {start} is after end {end}")
    out_dir = offline_dir(settings)
    result = Materialized()
    for source in sorted(set(view_source().values())):
        try:
            result.exported[source] = offline_export.export_range(
                source, start, end, out_dir, settings.lake_uri)
        except TableNotFound as exc:
            result.skipped[source] = str(exc)
    store = feature_store(settings)
    store.apply(feast_objects(out_dir))
    for view in online_views().values():
        if not offline_export.exported_dates(view.source, out_dir):
            result.skipped.setdefault(view.name, f"no exported rows for {view.source}")
            continue
        # the whole window, not incremental from the last end: Redis keeps the newest row
        # per code, so this is idempotent, and an online store that lost its data (a
        # restart without persistence) is whole again after one run
        store.materialize(_midnight(start), _midnight(end), feature_views=[view.name])
        result.views.append(view.name)
    return result


@dataclass
class OnlineRow:
    """One code's online values: feature date, the packed vectors and the forecast labels.

    ``cs_z``, ``raw`` and ``forecast_values`` are the vectors as served (element ``i`` is
    ``names[view][i]``; NaN where gold is null; empty when the view holds nothing for the
    code). ``features`` and ``forecast`` name them (built on access, not per request).
    """

    code: str
    feature_date: dt.date | None
    forecast_date: dt.date | None
    cs_z: list[float]
    raw: list[float]
    forecast_values: list[float]
    labels: dict[str, str | None]
    names: dict[str, tuple[str, ...]]

    @property
    def features(self) -> dict[str, float]:
        """``<feature>_cs_z`` and raw feature name -> value."""
        return {**_named(self.names[CS_Z_VIEW], self.cs_z),
                **_named(self.names[RAW_VIEW], self.raw)}

    @property
    def forecast(self) -> dict[str, float | str | None]:
        """Forecast column name (``pred_<h>d[_q..]``, model name and version) -> value."""
        return {**self.labels, **_named(self.names[FORECAST_VIEW], self.forecast_values)}


def _named(names: tuple[str, ...], values: list[float]) -> dict[str, float]:
    """``names`` -> ``values`` (an absent vector, ``[]``, names nothing)."""
    return dict(zip(names, values, strict=True)) if values else {}


@dataclass
class OnlineResult:
    """Rows in request order, codes the store does not hold, and the vectors' element names."""

    rows: list[OnlineRow]
    missing: list[str]
    names: dict[str, tuple[str, ...]]


def _date_of(seconds: int) -> dt.date | None:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).date() if seconds else None


def _fetch(store, codes: list[str]):
    """Feast's ``OnlineResponse`` for every online reference of ``codes``."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    try:
        # entity rows as one column: Feast would otherwise transpose a list of dicts
        return store.get_online_features(features=online_refs(), entity_rows={ENTITY: codes})
    except RedisConnectionError as exc:
        where = store.config.online_store.connection_string.split(",")[0]
        raise ServingError(
            f"serve online: Redis at {where} not reachable ({type(exc).__name__}); start it "
            "(gogooku3 serve redis start) or point REDIS_URL at a server") from None


#: Arrow element type of a packed vector -> the ValueProto list field holding it
_LIST_FIELD = {"float": "float_list_val", "double": "double_list_val"}


def _vector_values(response, vec) -> list[list[float]]:
    """One packed field of a response, per requested code: its list ([] where absent).

    Read from the response proto directly (``OnlineResponse.proto``): ``to_dict`` would
    convert each value through Feast's generic type dispatch, the per-value cost this
    design removes. Raises ``ServingError`` when a vector's length is not the view's.
    """
    column = response.proto.results[_position(response, vec.field)]
    attr = _LIST_FIELD[vec.element]
    out = [list(getattr(v, attr).val) for v in column.values]
    width = len(vec.columns)
    lengths = {len(v) for v in out if v} - {width}
    if lengths:
        raise ServingError(
            f"serve online: {vec.view}:{vec.field} holds vectors of {sorted(lengths)} "
            f"values, the view names {width}: re-materialize it")
    return out


def _position(response, field_name: str) -> int:
    return list(response.proto.metadata.feature_names.val).index(field_name)


def online_lookup(codes: list[str], store=None) -> OnlineResult:
    """Online vectors of ``codes`` (in the order given, repeats dropped).

    A code the online store does not hold (never materialized, or not a listed code)
    is returned in ``missing`` instead of ``rows``; it is not an error. An unreachable
    Redis raises ``ServingError`` naming host and port (never the password), and so does
    a vector whose length differs from its view's columns (the catalogue changed since
    it was materialized: re-materialize before serving).
    """
    if not codes:
        raise ServingError("serve online: no codes given")
    codes = list(dict.fromkeys(str(c) for c in codes))
    store = store or feature_store()
    response = _fetch(store, codes)
    vecs = vectors()
    names = {wide: vec.columns for wide, vec in vecs.items()}
    values = {wide: _vector_values(response, vec) for wide, vec in vecs.items()}
    results = response.proto.results
    # one event time per online view: the first field of each view carries it
    feature_ts = results[_position(response, vecs[CS_Z_VIEW].field)].event_timestamps
    forecast_ts = results[_position(response, vecs[FORECAST_VIEW].field)].event_timestamps
    labels = {name: results[_position(response, name)].values
              for name in online_views()[FORECAST_VECTOR_VIEW].labels}
    rows, missing = [], []
    for i, code in enumerate(codes):
        feature_date = _date_of(feature_ts[i].seconds)
        forecast_date = _date_of(forecast_ts[i].seconds)
        if feature_date is None and forecast_date is None:
            missing.append(code)
            continue
        rows.append(OnlineRow(
            code=code, feature_date=feature_date, forecast_date=forecast_date,
            cs_z=values[CS_Z_VIEW][i], raw=values[RAW_VIEW][i],
            forecast_values=values[FORECAST_VIEW][i],
            labels={name: col[i].string_val if col[i].HasField("string_val") else None
                    for name, col in labels.items()},
            names=names,
        ))
    return OnlineResult(rows=rows, missing=missing, names=names)
