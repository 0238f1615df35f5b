"""J-Quants v2 access: the async client, its endpoint catalogue and typed errors."""

from gogooku3.jquants.client import ClientStats, JQuantsClient, RetryPolicy, parse_retry_after
from gogooku3.jquants.endpoints import DEFAULT_ENDPOINTS, ENDPOINTS, Endpoint, endpoint
from gogooku3.jquants.errors import (
    JQuantsAuthError,
    JQuantsError,
    JQuantsProtocolError,
    JQuantsRequestError,
    JQuantsRetryExhausted,
)

__all__ = [
    "DEFAULT_ENDPOINTS",
    "ENDPOINTS",
    "ClientStats",
    "Endpoint",
    "JQuantsAuthError",
    "JQuantsClient",
    "JQuantsError",
    "JQuantsProtocolError",
    "JQuantsRequestError",
    "JQuantsRetryExhausted",
    "RetryPolicy",
    "endpoint",
    "parse_retry_after",
]
