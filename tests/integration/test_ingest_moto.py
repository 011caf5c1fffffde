"""The webhook-ingest handler on moto: bus, rule to an SQS queue, idempotency table,
documents bucket and signing secrets, invoked with API Gateway HTTP API events."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from aios.config import settings, variable
from aios.envelope import Envelope
from aios.events import WEBHOOK_SOURCE
from aios.idempotency import persistence_layer
from aios.secrets import WebhookSecret, webhook_secret_name
from aios.webhooks.adapters import EventBusPublisher
from aios.webhooks.ingest import default_ingestor
from infrastructure.platform import PLATFORM
from tests.integration.moto_env import fake_aws_environment
from tests.lambda_context import LambdaContext
from tests.unit.webhooks.webhook_fakes import api_event

STRIPE_SECRET = "whsec_integration_stripe"
STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BUS, TABLE, BUCKET = "aios", "aios-idempotency", "aios-documents"


CONTEXT = LambdaContext(function_name="webhook-ingest")


@dataclass
class Aws:
    queue_url: str
    sqs: Any
    s3: Any

    def received(self, wait: int = 0) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait
        )
        return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    for name, value in {
        **fake_aws_environment("us-east-1"),
        variable("event_bus_name"): BUS,
        variable("idempotency_table"): TABLE,
        variable("documents_bucket"): BUCKET,
        variable("secrets_prefix"): "aios",
        variable("service_name"): "webhook-ingest",
        variable("webhook_sources"): json.dumps({source.name: source.scheme for source in PLATFORM.sources}),
    }.items():
        monkeypatch.setenv(name, value)
    settings.cache_clear()
    persistence_layer.cache_clear()
    default_ingestor.cache_clear()
    with mock_aws():
        events = boto3.client("events")
        events.create_event_bus(Name=BUS)
        sqs = boto3.client("sqs")
        queue_url = sqs.create_queue(QueueName="observed")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_rule(
            Name="webhooks", EventBusName=BUS, EventPattern=json.dumps({"source": [WEBHOOK_SOURCE]})
        )
        events.put_targets(Rule="webhooks", EventBusName=BUS, Targets=[{"Id": "observe", "Arn": queue_arn}])
        boto3.client("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        secrets = boto3.client("secretsmanager")
        for source, secret in (("stripe", STRIPE_SECRET), ("standard", STANDARD_SECRET)):
            secrets.create_secret(
                Name=webhook_secret_name(source, "aios"),
                SecretString=WebhookSecret.model_validate({"current": secret}).to_json(),
            )
        yield Aws(queue_url=queue_url, sqs=sqs, s3=s3)
    settings.cache_clear()
    persistence_layer.cache_clear()
    default_ingestor.cache_clear()


def stripe_event(body: bytes, *, b64: bool = False) -> dict[str, Any]:
    ts = int(time.time())
    signature = hmac.new(STRIPE_SECRET.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return api_event("stripe", body, {"stripe-signature": f"t={ts},v1={signature}"}, b64=b64, epoch=ts)


def stripe_body(event_id: str, padding: int = 0) -> bytes:
    return json.dumps(
        {"id": event_id, "type": "invoice.paid", "data": {"object": {"id": "in_1", "pad": "x" * padding}}}
    ).encode()


def invoke(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    from functions.webhook_ingest.handler import handler  # noqa: PLC0415

    response = handler(event, CONTEXT)  # type: ignore[arg-type]
    return response["statusCode"], json.loads(response["body"])


def test_accepted_webhook_lands_on_the_bus(aws: Aws) -> None:
    status, body = invoke(stripe_event(stripe_body("evt_1")))

    assert (status, body["duplicate"]) == (202, False)
    [event] = aws.received()
    assert event["source"] == WEBHOOK_SOURCE
    assert event["detail-type"] == "invoice.paid"
    envelope = Envelope.model_validate(event["detail"])
    assert envelope.id == body["event_id"]
    assert envelope.deliveryid == "evt_1"
    assert envelope.data["data"]["object"]["id"] == "in_1"


def test_duplicate_delivery_puts_one_event_and_returns_the_same_id(aws: Aws) -> None:
    first_status, first = invoke(stripe_event(stripe_body("evt_dup")))
    second_status, second = invoke(stripe_event(stripe_body("evt_dup")))

    assert (first_status, second_status) == (202, 200)
    assert second == {"event_id": first["event_id"], "duplicate": True}
    assert len(aws.received()) == 1
    assert aws.received() == []


def test_one_mib_body_is_claim_checked_to_s3(aws: Aws) -> None:
    body = stripe_body("evt_big", padding=1024 * 1024)
    status, _ = invoke(stripe_event(body, b64=True))

    assert status == 202
    [event] = aws.received()
    envelope = Envelope.model_validate(event["detail"])
    assert envelope.data is None
    assert envelope.dataref is not None
    stored = aws.s3.get_object(Bucket=envelope.dataref.bucket, Key=envelope.dataref.key)["Body"].read()
    assert stored == body
    assert hashlib.sha256(stored).hexdigest() == envelope.dataref.sha256 == envelope.bodysha256


def test_failed_put_is_503_and_the_retry_after_recovery_succeeds(aws: Aws) -> None:
    publisher = default_ingestor().publisher
    assert isinstance(publisher, EventBusPublisher)
    with Stubber(publisher.client) as stubber:
        stubber.add_response(
            "put_events",
            {
                "FailedEntryCount": 1,
                "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}],
            },
        )
        status, body = invoke(stripe_event(stripe_body("evt_flaky")))
    assert (status, body) == (503, {"error": "temporarily_unavailable"})
    assert aws.received() == []

    status, body = invoke(stripe_event(stripe_body("evt_flaky")))
    assert (status, body["duplicate"]) == (202, False)
    assert len(aws.received()) == 1


def test_rejections_through_the_handler(aws: Aws) -> None:
    event = stripe_event(stripe_body("evt_bad"))
    event["headers"]["stripe-signature"] = "t=1,v1=00"
    assert invoke(event) == (401, {"error": "invalid_signature"})

    unknown = stripe_event(stripe_body("evt_x"))
    unknown.update(rawPath="/webhooks/paypal", pathParameters={"source": "paypal"})
    unknown["requestContext"]["http"]["path"] = "/webhooks/paypal"
    assert invoke(unknown) == (404, {"error": "unknown_source"})

    # a declared source whose secret was never created: the provider retries later
    github = stripe_event(b"{}")
    github.update(rawPath="/webhooks/github", pathParameters={"source": "github"})
    github["requestContext"]["http"]["path"] = "/webhooks/github"
    github["headers"] = {"x-hub-signature-256": "sha256=" + "0" * 64}
    assert invoke(github) == (503, {"error": "temporarily_unavailable"})
    assert aws.received() == []
