"""Injected faults meet the real Retry/Catch of a workflow, and nothing accepted is lost.

``intake`` calls no Lambda function, so this module runs the local mode with the test
platform ``tests/e2e/fixtures/platform.py`` (the default platform plus ``fault-drill``: on every
Invoice Received it calls the documents connector, retries Connector.Unavailable, throttles
and timeouts, and catches everything else into a ``failed`` lineage row). Faults are set over
HTTP on ``/_aios/faults``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from infrastructure.local.harness import REPO_ROOT, LocalProcess, invoice_webhook, sign_standard
from tests.e2e.conftest import STANDARD_SECRET, eventually, start_local

CONNECTOR = "documents-connector"


@pytest.fixture(scope="module")
def local() -> Iterator[LocalProcess]:
    yield from start_local("tests/e2e/fixtures/platform.py:PLATFORM")


@pytest.fixture(autouse=True)
def no_faults(local: LocalProcess) -> Iterator[None]:
    local.set_faults({})
    yield
    local.set_faults({})


ACCEPTED: list[str] = []


def send_invoice(local: LocalProcess, invoice_id: str) -> str:
    body = invoice_webhook(invoice_id)
    status, _, reply = local.request("POST", "/webhooks/standard", body, sign_standard(STANDARD_SECRET, body))
    assert status == 202, reply
    event_id: str = json.loads(reply)["event_id"]
    ACCEPTED.append(f"erp:{invoice_id}")
    return event_id


def drill_outcome(local: LocalProcess, business_key: str) -> dict[str, Any]:
    return eventually(
        lambda: next((r for r in local.lineage(business_key) if r.get("workflow") == "fault-drill"), None)
    )


def final_status(local: LocalProcess, execution_arn: str) -> str:
    sfn = local.client("stepfunctions")
    status: str = eventually(
        lambda: (s := sfn.describe_execution(executionArn=execution_arn)["status"]) != "RUNNING" and s
    )
    return status


def test_transient_fault_is_retried_and_succeeds(local: LocalProcess) -> None:
    # Given the connector fails twice with Connector.Unavailable
    local.set_faults({CONNECTOR: {"error": "Connector.Unavailable", "times": 2}})

    # When an invoice arrives
    send_invoice(local, "INV-2001")

    # Then fault-drill retried twice and stored the document with the real handler
    row = drill_outcome(local, "erp:INV-2001")
    assert row["outcome"] == "stored"
    assert final_status(local, row["pk"]) == "SUCCEEDED"
    failures = [e for e in local.history(row["pk"]) if e["type"] == "TaskFailed"]
    assert [e["taskFailedEventDetails"]["error"] for e in failures] == ["Connector.Unavailable"] * 2
    assert json.loads(failures[0]["taskFailedEventDetails"]["cause"])["errorType"] == "Connector.Unavailable"


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"kind": "throttle", "times": 1}, "Lambda.TooManyRequestsException"),
        ({"kind": "timeout", "times": 1}, "Sandbox.Timedout"),
    ],
)
def test_throttles_and_timeouts_are_reported_as_lambda_does(
    local: LocalProcess, fault: dict[str, Any], error: str
) -> None:
    local.set_faults({CONNECTOR: fault})
    invoice = f"INV-{fault['kind'].upper()}"
    send_invoice(local, invoice)
    row = drill_outcome(local, f"erp:{invoice}")
    assert row["outcome"] == "stored"
    failures = [e for e in local.history(row["pk"]) if e["type"] == "TaskFailed"]
    assert [e["taskFailedEventDetails"]["error"] for e in failures] == [error]


def test_permanent_fault_ends_in_the_catch_path_with_its_cause(local: LocalProcess) -> None:
    # Given the connector always rejects
    local.set_faults({CONNECTOR: {"error": "Connector.Rejected", "message": "ERP says no"}})

    # When an invoice arrives
    send_invoice(local, "INV-3001")

    # Then the Catch recorded the failure and its cause, and the execution failed with it
    row = drill_outcome(local, "erp:INV-3001")
    assert row["outcome"] == "failed"
    assert row["error"] == "Connector.Rejected"
    assert json.loads(row["cause"])["errorMessage"] == "ERP says no"
    assert final_status(local, row["pk"]) == "FAILED"
    # Not retryable: one attempt only
    failures = [e for e in local.history(row["pk"]) if e["type"] == "TaskFailed"]
    assert len(failures) == 1


def test_cli_shows_the_history_state_by_state(local: LocalProcess) -> None:
    local.set_faults({CONNECTOR: {"error": "Connector.Unavailable", "times": 1}})
    send_invoice(local, "INV-4001")
    row = drill_outcome(local, "erp:INV-4001")
    final_status(local, row["pk"])
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "infrastructure.cli",
            "executions",
            "show",
            row["pk"],
            "--endpoint-url",
            local.aws,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    assert "SUCCEEDED" in shown
    assert "Store the reference" in shown
    assert "error Connector.Unavailable" in shown
    line = next(line for line in shown.splitlines() if "Store the reference" in line)
    assert line.split()[-1] == "1"  # retries
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "infrastructure.cli",
            "executions",
            "list",
            "--workflow",
            "fault-drill",
            "--endpoint-url",
            local.aws,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    assert row["pk"] in listed


def test_nothing_accepted_is_lost(local: LocalProcess) -> None:
    # Every invoice accepted in this module is accounted for: intake received it, and
    # fault-drill either stored it or recorded why not; the dead-letter queue holds the rest.
    sqs = local.client("sqs")
    queue = sqs.get_queue_url(QueueName="aios-local-dead-letters")["QueueUrl"]
    dead = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    dead_keys = {json.loads(m["Body"])["detail"].get("business_key") for m in dead}
    assert ACCEPTED
    for business_key in ACCEPTED:
        rows = local.lineage(business_key)
        assert any(r["workflow"] == "intake" and r["outcome"] == "received" for r in rows), business_key
        drill = [r for r in rows if r["workflow"] == "fault-drill"]
        assert business_key in dead_keys or any(
            r["outcome"] == "stored" or (r["outcome"] == "failed" and r["cause"]) for r in drill
        ), business_key
    assert len(local.executions("fault-drill")) >= len(ACCEPTED) - len(dead_keys)
