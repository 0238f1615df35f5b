"""One typed settings object: ``configs/pipeline.yaml`` overridden by the environment.

Precedence (highest first): explicit keyword arguments, environment variables,
the YAML file, field defaults. The YAML file is ``$GOGOOKU_CONFIG`` or
``<project root>/configs/pipeline.yaml``. Unknown YAML keys and values of the
wrong type raise ``SettingsError`` naming the key. Relative paths are resolved
against the project root (the directory holding ``configs/``), so Airflow
tasks, Spark drivers and the CLI agree on where the lake is whatever their
working directory.

Environment variables (each field also accepts ``GOGOOKU_<FIELD>``):
``GOGOOKU_LAKE``, ``JQUANTS_API_URL``, ``JQUANTS_API_KEY``,
``JQUANTS_MAX_CONCURRENT``, ``JQUANTS_REQUESTS_PER_MINUTE``, ``JQUANTS_PLAN``, ``SPARK_MASTER``,
``MLFLOW_TRACKING_URI``, ``REDIS_URL``, ``CLICKHOUSE_URL``, ``AWS_ENDPOINT_URL``,
``AWS_REGION``, ``GOGOOKU_TRAINING_BACKEND`` (``local``: a process beside Airflow;
``docker``: the trainer image), ``GOGOOKU_TRAINER_IMAGE``. S3 credentials are never
settings: S3A, delta-rs and MLflow read ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``
from the environment themselves.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SECRET_FIELDS = frozenset({"jquants_api_key"})


class SettingsError(ValueError):
    """Configuration that cannot be used; the message names the key and the source."""


def _env(field: str, default: Any, *names: str) -> Any:
    return Field(
        default=default, validation_alias=AliasChoices(field, *names, f"GOGOOKU_{field.upper()}")
    )


def default_config_path() -> Path:
    return Path(os.environ.get("GOGOOKU_CONFIG", PROJECT_ROOT / "configs" / "pipeline.yaml"))


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the pipeline YAML; top-level keys must be field names."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path):
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field, field_name):  # pragma: no cover - unused by __call__
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        try:
            data = yaml.safe_load(self.path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise SettingsError(f"{self.path}: not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise SettingsError(f"{self.path}: top level must be a mapping of settings")
        unknown = sorted(set(data) - set(self.settings_cls.model_fields))
        if unknown:
            raise SettingsError(
                f"{self.path}: unknown setting(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(self.settings_cls.model_fields))}"
            )
        return data


class Settings(BaseSettings):
    """Resolved configuration of one gogooku3 process."""

    model_config = SettingsConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    lake_root: str = _env("lake_root", "lake", "GOGOOKU_LAKE")
    jquants_api_url: str = _env("jquants_api_url", "http://127.0.0.1:8765/v2", "JQUANTS_API_URL")
    jquants_api_key: SecretStr | None = _env("jquants_api_key", None, "JQUANTS_API_KEY")
    jquants_max_concurrent: int = _env("jquants_max_concurrent", 150, "JQUANTS_MAX_CONCURRENT")
    jquants_requests_per_minute: int | None = _env(
        "jquants_requests_per_minute", None, "JQUANTS_REQUESTS_PER_MINUTE"
    )
    #: free | light | standard | premium: the endpoints ingested by default and the default
    #: requests per minute (``gogooku3.jquants.endpoints.PLANS``, ``plan_endpoints``,
    #: ``requests_per_minute``); unset = every endpoint and no pace (the simulated server)
    jquants_plan: Literal["free", "light", "standard", "premium"] | None = _env(
        "jquants_plan", None, "JQUANTS_PLAN")
    #: a trade date of a table publishes with its bad rows (and missing listed codes)
    #: quarantined unless they exceed this share of its listed codes (rows); then it fails
    quality_max_bad_share: float = _env("quality_max_bad_share", 0.01)
    spark_master: str = _env("spark_master", "local[*]", "SPARK_MASTER")
    spark_shuffle_partitions: int = _env("spark_shuffle_partitions", 8)
    spark_driver_memory: str = _env("spark_driver_memory", "4g")
    spark_event_log_dir: str = _env("spark_event_log_dir", "spark-events", "SPARK_EVENT_LOG_DIR")
    cache_dir: str = _env("cache_dir", ".cache")
    mlflow_tracking_uri: str = _env("mlflow_tracking_uri", "sqlite:///mlflow.db", "MLFLOW_TRACKING_URI")
    redis_url: str = _env("redis_url", "redis://127.0.0.1:6379/0", "REDIS_URL")
    clickhouse_url: str = _env("clickhouse_url", "chdb://clickhouse", "CLICKHOUSE_URL")
    training_backend: Literal["local", "docker"] = _env("training_backend", "local")
    trainer_image: str = _env("trainer_image", "gogooku3-trainer:latest")
    feast_data_dir: str = _env("feast_data_dir", "feast_data")
    feast_registry: str | None = _env("feast_registry", None)
    s3_endpoint_url: str | None = _env("s3_endpoint_url", None, "AWS_ENDPOINT_URL")
    s3_region: str = _env("s3_region", "us-east-1", "AWS_REGION")

    @field_validator("jquants_max_concurrent", "spark_shuffle_partitions")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be >= 1")
        return value

    @field_validator("quality_max_bad_share")
    @classmethod
    def _share(cls, value: float) -> float:
        if not 0.0 <= value < 1.0:
            raise ValueError("must be in [0, 1)")
        return value

    @field_validator("jquants_plan", mode="before")
    @classmethod
    def _plan_name(cls, value: Any) -> Any:
        return (value.strip().lower() or None) if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        return (init_settings, env_settings, _YamlSource(settings_cls, default_config_path()))

    def resolved_path(self, field: str) -> Path:
        """A path setting made absolute against the project root."""
        value = Path(getattr(self, field)).expanduser()
        return value if value.is_absolute() else PROJECT_ROOT / value

    @property
    def lake_uri(self) -> str:
        """Lake root as a URI-or-path usable by Spark and delta-rs (``s3://`` kept as is)."""
        if "://" in self.lake_root:
            return self.lake_root
        return str(self.resolved_path("lake_root"))

    @property
    def lake_on_s3(self) -> bool:
        """Whether the lake root is on S3-compatible object storage."""
        return self.lake_root.startswith(("s3://", "s3a://"))

    def redacted(self) -> dict[str, Any]:
        """All settings as plain values with secrets replaced by ``***``."""
        out = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name in SECRET_FIELDS:
                value = None if value is None else "***"
            out[name] = value
        return out

    def get(self, key: str) -> Any:
        """One setting by name (secrets redacted); raises ``SettingsError`` for unknown keys."""
        if key not in type(self).model_fields:
            raise SettingsError(
                f"unknown setting {key!r}; known: {', '.join(sorted(type(self).model_fields))}"
            )
        return self.redacted()[key]


def load_settings(**overrides: Any) -> Settings:
    """Build settings from defaults, YAML, environment and ``overrides``.

    Raises ``SettingsError`` whose message names every bad key and why.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '?'}: {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(f"invalid settings ({default_config_path()}): {problems}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings (cached); tests call ``get_settings.cache_clear()``."""
    return load_settings()
