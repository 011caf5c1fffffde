"""One verifier per signature scheme, each as its provider documents it, and a registry.

Verifiers are pure: ``(headers, raw body, keys, now) -> signed timestamp | None``, raising
``InvalidSignature`` for anything short of a valid signature. Header names are lower-case
(``WebhookRequest`` normalises them). Every comparison is constant-time
(``hmac.compare_digest``); a request may carry several signatures and any of several keys
(current and previous, during a rotation) may verify it.

After verification, ``describe`` reads the delivery id and event type the provider sends,
from the headers or the parsed body, into a ``Delivery`` (or a Slack ``Challenge``).

References:
- Stripe: https://docs.stripe.com/webhooks#verify-manually
- GitHub: https://docs.github.com/webhooks/using-webhooks/validating-webhook-deliveries
- Slack: https://api.slack.com/authentication/verifying-requests-from-slack
- Standard Webhooks: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aios.webhooks.errors import InvalidBody, InvalidSignature

Headers = Mapping[str, str]

#: Replay window of the timestamped schemes, in both directions (stale and future).
DEFAULT_TOLERANCE_SECONDS: Final = 300
_MAX_TIMESTAMP_DIGITS: Final = 12


class Delivery(BaseModel):
    """What the provider says about one delivery: its id (the dedup key) and event type."""

    model_config = ConfigDict(frozen=True)

    delivery_id: Annotated[str, Field(min_length=1, max_length=256)]
    #: Becomes the EventBridge DetailType, which allows at most 128 characters.
    type: Annotated[str, Field(min_length=1, max_length=128)]
    subject: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    time: datetime | None = None


class Challenge(BaseModel):
    """A Slack ``url_verification`` request: answer with the challenge, put no event."""

    model_config = ConfigDict(frozen=True)

    challenge: Annotated[str, Field(min_length=1, max_length=1024)]


Verifier = Callable[[Headers, bytes, Sequence[bytes], float], "int | None"]
Describer = Callable[[Headers, Mapping[str, Any], "int | None"], "Delivery | Challenge"]


@dataclass(frozen=True, slots=True)
class Scheme:
    """A signature scheme: how to turn a stored secret into a key, verify, and describe."""

    name: str
    key: Callable[[str], bytes]
    verify: Verifier
    describe: Describer


# -- helpers -----------------------------------------------------------------------------


def _header(headers: Headers, name: str) -> str:
    value = headers.get(name)
    if not value:
        raise InvalidSignature(f"missing header {name}")
    return value


def _timestamp(value: str, now: float, tolerance: int) -> int:
    value = value.strip()
    if not (value.isascii() and value.isdigit() and len(value) <= _MAX_TIMESTAMP_DIGITS):
        raise InvalidSignature("malformed timestamp")
    timestamp = int(value)
    if abs(now - timestamp) > tolerance:
        raise InvalidSignature("timestamp outside tolerance")
    return timestamp


def _same(expected: str, candidate: str) -> bool:
    return hmac.compare_digest(expected.encode("ascii"), candidate.encode("utf-8", "surrogatepass"))


def _any_match(
    keys: Sequence[bytes], message: bytes, candidates: Sequence[str], *, b64: bool = False
) -> bool:
    matched = False
    for key in keys:
        digest = hmac.new(key, message, hashlib.sha256).digest()
        expected = base64.b64encode(digest).decode("ascii") if b64 else digest.hex()
        for candidate in candidates:
            # No early exit: the work done does not depend on which candidate matched.
            matched |= _same(expected, candidate)
    return matched


def _utf8_key(secret: str) -> bytes:
    return secret.encode("utf-8")


def _epoch(value: object) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 1e11:
        return datetime.fromtimestamp(value, UTC)
    return None


def _describe(delivery_id: object, event_type: object, **extra: Any) -> Delivery:
    if not isinstance(delivery_id, str) or not isinstance(event_type, str):
        raise InvalidBody("delivery id or event type missing")
    try:
        return Delivery(delivery_id=delivery_id, type=event_type, **extra)
    except ValidationError:
        raise InvalidBody("delivery id or event type out of bounds") from None


# -- Stripe --------------------------------------------------------------------------------


def verify_stripe(
    headers: Headers,
    body: bytes,
    keys: Sequence[bytes],
    now: float,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> int:
    """``Stripe-Signature: t=<ts>,v1=<hex>[,v1=<hex>...]``; HMAC-SHA256 over ``{t}.{body}``."""
    timestamp_text: str | None = None
    signatures: list[str] = []
    for item in _header(headers, "stripe-signature").split(","):
        name, _, value = item.strip().partition("=")
        if name == "t" and timestamp_text is None:
            timestamp_text = value
        elif name == "v1":
            signatures.append(value)
    if timestamp_text is None or not signatures:
        raise InvalidSignature("no timestamp or no v1 signature")
    timestamp = _timestamp(timestamp_text, now, tolerance)
    if not _any_match(keys, timestamp_text.strip().encode("ascii") + b"." + body, signatures):
        raise InvalidSignature("no signature matches")
    return timestamp


def describe_stripe(headers: Headers, payload: Mapping[str, Any], timestamp: int | None) -> Delivery:
    obj = payload.get("data", {}).get("object") if isinstance(payload.get("data"), dict) else None
    subject = obj.get("id") if isinstance(obj, dict) and isinstance(obj.get("id"), str) else None
    return _describe(
        payload.get("id"), payload.get("type"), subject=subject, time=_epoch(payload.get("created"))
    )


# -- GitHub --------------------------------------------------------------------------------


def verify_github(headers: Headers, body: bytes, keys: Sequence[bytes], now: float) -> None:
    """``X-Hub-Signature-256: sha256=<hex>`` over the raw body. GitHub signs no timestamp."""
    scheme, _, signature = _header(headers, "x-hub-signature-256").strip().partition("=")
    if scheme != "sha256" or not signature:
        raise InvalidSignature("not a sha256 signature")
    if not _any_match(keys, body, [signature]):
        raise InvalidSignature("no signature matches")


def describe_github(headers: Headers, payload: Mapping[str, Any], timestamp: int | None) -> Delivery:
    return _describe(headers.get("x-github-delivery"), headers.get("x-github-event"))


# -- Slack (Events API) ----------------------------------------------------------------------


def verify_slack(
    headers: Headers,
    body: bytes,
    keys: Sequence[bytes],
    now: float,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> int:
    """``X-Slack-Signature: v0=<hex>`` over ``v0:{X-Slack-Request-Timestamp}:{body}``."""
    timestamp_text = _header(headers, "x-slack-request-timestamp").strip()
    version, _, signature = _header(headers, "x-slack-signature").strip().partition("=")
    timestamp = _timestamp(timestamp_text, now, tolerance)
    if version != "v0" or not signature:
        raise InvalidSignature("not a v0 signature")
    if not _any_match(keys, b"v0:" + timestamp_text.encode("ascii") + b":" + body, [signature]):
        raise InvalidSignature("no signature matches")
    return timestamp


def describe_slack(
    headers: Headers, payload: Mapping[str, Any], timestamp: int | None
) -> Delivery | Challenge:
    kind = payload.get("type")
    if kind == "url_verification":
        try:
            return Challenge(challenge=payload.get("challenge"))
        except ValidationError:
            raise InvalidBody("url_verification without a challenge") from None
    if kind != "event_callback":
        raise InvalidBody("not an event_callback")
    event = payload.get("event")
    event_type = event.get("type") if isinstance(event, dict) else None
    return _describe(payload.get("event_id"), event_type, time=_epoch(payload.get("event_time")))


# -- Standard Webhooks -----------------------------------------------------------------------


def standard_key(secret: str) -> bytes:
    """``whsec_<base64>``: the key is the base64-decoded part after the prefix."""
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a Standard Webhooks secret is whsec_ followed by base64") from None


def verify_standard(
    headers: Headers,
    body: bytes,
    keys: Sequence[bytes],
    now: float,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> int:
    """``webhook-signature: v1,<base64> [v1,<base64> ...]`` over ``{id}.{timestamp}.{body}``."""
    message_id = _header(headers, "webhook-id")
    timestamp_text = _header(headers, "webhook-timestamp").strip()
    signatures = [
        value
        for version, _, value in (
            entry.partition(",") for entry in _header(headers, "webhook-signature").split()
        )
        if version == "v1" and value
    ]
    timestamp = _timestamp(timestamp_text, now, tolerance)
    if not signatures:
        raise InvalidSignature("no v1 signature")
    signed = f"{message_id}.{timestamp_text}.".encode("utf-8", "surrogatepass") + body
    if not _any_match(keys, signed, signatures, b64=True):
        raise InvalidSignature("no signature matches")
    return timestamp


def describe_standard(headers: Headers, payload: Mapping[str, Any], timestamp: int | None) -> Delivery:
    return _describe(headers.get("webhook-id"), payload.get("type"), time=_epoch(timestamp))


SCHEMES: Final[Mapping[str, Scheme]] = {
    "stripe": Scheme("stripe", _utf8_key, verify_stripe, describe_stripe),
    "github": Scheme("github", _utf8_key, verify_github, describe_github),
    "slack": Scheme("slack", _utf8_key, verify_slack, describe_slack),
    "standard": Scheme("standard", standard_key, verify_standard, describe_standard),
}
