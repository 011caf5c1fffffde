"""Intake never loses an accepted event: a step that fails after its retries dead-letters it.

The intake ASL, with the local mode's substitutions, runs on moto's interpreter (in-process,
no Lambda involved). The lineage table is missing or the bus is gone, so a step fails after
its retries; the event must then be on the platform's dead-letter queue, with the error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infrastructure.local.deploy import LocalNames, definition
from infrastructure.ops.dlq import DeadLetter, letter
from infrastructure.platform import PLATFORM
from tests.integration.moto_env import fake_aws_environment

NAMES = LocalNames()
INTAKE = PLATFORM.workflow("intake")
EVENT = {
    "version": "0",
    "id": "evt-1",
    "source": "aios.webhooks",
    "detail-type": "invoice.received",
    "detail": {
        "id": "evt-1",
        "source": "standard",
        "type": "invoice.received",
        "deliveryid": "msg_1",
        "bodysha256": "ab" * 32,
        "receivedtime": "2026-12-01T21:30:22.055Z",
        "data": {"data": {"invoice_id": "INV-1", "system": "erp"}},
    },
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for name, value in fake_aws_environment(NAMES.region).items():
        monkeypatch.setenv(name, value)
    config = {"stepfunctions": {"execute_state_machine": True}}
    with mock_aws(config=config):  # type: ignore[call-overload]
        clients: dict[str, Any] = {
            service: boto3.client(service, region_name=NAMES.region)
            for service in ("stepfunctions", "sqs", "dynamodb", "events", "iam")
        }
        clients["sqs"].create_queue(QueueName=NAMES.dead_letter_queue)
        yield clients


def run_intake(aws: dict[str, Any]) -> dict[str, Any]:
    machine = aws["stepfunctions"].create_state_machine(
        name=NAMES.state_machine("intake"),
        # The same ASL; Standard so that moto keeps its history for the assertions.
        definition=definition(PLATFORM, INTAKE, NAMES).replace('"MaxAttempts": 5', '"MaxAttempts": 1'),
        roleArn=NAMES.role_arn,
    )
    execution = aws["stepfunctions"].start_execution(
        stateMachineArn=machine["stateMachineArn"], input=json.dumps(EVENT)
    )
    deadline = time.monotonic() + 30
    while True:
        described: dict[str, Any] = aws["stepfunctions"].describe_execution(
            executionArn=execution["executionArn"]
        )
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.05)


def dead_letters(aws: dict[str, Any]) -> list[DeadLetter]:
    url = aws["sqs"].get_queue_url(QueueName=NAMES.dead_letter_queue)["QueueUrl"]
    received = aws["sqs"].receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
    )
    return [letter(message) for message in received.get("Messages", [])]


def test_intake_declares_the_dead_letter_queue() -> None:
    assert INTAKE.dead_letters
    assert "DeadLetterQueueUrl" in INTAKE.referenced_substitutions()
    assert PLATFORM.substitutions(INTAKE)["DeadLetterQueueUrl"].kind == "queue"


def test_a_receipt_the_lineage_table_refuses_is_dead_lettered(aws: dict[str, Any]) -> None:
    # Given no lineage table (every write fails), When intake runs
    described = run_intake(aws)

    # Then the execution fails, and the accepted event is on the dead-letter queue with the error
    assert described["status"] == "FAILED"
    # ... as EventBridge dead-letters a delivery, so `aios dlq redrive` starts intake again
    [dead] = dead_letters(aws)
    assert json.loads(dead.body) == EVENT
    assert dead.target_arn == described["stateMachineArn"]
    assert dead.target_kind == "workflow"
    assert (dead.error_code or "").startswith("DynamoDB.")
    assert dead.error_message == f"intake execution {described['executionArn']} failed"
    assert dead.event_id == "evt-1"


def test_an_invoice_the_bus_refuses_is_recorded_failed_and_dead_lettered(aws: dict[str, Any]) -> None:
    # Given the lineage table but no event bus (Invoice Received cannot be put)
    aws["dynamodb"].create_table(
        TableName=NAMES.table("lineage"),
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )

    # When intake runs
    described = run_intake(aws)

    # Then lineage holds the receipt and a failure row naming the error, and the event is dead-lettered
    assert described["status"] == "FAILED"
    rows = aws["dynamodb"].scan(TableName=NAMES.table("lineage"))["Items"]
    outcomes = sorted(row["outcome"]["S"] for row in rows)
    assert outcomes == ["failed", "received"]
    [failed] = [row for row in rows if row["outcome"]["S"] == "failed"]
    assert failed["business_key"]["S"] == "erp:INV-1"
    assert failed["error"]["S"]
    [dead] = dead_letters(aws)
    assert json.loads(dead.body)["detail"]["deliveryid"] == "msg_1"
    assert dead.error_code
