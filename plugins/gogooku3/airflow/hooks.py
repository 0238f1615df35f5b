"""Airflow hook over the Airflow-free J-Quants client.

Connection ``jquants_default`` (settable as ``AIRFLOW_CONN_JQUANTS_DEFAULT``):

* ``host`` — base URL including ``/v2`` (``https://api.jquants.com/v2``, or the
  simulated server ``http://127.0.0.1:8765/v2``),
* ``password`` — the API key (a password field: masked in logs and the UI),
* ``extra`` — optional ``{"max_concurrent": 150, "requests_per_minute": 120}``.

Missing connection fields fall back to gogooku3 settings. Nothing connects at
construction or DAG-parse time; ``get_conn()`` builds the client lazily.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.bases.hook import BaseHook

from gogooku3.jquants.client import JQuantsClient


class JQuantsHook(BaseHook):
    """Builds a ``JQuantsClient`` from an Airflow connection."""

    conn_name_attr = "jquants_conn_id"
    default_conn_name = "jquants_default"
    conn_type = "http"
    hook_name = "J-Quants"

    def __init__(self, jquants_conn_id: str = default_conn_name, **client_overrides: Any):
        super().__init__()
        self.jquants_conn_id = jquants_conn_id
        self.client_overrides = client_overrides

    def client_kwargs(self) -> dict[str, Any]:
        """Base URL, key and limits resolved from the connection, then settings."""
        from gogooku3.settings import get_settings

        settings = get_settings()
        conn = self.get_connection(self.jquants_conn_id)
        extra = conn.extra_dejson or {}
        host = (conn.host or "").rstrip("/")
        if host and "://" not in host:
            host = f"{conn.schema or 'https'}://{host}"
        return {
            "base_url": host or settings.jquants_api_url,
            "api_key": conn.password or settings.jquants_api_key,
            "max_concurrent": int(extra.get("max_concurrent", settings.jquants_max_concurrent)),
            "requests_per_minute": extra.get(
                "requests_per_minute", settings.jquants_requests_per_minute
            ),
            **self.client_overrides,
        }

    def get_conn(self) -> JQuantsClient:
        kwargs = self.client_kwargs()
        return JQuantsClient(kwargs.pop("base_url"), kwargs.pop("api_key"), **kwargs)
