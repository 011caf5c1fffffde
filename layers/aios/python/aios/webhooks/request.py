"""The inbound webhook request, built from an API Gateway HTTP API (payload 2.0) event.

Header names are lower-cased (HTTP header names are case-insensitive; API Gateway already
lower-cases them, other callers may not). The body is the exact bytes the provider signed:
a base64-encoded body (``isBase64Encoded``) is decoded first, a text body is UTF-8 encoded.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field

from aios.webhooks.errors import InvalidBody, PayloadTooLarge, UnknownSource

#: Largest raw body accepted. A Lambda synchronous request is at most 6 MB in all; a body
#: that API Gateway base64-encodes grows by 4/3, so 4 MiB raw (5.33 MiB encoded) leaves
#: room for headers and request context. Providers send far less (Stripe and GitHub cap
#: their payloads at 25 MB / a few hundred KiB in practice; Slack at 3 MiB).
MAX_BODY_BYTES: Final = 4 * 1024 * 1024
_MAX_SOURCE_CHARS: Final = 128


class WebhookRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: Annotated[str, Field(min_length=1, max_length=_MAX_SOURCE_CHARS)]
    #: Lower-cased names; a repeated header arrives comma-joined (API Gateway 2.0).
    headers: Mapping[str, str]
    body: bytes

    @classmethod
    def from_api_gateway(
        cls, event: Mapping[str, Any], *, source: str | None = None, max_body_bytes: int = MAX_BODY_BYTES
    ) -> WebhookRequest:
        """``source`` defaults to the ``source`` path parameter of the route."""
        if source is None:
            source = str((event.get("pathParameters") or {}).get("source") or "")
        if not 0 < len(source) <= _MAX_SOURCE_CHARS:
            raise UnknownSource("no source in the path")
        raw_headers = event.get("headers") or {}
        headers = {str(name).lower(): value for name, value in raw_headers.items() if isinstance(value, str)}
        text = event.get("body") or ""
        if not isinstance(text, str):
            raise InvalidBody("body is not a string")
        if event.get("isBase64Encoded"):
            if len(text) > (max_body_bytes + 2) // 3 * 4:
                raise PayloadTooLarge("encoded body over the limit")
            try:
                body = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidBody("body is not valid base64") from None
        else:
            if len(text) > max_body_bytes:  # each character is at least one byte
                raise PayloadTooLarge("body over the limit")
            try:
                body = text.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidBody("body is not encodable as UTF-8") from None
        if len(body) > max_body_bytes:
            raise PayloadTooLarge("body over the limit")
        return cls(source=source, headers=headers, body=body)
