"""An accounts-payable execution that fails at a step still closes its invoice's lineage.

Since issue 14 an outage left after the retries fails the execution at the failing step (so
a redrive resumes there) instead of being caught into "Could not be processed". Step
Functions then puts a "Step Functions Execution Status Change" event with status FAILED on
the account's default bus (https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html);
the workflow's ``on_failure`` rule hands it to invoice-policy, which writes the closing row
(outcome, error, cut cause). The local mode emits the event as AWS does
(``infrastructure/local/status_events.py``) and enforces the functions' synthesized IAM
policies (the default of the e2e tier), so the row is written under invoice-policy's own grants.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from aios.payables import FAILED_STATE
from infrastructure.local.deploy import LocalNames
from infrastructure.local.harness import LocalProcess
from infrastructure.ops.report import CLOSING_STATES
from tests.e2e.conftest import ENV, eventually
from tests.e2e.test_ops_cli import SLACK_SECRET, WORKFLOW, add_invoice, finished, payments, send

OUTAGE = "INV-8901"
FETCH = "Fetch the invoice from the ERP"


@pytest.fixture(scope="module")
def local() -> Iterator[LocalProcess]:
    local = LocalProcess.start(
        env={**ENV, "AIOS_LOCAL_SECRET_SLACK": SLACK_SECRET}, platform="infrastructure.demo:DEMO_PLATFORM"
    )
    try:
        yield local
    finally:
        status = local.stop(timeout=30)
        assert status == 0, "".join(local.output[-40:])


def closing_rows(local: LocalProcess, business_key: str) -> list[dict[str, Any]]:
    rows = [
        r
        for r in local.lineage(business_key)
        if r.get("workflow") == WORKFLOW and r.get("state") in CLOSING_STATES and r.get("outcome")
    ]
    return sorted(rows, key=lambda r: str(r["recorded_at"]))


def test_an_execution_failed_by_an_outage_gets_its_closing_row_and_a_redrive_supersedes_it(
    local: LocalProcess,
) -> None:
    key = f"erp:{OUTAGE}"
    assert any("iam=enforce" in line for line in local.output)  # the functions' own grants
    # Given an invoice whose ERP read fails on every retry (an outage, not a refusal)
    add_invoice(local, "INV-2001", OUTAGE, "289.90")
    local.set_faults({"erp-connector": {"error": "Connector.Unavailable", "message": "ERP is down"}})
    send(local, key.removeprefix("erp:"))
    failed = finished(local, key)
    local.set_faults({})
    arn = failed["executionArn"]

    # Then the execution failed at the ERP step (not caught into "Invoice not processed")
    assert (failed["status"], failed["error"]) == ("FAILED", "Connector.Unavailable")
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in local.history(arn)
        if e["type"].endswith("StateEntered")
    ]
    assert entered[-1] == FETCH and "Close the books" not in entered
    # ... and within a few seconds its closing row says so, with the error and a cut cause
    started = time.monotonic()
    [row] = eventually(lambda: closing_rows(local, key), timeout=10)
    row_seconds = time.monotonic() - started
    assert (row["pk"], row["state"], row["outcome"]) == (arn, FAILED_STATE, "failed")
    assert row["error"] == "Connector.Unavailable"
    assert "ERP is down" in row["error_cause"]
    assert "{" not in row["error_cause"] and "stackTrace" not in row["error_cause"]
    assert row["sk"] == f"{row['recorded_at']}#{FAILED_STATE}"
    assert "input" not in row and "bank" not in str(row)
    # ... and nothing was dead-lettered on the way
    assert (
        local.client("sqs").get_queue_attributes(
            QueueUrl=local.client("sqs").get_queue_url(QueueName=LocalNames().dead_letter_queue)["QueueUrl"],
            AttributeNames=["ApproximateNumberOfMessages"],
        )["Attributes"]["ApproximateNumberOfMessages"]
        == "0"
    )

    # When the operator redrives it, the ERP back
    sfn = local.client("stepfunctions")
    sfn.redrive_execution(executionArn=arn)
    eventually(lambda: sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED", timeout=45)

    # Then the invoice is paid once, and its latest closing row (the report's outcome) is paid
    assert len(payments(local, OUTAGE)) == 1

    def closed_twice() -> list[dict[str, Any]] | None:
        found = closing_rows(local, key)
        return found if len(found) == 2 else None

    rows = eventually(closed_twice, timeout=10)
    assert [(r["state"], r["outcome"]) for r in rows] == [
        (FAILED_STATE, "failed"),
        ("Close the books", "paid"),
    ]
    assert all(r["pk"] == arn for r in rows)
    print(f"closing row of a failed execution: {row_seconds:.1f} s after the execution ended")
