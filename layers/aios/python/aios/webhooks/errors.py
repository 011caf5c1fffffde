"""Why a webhook was not accepted, as typed errors the handler maps to HTTP responses.

Each error carries the public ``code`` (the response body's ``error``) and an internal
``detail`` for logs only. Responses never say which part of a signature check failed.
"""

from __future__ import annotations

from typing import ClassVar


class WebhookError(Exception):
    """Base of every webhook rejection. ``str(error)`` is the internal detail: log it, never
    return it."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.code)
        self.detail = detail or self.code


class UnknownSource(WebhookError):
    status_code = 404
    code = "unknown_source"


class InvalidSignature(WebhookError):
    """Missing, malformed, stale, future or wrong signature: the response never says which."""

    status_code = 401
    code = "invalid_signature"


class InvalidBody(WebhookError):
    """The signed body is not what the source sends (not JSON, no id or type)."""

    status_code = 400
    code = "invalid_body"


class PayloadTooLarge(WebhookError):
    status_code = 413
    code = "payload_too_large"


class DeliveryInProgress(WebhookError):
    """The same delivery is being processed by another invocation right now; the provider's
    retry will get the outcome."""

    status_code = 409
    code = "delivery_in_progress"


class TemporarilyUnavailable(WebhookError):
    """The bus, the idempotency store or the secret could not be reached. The only 5xx: the
    provider retries, and nothing was recorded as delivered."""

    status_code = 503
    code = "temporarily_unavailable"
