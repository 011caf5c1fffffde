"""Webhook to lineage on the local mode: signed deliveries reach intake, unsigned ones nothing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from infrastructure.local.deploy import LocalNames
from infrastructure.local.harness import REPO_ROOT, LocalProcess, invoice_webhook, sign_standard
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
    # The execution is an Express one: seen through its logs, as on AWS
    execution_arn = rows[0]["pk"]
    assert execution_arn.split(":")[5:7] == ["express", "aios-local-intake"]
    assert eventually(lambda: local.status(execution_arn) == "SUCCEEDED")
    # $$.State.EnteredTime in AWS's format: lineage sort keys compare with our own Z stamps
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", rows[0]["recorded_at"]), rows[0]


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


def test_express_history_is_refused_as_on_aws_and_the_cli_shows_it_from_the_logs(local: LocalProcess) -> None:
    # Given an intake execution (Express)
    body = invoice_webhook("INV-1003")
    assert local.request("POST", "/webhooks/standard", body, sign_standard(STANDARD_SECRET, body))[0] == 202
    execution_arn = eventually(lambda: local.lineage("erp:INV-1003"))[0]["pk"]
    eventually(lambda: local.status(execution_arn) == "SUCCEEDED")

    # Then the Step Functions API refuses it, as AWS does for Express executions
    sfn = local.client("stepfunctions")
    with pytest.raises(ClientError) as refused:
        sfn.get_execution_history(executionArn=execution_arn)
    assert refused.value.response["Error"]["Code"] == "InvalidArn"
    with pytest.raises(ClientError) as listed:
        sfn.list_executions(stateMachineArn=LocalNames().state_machine_arn("intake"))
    assert listed.value.response["Error"]["Code"] == "StateMachineTypeNotSupported"

    # And `aios executions` lists and shows it through the workflow's CloudWatch Logs
    def aios(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "infrastructure.cli", "executions", *args, "--endpoint-url", local.aws],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout

    listed_out = aios("list", "--workflow", "intake")
    assert any(execution_arn in line and "SUCCEEDED" in line for line in listed_out.splitlines()), listed_out
    shown = aios("show", execution_arn)
    assert "status     SUCCEEDED" in shown
    assert "Record the receipt in lineage" in shown
    assert "Announce an invoice?" in shown
