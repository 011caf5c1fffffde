"""The connector kit: typed operations, credentials, one HTTP setup, error mapping,
a shared circuit breaker and idempotent side effects. The catalog is in ``catalog/``."""

from aios.connectors.breaker import BreakerPolicy, CircuitBreaker
from aios.connectors.credentials import ConnectorSecret, Credentials, secret_name
from aios.connectors.http import Timeouts
from aios.connectors.kit import Connector, ConnectorRequest, ConnectorResult, parse_request

__all__ = [
    "BreakerPolicy",
    "CircuitBreaker",
    "Connector",
    "ConnectorRequest",
    "ConnectorResult",
    "ConnectorSecret",
    "Credentials",
    "Timeouts",
    "parse_request",
    "secret_name",
]
