"""Responses and transport failures mapped to the connector error taxonomy, in one place.

=================================================  =========================
What happened                                      Error (``ErrorEquals``)
=================================================  =========================
HTTP 429, Slack ``ratelimited``                    ``Connector.Throttled``
HTTP 5xx, 408, timeout, connection/protocol error  ``Connector.Unavailable``
Slack ``internal_error``/``fatal_error``/...       ``Connector.Unavailable``
HTTP 401/403, Slack ``invalid_auth``/...           ``Connector.AuthFailed``
other 4xx, 3xx, other Slack ``ok: false``          ``Connector.Rejected``
2xx whose body breaks the contract                 ``Connector.Rejected``
SES/AWS throttling / 5xx / access denied / other   Throttled/Unavailable/AuthFailed/Rejected
breaker open                                       ``Connector.CircuitOpen``
=================================================  =========================

Messages name the connector, operation, target and status, and at most the provider's
machine-readable error code (``card_declined``, ``channel_not_found``): never a body, a
provider's free-text message (which may quote personal data), a header or a credential.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, NoReturn

import httpx

from aios.errors import (
    ConnectorAuthFailed,
    ConnectorError,
    ConnectorRejected,
    ConnectorThrottled,
    ConnectorUnavailable,
)

_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")

SLACK_AUTH_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive", "no_permission"}
)
SLACK_TRANSIENT_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


class CallContext:
    """Who called what: the parts every error message names."""

    __slots__ = ("connector", "operation", "target")

    def __init__(self, *, connector: str, operation: str, target: str) -> None:
        self.connector = connector
        self.operation = operation
        self.target = target

    def describe(self, detail: str) -> str:
        return f"{self.connector} {self.operation} -> {self.target}: {detail}"


def safe_code(value: object) -> str | None:
    """A provider's error code if it looks like one (short identifier), else ``None``."""
    return value if isinstance(value, str) and _CODE.fullmatch(value) else None


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def _provider_code(response: httpx.Response) -> str | None:
    """The error code in a JSON error body: Stripe ``{"error": {"type", "code"}}``, Slack
    ``{"error": "..."}`` or a generic ``{"code": ...}``. Nothing else of the body is kept."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict):
        parts = [safe_code(error.get("type")), safe_code(error.get("code"))]
        return "/".join(p for p in parts if p) or None
    return safe_code(error) or safe_code(body.get("code"))


def raise_for_status(response: httpx.Response, context: CallContext) -> None:
    """Raise the taxonomy's error for a non-2xx ``response``; return for a 2xx."""
    status = response.status_code
    if 200 <= status < 300:
        return
    code = _provider_code(response)
    detail = f"HTTP {status}" + (f" ({code})" if code else "")
    if status == 429:
        after = retry_after_seconds(response.headers.get("Retry-After"))
        suffix = f", retry after {after:g}s" if after is not None else ""
        raise ConnectorThrottled(
            context.describe(detail + suffix),
            retry_after_seconds=after,
            connector=context.connector,
            target=context.target,
        )
    if status >= 500 or status == 408:
        raise ConnectorUnavailable(
            context.describe(detail), connector=context.connector, target=context.target
        )
    if status in (401, 403):
        raise ConnectorAuthFailed(
            context.describe(detail), connector=context.connector, target=context.target
        )
    raise ConnectorRejected(context.describe(detail), connector=context.connector, target=context.target)


def raise_for_transport(error: httpx.HTTPError, context: CallContext) -> NoReturn:
    """Timeouts and connection failures: transient, the target may recover."""
    if isinstance(error, httpx.TimeoutException):
        raise ConnectorUnavailable(
            context.describe(f"timed out ({type(error).__name__})"),
            connector=context.connector,
            target=context.target,
        ) from None
    raise ConnectorUnavailable(
        context.describe(f"transport error ({type(error).__name__})"),
        connector=context.connector,
        target=context.target,
    ) from None


def json_body(response: httpx.Response, context: CallContext) -> dict[str, Any]:
    """The response's JSON object, or ``Connector.Rejected`` if it is not one."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        content_type = response.headers.get("content-type", "none").split(";")[0]
        raise ConnectorRejected(
            context.describe(
                f"invalid response: HTTP {response.status_code}, not a JSON object ({content_type})"
            ),
            connector=context.connector,
            target=context.target,
        )
    return body


def invalid_response(context: CallContext, fields: list[str]) -> ConnectorRejected:
    """The error for a JSON body that does not match the response model (fields named, not values)."""
    return ConnectorRejected(
        context.describe(f"invalid response: fields {sorted(set(fields))[:10]} missing or malformed"),
        connector=context.connector,
        target=context.target,
    )


def raise_for_slack(body: dict[str, Any], response: httpx.Response, context: CallContext) -> None:
    """Slack answers HTTP 200 with ``{"ok": false, "error": "..."}``; map that like a status."""
    if body.get("ok") is True:
        return
    code = safe_code(body.get("error")) or "unknown_error"
    message = context.describe(f"Slack error {code}")
    if code == "ratelimited":
        after = retry_after_seconds(response.headers.get("Retry-After"))
        raise ConnectorThrottled(
            message, retry_after_seconds=after, connector=context.connector, target=context.target
        )
    if code in SLACK_AUTH_ERRORS:
        raise ConnectorAuthFailed(message, connector=context.connector, target=context.target)
    if code in SLACK_TRANSIENT_ERRORS:
        raise ConnectorUnavailable(message, connector=context.connector, target=context.target)
    raise ConnectorRejected(message, connector=context.connector, target=context.target)


#: AWS error codes (botocore ``ClientError``) by the taxonomy class they map to.
_AWS_THROTTLING = frozenset(
    {"Throttling", "ThrottlingException", "TooManyRequestsException", "LimitExceededException", "SlowDown"}
)
_AWS_AUTH = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "SignatureDoesNotMatch",
    }
)


def aws_error(code: str, status: int, context: CallContext) -> ConnectorError:
    """The taxonomy's error for an AWS API error (SES, S3) with ``code`` and HTTP ``status``."""
    message = context.describe(f"AWS {safe_code(code) or 'error'} (HTTP {status})")
    if code in _AWS_THROTTLING or status == 429:
        return ConnectorThrottled(message, connector=context.connector, target=context.target)
    if code in _AWS_AUTH or status in (401, 403):
        return ConnectorAuthFailed(message, connector=context.connector, target=context.target)
    if status >= 500 or code in {"ServiceUnavailable", "InternalFailure", "InternalError"}:
        return ConnectorUnavailable(message, connector=context.connector, target=context.target)
    return ConnectorRejected(message, connector=context.connector, target=context.target)


def json_dumps(value: Any) -> str:
    """Compact JSON for request bodies."""
    return json.dumps(value, separators=(",", ":"), default=str)
