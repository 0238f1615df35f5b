"""Feast over the gold tables: configuration, materialization and online lookups.

``feature_repo/feature_store.yaml`` is the one shape of the configuration; its
``${...}`` values come from the project settings here (``redis_url``,
``feast_data_dir``, ``feast_registry``), so the CLI, the DAG and the tests need no
environment of their own. The online store holds, per code, the latest row dated on
or before the materialized end date.
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
    FORECAST_VIEW,
    RAW_VIEW,
    TTL,
    feast_objects,
    view_columns,
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

    ``start`` defaults to ``end - TTL`` (the history one online row can come from). A
    view whose gold table does not exist yet is skipped and named in ``skipped``. A view
    materialized before continues from its last end (Feast's incremental materialization);
    a repeat with the same ``end`` leaves the online store as it was.
    """
    settings = settings or get_settings()
    start = start or end - TTL
    if start > end:
        raise ServingError(f"serve materialize: start {start} is after end {end}")
    out_dir = offline_dir(settings)
    result = Materialized()
    for source in {view_source()[v] for v in view_columns()}:
        try:
            result.exported[source] = offline_export.export_range(
                source, start, end, out_dir, settings.lake_uri)
        except TableNotFound as exc:
            result.skipped[source] = str(exc)
    store = feature_store(settings)
    store.apply(feast_objects(out_dir))
    for view in view_columns():
        if not offline_export.exported_dates(view_source()[view], out_dir):
            result.skipped.setdefault(view, f"no exported rows for {view_source()[view]}")
            continue
        last = store.get_feature_view(view).most_recent_end_time
        if last is None:
            store.materialize(_midnight(start), _midnight(end), feature_views=[view])
        else:
            store.materialize_incremental(_midnight(end), feature_views=[view])
        result.views.append(view)
    return result


@dataclass
class OnlineRow:
    """One code's online vector: feature date, z-scores, raw features and forecast."""

    code: str
    feature_date: dt.date | None
    forecast_date: dt.date | None
    features: dict[str, float | None]
    forecast: dict[str, float | str | None]


@dataclass
class OnlineResult:
    rows: list[OnlineRow]
    missing: list[str]


def feature_refs(views: tuple[str, ...] = (CS_Z_VIEW, RAW_VIEW, FORECAST_VIEW)) -> list[str]:
    """``view:feature`` references of ``views``."""
    cols = view_columns()
    return [f"{view}:{c}" for view in views for c in cols[view]]


def _date_of(seconds: list[int]) -> dt.date | None:
    present = [s for s in seconds if s]
    return dt.datetime.fromtimestamp(max(present), dt.UTC).date() if present else None


def online_lookup(codes: list[str], store=None, refs: list[str] | None = None) -> OnlineResult:
    """Online vectors of ``codes`` (in the order given, repeats dropped).

    A code the online store does not hold (never materialized, or not a listed code)
    is returned in ``missing`` instead of ``rows``; it is not an error. An unreachable
    Redis raises ``ServingError`` naming host and port (never the password).
    """
    if not codes:
        raise ServingError("serve online: no codes given")
    codes = list(dict.fromkeys(str(c) for c in codes))
    store = store or feature_store()
    refs = refs or feature_refs()
    from redis.exceptions import ConnectionError as RedisConnectionError

    try:
        raw = store.get_online_features(
            features=refs, entity_rows=[{ENTITY: c} for c in codes]
        ).to_dict(include_event_timestamps=True)
    except RedisConnectionError as exc:
        where = store.config.online_store.connection_string.split(",")[0]
        raise ServingError(
            f"serve online: Redis at {where} not reachable ({type(exc).__name__}); start it "
            "(gogooku3 serve redis start) or point REDIS_URL at a server") from None
    forecast_cols = set(view_columns()[FORECAST_VIEW])
    names = [r.split(":", 1)[1] for r in refs]
    rows, missing = [], []
    for i, code in enumerate(codes):
        values = {n: raw[n][i] for n in names}
        stamps = {n: raw[f"{n}__ts"][i] for n in names}
        feature_date = _date_of([stamps[n] for n in names if n not in forecast_cols])
        forecast_date = _date_of([stamps[n] for n in names if n in forecast_cols])
        if feature_date is None and forecast_date is None:
            missing.append(code)
            continue
        rows.append(OnlineRow(
            code=code, feature_date=feature_date, forecast_date=forecast_date,
            features={n: v for n, v in values.items() if n not in forecast_cols},
            forecast={n: v for n, v in values.items() if n in forecast_cols},
        ))
    return OnlineResult(rows=rows, missing=missing)
