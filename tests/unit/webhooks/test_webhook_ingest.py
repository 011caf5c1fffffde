"""The ingest logic end to end with fakes: request -> verify -> envelope -> idempotent put."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aios import events
from aios.envelope import Envelope
from aios.secrets import WebhookSecret
from aios.webhooks.errors import (
    InvalidBody,
    InvalidSignature,
    PayloadTooLarge,
    TemporarilyUnavailable,
    UnknownSource,
    WebhookError,
)
from aios.webhooks.ingest import Outcome, Reply, WebhookIngestor, rejection
from aios.webhooks.request import MAX_BODY_BYTES, WebhookRequest
from tests.unit.webhooks.webhook_fakes import (
    NOW,
    STRIPE_SECRET,
    FakeDocuments,
    FakePublisher,
    FakeSecrets,
    InMemoryPersistenceLayer,
    api_event,
    github_body,
    signed,
    slack_body,
    standard_body,
    stripe_body,
    stripe_headers,
)

pytestmark = pytest.mark.filterwarnings("ignore:Couldn.t determine the remaining time")

BODIES = {"stripe": stripe_body, "github": github_body, "slack": slack_body, "standard": standard_body}


class World:
    def __init__(self, secrets: FakeSecrets | None = None) -> None:
        self.publisher = FakePublisher()
        self.documents = FakeDocuments()
        self.persistence = InMemoryPersistenceLayer()
        self.ingestor = WebhookIngestor(
            secrets=secrets or FakeSecrets(),
            publisher=self.publisher,
            documents=self.documents,
            persistence=self.persistence,
            clock=lambda: NOW,
        )

    def call(self, event: dict[str, Any]) -> Reply:
        """What the handler does: build the request, ingest, map a rejection."""
        try:
            return self.ingestor.ingest(WebhookRequest.from_api_gateway(event))
        except WebhookError as error:
            return rejection(error)


@pytest.fixture
def world() -> World:
    return World()


def detail_of(world: World, index: int = 0) -> dict[str, Any]:
    detail: dict[str, Any] = json.loads(world.publisher.entries[index].detail)
    return detail


@pytest.mark.parametrize("source", ["stripe", "github", "slack", "standard"])
def test_accepted_webhook_is_put_with_its_envelope(world: World, source: str) -> None:
    body = BODIES[source]()
    reply = world.call(api_event(source, body, signed(source, body)))

    assert reply.status_code == 202
    assert reply.body == {"event_id": reply.body["event_id"], "duplicate": False}
    [entry] = world.publisher.entries
    assert entry.source == events.WEBHOOK_SOURCE
    envelope = Envelope.model_validate_json(entry.detail)
    assert envelope.id == reply.body["event_id"]
    assert envelope.source == source
    assert envelope.type == entry.detail_type
    assert envelope.data == json.loads(body)
    assert envelope.dataref is None


def test_envelope_fields_for_stripe(world: World) -> None:
    body = stripe_body("evt_42")
    world.call(api_event("stripe", body, stripe_headers(body)))
    detail = detail_of(world)
    assert detail["type"] == "invoice.paid"
    assert detail["deliveryid"] == "evt_42"
    assert detail["subject"] == "in_1"
    assert detail["specversion"] == "1.0"
    assert len(detail["bodysha256"]) == 64


def test_repeated_delivery_returns_the_same_event_id_and_puts_once(world: World) -> None:
    body = stripe_body("evt_dup")
    first = world.call(api_event("stripe", body, stripe_headers(body)))
    # the provider retries with a new signature timestamp
    second = world.call(api_event("stripe", body, stripe_headers(body, ts=NOW - 60)))

    assert first.status_code == 202
    assert second.status_code == 200
    assert second.body == {"event_id": first.body["event_id"], "duplicate": True}
    assert second.outcome is Outcome.DUPLICATE
    assert len(world.publisher.entries) == 1


def test_same_delivery_id_from_another_source_is_not_a_duplicate(world: World) -> None:
    standard = standard_body()
    headers = signed("standard", standard)
    world.call(api_event("standard", standard, headers))
    github = github_body()
    reply = world.call(
        api_event("github", github, {**signed("github", github), "X-GitHub-Delivery": headers["webhook-id"]})
    )
    assert reply.status_code == 202
    assert len(world.publisher.entries) == 2


def test_failed_put_is_503_and_the_retry_publishes(world: World) -> None:
    body = stripe_body("evt_retry")
    world.publisher.failures = 1

    failed = world.call(api_event("stripe", body, stripe_headers(body)))
    assert failed.status_code == 503
    assert failed.body == {"error": "temporarily_unavailable"}
    assert world.persistence.records == {}  # nothing recorded as delivered

    retried = world.call(api_event("stripe", body, stripe_headers(body)))
    assert retried.status_code == 202
    assert retried.body["duplicate"] is False
    assert len(world.publisher.entries) == 1


def test_large_body_is_claim_checked(world: World) -> None:
    body = stripe_body("evt_big", size=1024 * 1024)
    reply = world.call(api_event("stripe", body, stripe_headers(body)))

    assert reply.status_code == 202
    envelope = Envelope.model_validate_json(world.publisher.entries[0].detail)
    assert envelope.data is None
    assert envelope.dataref is not None
    assert envelope.dataref.size == len(body)
    assert envelope.dataref.sha256 == envelope.bodysha256
    assert envelope.dataref.key == f"webhooks/stripe/2025/06/15/{envelope.id}.json"
    assert world.documents.objects[envelope.dataref.key] == body
    assert len(world.publisher.entries[0].detail) < 2048


def test_body_just_under_the_entry_limit_stays_inline(world: World) -> None:
    body = stripe_body("evt_edge", size=250 * 1024)
    world.call(api_event("stripe", body, stripe_headers(body)))
    assert world.documents.objects == {}
    assert len(world.publisher.entries[0].detail.encode()) < 256 * 1024


def test_slack_challenge_is_answered_without_an_event(world: World) -> None:
    body = json.dumps(
        {"type": "url_verification", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    )
    reply = world.call(api_event("slack", body.encode(), signed("slack", body.encode())))
    assert reply.status_code == 200
    assert reply.body == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    assert world.publisher.entries == []


def test_unsigned_slack_challenge_is_refused(world: World) -> None:
    body = b'{"type": "url_verification", "challenge": "x"}'
    assert world.call(api_event("slack", body, {})).status_code == 401


def test_base64_body_is_decoded_before_verification(world: World) -> None:
    body = stripe_body("evt_b64")
    reply = world.call(api_event("stripe", body, stripe_headers(body), b64=True))
    assert reply.status_code == 202
    assert Envelope.model_validate_json(world.publisher.entries[0].detail).data == json.loads(body)


@pytest.mark.parametrize(
    ("event_change", "status", "error"),
    [
        ({"pathParameters": {"source": "paypal"}}, 404, "unknown_source"),
        ({"pathParameters": {}}, 404, "unknown_source"),
        ({"headers": {}}, 401, "invalid_signature"),
        ({"body": "not base64!", "isBase64Encoded": True}, 400, "invalid_body"),
    ],
)
def test_rejections(world: World, event_change: dict[str, Any], status: int, error: str) -> None:
    body = stripe_body()
    event = {**api_event("stripe", body, stripe_headers(body)), **event_change}
    reply = world.call(event)
    assert (reply.status_code, reply.body) == (status, {"error": error})
    assert world.publisher.entries == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"id": "evt_1"}',
        b'{"id": "evt_1", "type": NaN}',
        b"\xff\xfe{}",
        b"[" * 100_000,
    ],
)
def test_signed_bodies_that_are_not_what_the_source_sends_are_400(world: World, body: bytes) -> None:
    event = api_event("stripe", b"", stripe_headers(body))
    event.update(body=base64.b64encode(body).decode(), isBase64Encoded=True)
    reply = world.call(event)
    assert (reply.status_code, reply.body) == (400, {"error": "invalid_body"})


def test_signature_is_checked_before_the_body_is_parsed(world: World) -> None:
    reply = world.call(api_event("stripe", b"not json", stripe_headers(b"other")))
    assert reply.status_code == 401


@pytest.mark.parametrize("b64", [False, True])
def test_body_over_the_limit_is_413(world: World, b64: bool) -> None:
    body = b"x" * (MAX_BODY_BYTES + 1)
    reply = world.call(api_event("stripe", body, stripe_headers(body), b64=b64))
    assert (reply.status_code, reply.body) == (413, {"error": "payload_too_large"})


def test_rotated_secret_previous_still_verifies() -> None:
    rotated = WebhookSecret.model_validate({"current": "whsec_new", "previous": STRIPE_SECRET})
    world = World(FakeSecrets({"stripe": rotated}))
    body = stripe_body("evt_rot")
    assert world.call(api_event("stripe", body, stripe_headers(body))).status_code == 202
    assert world.call(api_event("stripe", body, stripe_headers(body, "whsec_new"))).status_code == 200
    assert world.call(api_event("stripe", body, stripe_headers(body, "whsec_older"))).status_code == 401


def test_missing_secret_is_503_not_401() -> None:
    world = World(FakeSecrets({}))
    body = stripe_body()
    reply = world.call(api_event("stripe", body, stripe_headers(body)))
    assert (reply.status_code, reply.body) == (503, {"error": "temporarily_unavailable"})


def test_responses_carry_no_internals(world: World) -> None:
    for exc in (InvalidSignature("timestamp outside tolerance"), InvalidBody("x"), UnknownSource("y")):
        assert set(rejection(exc).body) == {"error"}
        assert "tolerance" not in json.dumps(rejection(exc).body)
    assert rejection(PayloadTooLarge()).status_code == 413
    assert rejection(TemporarilyUnavailable()).status_code == 503


def test_sources_must_name_known_schemes() -> None:
    with pytest.raises(ValueError, match="unknown webhook schemes"):
        WebhookIngestor(
            secrets=FakeSecrets(),
            publisher=FakePublisher(),
            documents=FakeDocuments(),
            persistence=InMemoryPersistenceLayer(),
            sources={"erp": "hmac-md5"},
        )


# -- property: bad input never yields a 5xx and is never accepted unsigned ---------------------

header_names = st.sampled_from(
    [
        "stripe-signature",
        "x-hub-signature-256",
        "x-github-delivery",
        "x-github-event",
        "x-slack-signature",
        "x-slack-request-timestamp",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "content-type",
        "X-Other",
    ]
)
header_values = st.one_of(
    st.text(max_size=80),
    st.just(str(NOW)),
    st.just(f"t={NOW},v1=" + "0" * 64),
    st.just("sha256=" + "a" * 64),
    st.just("v0=" + "b" * 64),
    st.just("v1,ZmFrZQ=="),
)
bodies = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda s: s.encode("utf-8", "surrogatepass"), st.text(max_size=200)),
    st.sampled_from([stripe_body(), github_body(), slack_body(), standard_body(), b"{}", b"null"]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    source=st.sampled_from(["stripe", "github", "slack", "standard", "unknown", ""]),
    headers=st.dictionaries(header_names, header_values, max_size=6),
    body=bodies,
    b64=st.booleans(),
)
def test_random_requests_never_5xx_and_never_accepted(
    world: World, source: str, headers: dict[str, str], body: bytes, b64: bool
) -> None:
    event = api_event(source or "x", b"", headers, b64=True)
    event["pathParameters"] = {"source": source}
    if b64:
        event["body"] = base64.b64encode(body).decode()
    else:
        event.update(body=body.decode("utf-8", "surrogateescape"), isBase64Encoded=False)

    reply = world.call(event)

    assert reply.status_code < 500
    assert reply.status_code in {400, 401, 404, 413}
    assert world.publisher.entries == []
