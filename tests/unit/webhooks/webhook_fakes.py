"""Signers, fakes and event builders for the webhook tests (no sockets, no AWS)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from aios.envelope import DocumentRef
from aios.secrets import SecretUnavailable, WebhookSecret
from aios.webhooks.adapters import BusEntry, PublishFailed

NOW = 1_750_000_000
STRIPE_SECRET = "whsec_stripe_test_secret"
GITHUB_SECRET = "It's a Secret to Everybody"
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SECRETS = {
    "stripe": STRIPE_SECRET,
    "github": GITHUB_SECRET,
    "slack": SLACK_SECRET,
    "standard": STANDARD_SECRET,
}


def _hex(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def stripe_headers(body: bytes, secret: str = STRIPE_SECRET, ts: int = NOW) -> dict[str, str]:
    return {"Stripe-Signature": f"t={ts},v1={_hex(secret.encode(), f'{ts}.'.encode() + body)}"}


def github_headers(
    body: bytes, secret: str = GITHUB_SECRET, delivery: str = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
) -> dict[str, str]:
    return {
        "X-Hub-Signature-256": f"sha256={_hex(secret.encode(), body)}",
        "X-GitHub-Delivery": delivery,
        "X-GitHub-Event": "issues",
    }


def slack_headers(body: bytes, secret: str = SLACK_SECRET, ts: int = NOW) -> dict[str, str]:
    return {
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": f"v0={_hex(secret.encode(), f'v0:{ts}:'.encode() + body)}",
    }


def standard_signature(body: bytes, secret: str, msg_id: str, ts: int) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def standard_headers(
    body: bytes, secret: str = STANDARD_SECRET, msg_id: str = "msg_p5jXN8AQM9LWM0D4loKWxJek", ts: int = NOW
) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": standard_signature(body, secret, msg_id, ts),
    }


def stripe_body(event_id: str = "evt_1", size: int = 0) -> bytes:
    event: dict[str, Any] = {
        "id": event_id,
        "object": "event",
        "type": "invoice.paid",
        "created": NOW - 5,
        "data": {"object": {"id": "in_1", "object": "invoice", "memo": "x" * size}},
    }
    return json.dumps(event).encode()


def slack_body(event_id: str = "Ev1") -> bytes:
    return json.dumps(
        {
            "type": "event_callback",
            "event_id": event_id,
            "event_time": NOW - 1,
            "event": {"type": "message", "channel": "C1", "text": "hi"},
        }
    ).encode()


def standard_body(kind: str = "invoice.created") -> bytes:
    return json.dumps(
        {"type": kind, "timestamp": "2025-06-15T15:06:40Z", "data": {"id": "INV-1001"}}
    ).encode()


def github_body() -> bytes:
    return json.dumps({"action": "opened", "issue": {"number": 1}}).encode()


def signed(source: str, body: bytes, secret: str | None = None) -> dict[str, str]:
    """Headers a provider would send for ``body`` at ``NOW``."""
    secret = secret or SECRETS[source]
    return {
        "stripe": stripe_headers,
        "github": github_headers,
        "slack": slack_headers,
        "standard": standard_headers,
    }[source](body, secret)


def http_api_event(
    route_key: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    *,
    path_parameters: dict[str, str] | None = None,
    b64: bool = False,
    epoch: int = NOW,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event: ``POST`` to ``path`` on ``route_key``
    (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html)."""
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", **{k.lower(): v for k, v in headers.items()}},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {
                "method": "POST",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "test",
            },
            "requestId": "req-1",
            "routeKey": route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(epoch)),
            "timeEpoch": epoch * 1000,
        },
        "body": base64.b64encode(body).decode() if b64 else body.decode(),
        "isBase64Encoded": b64,
    }
    if path_parameters is not None:
        event["pathParameters"] = path_parameters
    return event


def api_event(
    source: str, body: bytes, headers: dict[str, str], *, b64: bool = False, epoch: int = NOW
) -> dict[str, Any]:
    """The event of ``POST /webhooks/{source}``."""
    return http_api_event(
        "POST /webhooks/{source}",
        f"/webhooks/{source}",
        body,
        headers,
        path_parameters={"source": source},
        b64=b64,
        epoch=epoch,
    )


class FakeSecrets:
    def __init__(self, secrets: dict[str, WebhookSecret] | None = None) -> None:
        if secrets is None:
            secrets = {name: WebhookSecret.model_validate({"current": v}) for name, v in SECRETS.items()}
        self.secrets = secrets

    def get(self, source: str) -> WebhookSecret:
        try:
            return self.secrets[source]
        except KeyError:
            raise SecretUnavailable(source) from None


class FakePublisher:
    def __init__(self) -> None:
        self.entries: list[BusEntry] = []
        self.failures = 0

    def put(self, entry: BusEntry) -> None:
        if self.failures:
            self.failures -= 1
            raise PublishFailed("FailedEntryCount 1 (ThrottlingException)")
        self.entries.append(entry)


class FakeDocuments:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, body: bytes, *, key: str, content_type: str = "application/json") -> DocumentRef:
        self.objects[key] = body
        return DocumentRef(
            bucket="documents", key=key, sha256=hashlib.sha256(body).hexdigest(), size=len(body)
        )


class InMemoryPersistenceLayer(BasePersistenceLayer):
    """Powertools' persistence contract on a dict (conditional put, update, delete)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[str, DataRecord] = {}

    def _get_record(self, idempotency_key: str) -> DataRecord:
        try:
            return self.records[idempotency_key]
        except KeyError:
            raise IdempotencyItemNotFoundError from None

    def _put_record(self, data_record: DataRecord) -> None:
        existing = self.records.get(data_record.idempotency_key)
        if existing is not None and not existing.is_expired:
            raise IdempotencyItemAlreadyExistsError(old_data_record=existing)
        self.records[data_record.idempotency_key] = data_record

    def _update_record(self, data_record: DataRecord) -> None:
        self.records[data_record.idempotency_key] = data_record

    def _delete_record(self, data_record: DataRecord) -> None:
        self.records.pop(data_record.idempotency_key, None)
