"""Webhook to lineage on the local mode: signed deliveries reach intake, unsigned ones nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from infrastructure.local.harness import LocalProcess, invoice_webhook, sign_standard
from tests.e2e.conftest import STANDARD_SECRET, eventually, start_local


@pytest.fixture(scope="module")
def local() -> Iterator[LocalProcess]:
    yield from start_local()


def test_signed_invoice_webhook_ends_in_a_succeeded_intake_and_a_lineage_row(local: LocalProcess) -> None:
    # Given a Standard Webhooks invoice.received delivery signed with the source's secret
    body = invoice_webhook("INV-1001")
    headers = sign_standard(STANDARD_SECRET, body)

    # When it is posted to the HTTP API
    status, _, reply = local.request("POST", "/webhooks/standard", body, headers)

    # Then it is accepted, intake succeeds and lineage holds the receipt under its business key
    assert status == 202, reply
    event_id = json.loads(reply)["event_id"]
    rows = eventually(lambda: local.lineage("erp:INV-1001"))
    assert rows[0]["event_id"] == event_id
    assert rows[0]["outcome"] == "received"
    assert rows[0]["delivery_id"] == headers["webhook-id"]
    execution_arn = rows[0]["pk"]
    described = eventually(
        lambda: (
            (d := local.client("stepfunctions").describe_execution(executionArn=execution_arn))["status"]
            == "SUCCEEDED"
            and d
        )
    )
    assert described["stateMachineArn"].endswith(":aios-local-intake")


def test_the_same_delivery_again_is_a_duplicate(local: LocalProcess) -> None:
    body = invoice_webhook("INV-1002")
    headers = sign_standard(STANDARD_SECRET, body)
    first = local.request("POST", "/webhooks/standard", body, headers)
    second = local.request("POST", "/webhooks/standard", body, headers)
    assert first[0] == 202
    assert second[0] == 200
    assert json.loads(second[2]) == {"event_id": json.loads(first[2])["event_id"], "duplicate": True}


def test_unsigned_webhook_is_rejected_and_starts_nothing(local: LocalProcess) -> None:
    # Given the number of intake executions so far
    before = len(local.executions("intake"))
    body = invoice_webhook("INV-UNSIGNED")

    # When a delivery without a signature arrives
    status, _, reply = local.request("POST", "/webhooks/standard", body, {"content-type": "application/json"})

    # Then it is refused and no workflow starts for it
    assert status == 401, reply
    assert local.lineage("erp:INV-UNSIGNED") == []
    time.sleep(0.5)  # what it would have started has had time to start
    assert len(local.executions("intake")) == before


def test_unknown_route_answers_like_api_gateway(local: LocalProcess) -> None:
    status, _, reply = local.request("GET", "/nowhere")
    assert (status, json.loads(reply)) == (404, {"message": "Not Found"})
