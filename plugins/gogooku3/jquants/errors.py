"""Typed J-Quants client errors.

Every message names the endpoint path and the query parameters (never the API
key, which is only ever sent as a header) and what went wrong, so a failed
Airflow task log says which request to look at.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def describe_request(path: str, params: Mapping[str, Any] | None) -> str:
    """``/equities/bars/daily?date=2024-01-04`` style text for messages (no secrets)."""
    shown = {k: v for k, v in (params or {}).items() if k != "pagination_key"}
    query = "&".join(f"{k}={v}" for k, v in sorted(shown.items()))
    return f"{path}?{query}" if query else path


class JQuantsError(Exception):
    """Base class: a J-Quants request that did not produce data.

    ``path`` and ``params`` identify the request; ``status`` is the HTTP status
    when there was a response.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str,
        params: Mapping[str, Any] | None = None,
        status: int | None = None,
    ):
        self.path = path
        self.params = dict(params or {})
        self.status = status
        where = describe_request(path, params)
        code = f" (HTTP {status})" if status is not None else ""
        super().__init__(f"J-Quants {where}{code}: {message}")


class JQuantsAuthError(JQuantsError):
    """401/403: missing or wrong API key, a resource outside the plan, or an unknown path.

    Never retried: repeating it cannot succeed and may lock the account.
    """


class JQuantsRequestError(JQuantsError):
    """400 or another non-retryable 4xx: the query itself is wrong."""


class JQuantsRetryExhausted(JQuantsError):
    """A retryable failure (429, 5xx, timeout, dropped connection) outlived the retry budget."""


class JQuantsProtocolError(JQuantsError):
    """A 2xx answer that is not a J-Quants page (not JSON, no ``data`` list, a paging loop)."""
