"""Webhook ingress logic: verify -> parse -> envelope -> claim-check -> idempotent put.

``WebhookIngestor.ingest`` takes a ``WebhookRequest`` and returns a ``Reply`` (status and
JSON body) or raises a ``WebhookError``; ``rejection`` turns that error into its ``Reply``.
Both count the outcome. Nothing here sees the raw Lambda event or a boto3 response.

Exactly-once towards the bus, per (source, delivery id): the idempotent call is the put
itself (Powertools ``idempotent_function``), and it returns the event id, so a repeated
delivery gets the first event id back and puts nothing. A failed put raises inside the
idempotent call, so Powertools deletes its in-progress record and the provider's retry
publishes afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any, Final, Protocol

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict

from aios import events
from aios.config import METRICS_NAMESPACE, settings, variable
from aios.envelope import Envelope
from aios.observability import logger, metrics
from aios.secrets import SecretUnavailable, WebhookSecret, WebhookSecrets
from aios.webhooks.adapters import BusEntry, DocumentSink, EventBusPublisher, EventPublisher, PublishFailed
from aios.webhooks.errors import (
    DeliveryInProgress,
    InvalidBody,
    TemporarilyUnavailable,
    UnknownSource,
    WebhookError,
)
from aios.webhooks.request import WebhookRequest
from aios.webhooks.schemes import SCHEMES, Challenge, Delivery, Scheme

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

#: ``{"<source>": "<scheme>", ...}`` as JSON, required in the deployed function.
#: Rendered from ``Platform.sources`` by the function helper.
WEBHOOK_SOURCES_ENV: Final = variable("webhook_sources")
DEFAULT_SOURCES: Final[Mapping[str, str]] = {name: name for name in SCHEMES}
#: How long a delivery id is remembered: past Stripe's 3-day retry window and manual redeliveries.
DEDUP_WINDOW_SECONDS: Final = 7 * 24 * 3600
IDEMPOTENCY_KEY_PREFIX: Final = "aios.webhooks.publish"
#: An EventBridge entry (source, detail-type, detail, time) is at most 256 KiB.
EVENTBRIDGE_ENTRY_LIMIT: Final = 256 * 1024
_ENTRY_TIME_BYTES: Final = 14


class SecretSource(Protocol):
    def get(self, source: str) -> WebhookSecret:
        """The signing secret of ``source``; ``SecretUnavailable`` when it cannot be used."""


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    CHALLENGE = "challenge"
    REJECTED = "rejected"


class Reply(BaseModel):
    """What to answer the provider: a status and a JSON body without internals."""

    model_config = ConfigDict(frozen=True)

    status_code: int
    body: dict[str, Any]
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class Prepared:
    """A verified, parsed delivery and its envelope (without ``data``: the raw JSON body is
    spliced in as ``data``, or claim-checked, when the entry is built)."""

    source: str
    delivery: Delivery
    envelope: Envelope
    body: bytes
    body_text: str
    content_type: str

    @property
    def claim_check(self) -> bool:
        return self.entry_size() > EVENTBRIDGE_ENTRY_LIMIT

    def entry_size(self) -> int:
        head = len(self.envelope.model_dump_json(exclude_none=True).encode("utf-8"))
        detail = head + len(',"data":') + len(self.body)
        return (
            len(events.WEBHOOK_SOURCE) + len(self.delivery.type.encode("utf-8")) + detail + _ENTRY_TIME_BYTES
        )

    def inline_detail(self) -> str:
        head = self.envelope.model_dump_json(exclude_none=True)
        return f'{head[:-1]},"data":{self.body_text}}}'

    def document_key(self) -> str:
        return f"webhooks/{self.source}/{self.envelope.receivedtime:%Y/%m/%d}/{self.envelope.id}.json"


def new_event_id() -> str:
    """A random (version 4) UUID string; about 4x cheaper than ``str(uuid.uuid4())``."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


#: Strict JSON: NaN and Infinity (which ``json`` accepts, EventBridge does not) are refused.
_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)


def _parse_json(body: bytes) -> tuple[str, dict[str, Any]]:
    try:
        text = body.decode("utf-8")
        payload = _DECODER.decode(text)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InvalidBody("body is not UTF-8 JSON") from None
    if not isinstance(payload, dict):
        raise InvalidBody("body is not a JSON object")
    return text, payload


def _replayed(response: Any, idempotent_data: DataRecord) -> Any:
    """Powertools calls this only for a response read back from the idempotency store."""
    return {**response, "duplicate": True} if isinstance(response, dict) else response


def _count(name: str) -> None:
    """One per invocation, flushed with the invocation's metrics (``log_metrics``)."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def _count_rejection(reason: str) -> None:
    """Rejections by reason: a metric of its own, so the reason is a dimension of it only."""
    with single_metric(
        name="WebhookRejectedByReason",
        unit=MetricUnit.Count,
        value=1,
        namespace=METRICS_NAMESPACE,
        default_dimensions={"reason": reason},
    ):
        pass


class WebhookIngestor:
    """Verifies, deduplicates and publishes webhooks for a set of sources."""

    def __init__(
        self,
        *,
        secrets: SecretSource,
        publisher: EventPublisher,
        documents: DocumentSink,
        persistence: BasePersistenceLayer,
        sources: Mapping[str, str] = DEFAULT_SOURCES,
        clock: Callable[[], float] = time.time,
        new_event_id: Callable[[], str] = new_event_id,
        dedup_window_seconds: int = DEDUP_WINDOW_SECONDS,
    ) -> None:
        unknown = set(sources.values()) - set(SCHEMES)
        if unknown:
            raise ValueError(f"unknown webhook schemes {sorted(unknown)}")
        self.sources = dict(sources)
        self.secrets = secrets
        self.publisher = publisher
        self.documents = documents
        self.clock = clock
        self.new_event_id = new_event_id
        self.idempotency = IdempotencyConfig(
            expires_after_seconds=dedup_window_seconds,
            raise_on_no_idempotency_key=True,
            response_hook=_replayed,
        )
        self._publish_once = idempotent_function(
            self._publish,
            data_keyword_argument="delivery",
            persistence_store=persistence,
            config=self.idempotency,
            key_prefix=IDEMPOTENCY_KEY_PREFIX,
        )

    # -- steps -----------------------------------------------------------------------------

    def scheme_of(self, source: str) -> Scheme:
        scheme = self.sources.get(source)
        if scheme is None:
            raise UnknownSource("source not declared")
        return SCHEMES[scheme]

    def keys_of(self, source: str, scheme: Scheme) -> list[bytes]:
        try:
            return [scheme.key(value) for value in self.secrets.get(source).values()]
        except (SecretUnavailable, ValueError) as error:
            logger.error("webhook secret unusable", extra={"source": source, "reason": str(error)})
            raise TemporarilyUnavailable("signing secret unavailable") from None

    def prepare(self, request: WebhookRequest, *, now: float | None = None) -> Prepared | Challenge:
        """Verify the raw body, then parse it and build the envelope. No AWS call but the
        (cached) secret read."""
        now = self.clock() if now is None else now
        scheme = self.scheme_of(request.source)
        keys = self.keys_of(request.source, scheme)
        signed_at = scheme.verify(request.headers, request.body, keys, now)
        text, payload = _parse_json(request.body)
        described = scheme.describe(request.headers, payload, signed_at)
        if isinstance(described, Challenge):
            return described
        received = datetime.fromtimestamp(now, UTC)
        envelope = Envelope(
            id=self.new_event_id(),
            source=request.source,
            type=described.type,
            time=described.time or received,
            subject=described.subject,
            deliveryid=described.delivery_id,
            receivedtime=received,
            bodysha256=hashlib.sha256(request.body).hexdigest(),
        )
        content_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
        return Prepared(
            source=request.source,
            delivery=described,
            envelope=envelope,
            body=request.body,
            body_text=text,
            content_type=content_type or "application/json",
        )

    def _publish(self, *, delivery: dict[str, str], prepared: Prepared) -> dict[str, Any]:
        """The idempotent step: claim-check if needed, put, and remember the event id."""
        if prepared.claim_check:
            try:
                ref = self.documents.put(
                    prepared.body, key=prepared.document_key(), content_type=prepared.content_type
                )
            except (BotoCoreError, ClientError) as error:
                raise PublishFailed(f"claim-check put failed ({type(error).__name__})") from None
            detail = prepared.envelope.model_copy(update={"dataref": ref}).model_dump_json(exclude_none=True)
        else:
            detail = prepared.inline_detail()
        self.publisher.put(
            BusEntry(source=events.WEBHOOK_SOURCE, detail_type=prepared.delivery.type, detail=detail)
        )
        return {"event_id": prepared.envelope.id, "duplicate": False}

    # -- the whole request ---------------------------------------------------------------------

    def ingest(self, request: WebhookRequest, *, lambda_context: LambdaContext | None = None) -> Reply:
        prepared = self.prepare(request)
        if isinstance(prepared, Challenge):
            _count("WebhookChallenge")
            return Reply(status_code=200, body={"challenge": prepared.challenge}, outcome=Outcome.CHALLENGE)
        if lambda_context is not None:
            # Bounds the in-progress record by this invocation's remaining time, so a timed-out
            # invocation does not block the provider's retry for the whole dedup window.
            self.idempotency.register_lambda_context(lambda_context)
        log = {"source": request.source, "delivery_id": prepared.delivery.delivery_id}
        try:
            result = self._publish_once(
                delivery={"source": request.source, "delivery_id": prepared.delivery.delivery_id},
                prepared=prepared,
            )
        except PublishFailed as error:
            logger.error("webhook not published", extra={**log, "reason": str(error)})
            raise TemporarilyUnavailable("publish failed") from None
        except IdempotencyAlreadyInProgressError:
            raise DeliveryInProgress("same delivery in progress") from None
        except IdempotencyPersistenceLayerError as error:
            logger.error("idempotency store unavailable", extra={**log, "reason": str(error)})
            raise TemporarilyUnavailable("idempotency store unavailable") from None
        event_id = str(result["event_id"])
        if result.get("duplicate"):
            logger.info("webhook duplicate", extra={**log, "event_id": event_id})
            _count("WebhookDuplicate")
            return Reply(
                status_code=200, body={"event_id": event_id, "duplicate": True}, outcome=Outcome.DUPLICATE
            )
        logger.info(
            "webhook accepted",
            extra={
                **log,
                "event_id": event_id,
                "type": prepared.delivery.type,
                "claim_check": prepared.claim_check,
            },
        )
        _count("WebhookAccepted")
        return Reply(
            status_code=202, body={"event_id": event_id, "duplicate": False}, outcome=Outcome.ACCEPTED
        )


def rejection(error: WebhookError, *, source: str = "") -> Reply:
    """The reply to a rejected request, logged (with the internal detail) and counted."""
    extra = {"source": source[:128], "reason": error.code, "detail": error.detail}
    if error.status_code >= 500:
        logger.warning("webhook not accepted, provider will retry", extra=extra)
    else:
        logger.info("webhook rejected", extra=extra)
    _count("WebhookRejected")
    _count_rejection(error.code)
    return Reply(status_code=error.status_code, body={"error": error.code}, outcome=Outcome.REJECTED)


def sources_from_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """The sources the platform description declares (set by CDK and the local mode)."""
    raw = environ.get(WEBHOOK_SOURCES_ENV)
    if not raw:
        raise RuntimeError(f"{WEBHOOK_SOURCES_ENV} is not set: the platform did not declare webhook sources")
    value = json.loads(raw)
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise RuntimeError(f"{WEBHOOK_SOURCES_ENV} is not a JSON object of source -> scheme")
    return {str(k): v for k, v in value.items()}


@cache
def default_ingestor() -> WebhookIngestor:
    """The ingestor of this process, wired from the settings (created on first use)."""
    from aios.documents import DocumentStore  # noqa: PLC0415
    from aios.idempotency import persistence_layer  # noqa: PLC0415

    config = settings()
    return WebhookIngestor(
        secrets=WebhookSecrets(prefix=config.secrets_prefix),
        publisher=EventBusPublisher(config.require("event_bus_name")),
        documents=DocumentStore(config.require("documents_bucket")),
        persistence=persistence_layer("webhook-ingest"),
        sources=sources_from_environ(os.environ),
    )
