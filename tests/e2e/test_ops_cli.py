"""The operator verbs end to end: ``aios lineage | approvals pending | dlq | report`` against
the local mode, as an operator types them (a subprocess with ``--endpoint-url``).

One ``aios local up`` for the module, with the demo's platform (the default one with an
approval ladder of 8 s per stage: long enough to look at a pending approval and answer it).
Three invoices go through: one paid automatically, one approved in Slack, and one that
reaches the workflow only as a dead letter redriven by ``aios dlq redrive``. The tests run in
order (later ones read what earlier ones produced).
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from infrastructure.local.deploy import LocalNames
from infrastructure.local.harness import (
    REPO_ROOT,
    LocalProcess,
    invoice_webhook,
    sign_slack,
    sign_standard,
    slack_action_body,
)
from tests.e2e.conftest import STANDARD_SECRET, eventually, start_local

SLACK_SECRET = "e2e-ops-slack-signing-secret-7a1c"
WORKFLOW = "accounts-payable"
CHANNEL, APPROVER = "C0AIOSAP01", "U0AIOSAP01"
AUTO, HUMAN, DEAD = "INV-8101", "INV-8201", "INV-8301"


@pytest.fixture(scope="module")
def local() -> Iterator[LocalProcess]:
    # The verbs call AWS with the operator's credentials; the functions the flows run are
    # held to their synthesized roles, as everywhere in this tier.
    yield from start_local(
        "infrastructure.demo:DEMO_PLATFORM",
        env={"AIOS_LOCAL_SECRET_SLACK": SLACK_SECRET},
        stop_timeout=30,
    )


def aios(local: LocalProcess, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "infrastructure.cli", *args, "--endpoint-url", local.aws],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def aios_json(local: LocalProcess, *args: str) -> Any:
    return json.loads(aios(local, *args, "--json").stdout)


def add_invoice(local: LocalProcess, template: str, invoice_id: str, amount: str) -> None:
    seeded = local.seeded_invoices()[template]
    gross, rate = Decimal(amount), Decimal(str(seeded["vendor_tax_rate"]))
    invoice = {
        **seeded,
        "invoice_id": invoice_id,
        "business_key": f"erp:{invoice_id}",
        "amount": float(gross),
        "tax_amount": float((gross * rate / (1 + rate)).quantize(Decimal("0.01"))),
    }
    status, answer = local.sandbox("POST", "erp/invoices", invoice)
    assert status == 200, answer


def send(local: LocalProcess, invoice_id: str) -> None:
    body = invoice_webhook(invoice_id)
    status, _, reply = local.request("POST", "/webhooks/standard", body, sign_standard(STANDARD_SECRET, body))
    assert status == 202, reply


def finished(local: LocalProcess, business_key: str, timeout: float = 45) -> dict[str, Any]:
    sfn = local.client("stepfunctions")

    def done() -> dict[str, Any] | None:
        arns = local.executions_for(WORKFLOW, business_key)
        if not arns:
            return None
        described: dict[str, Any] = sfn.describe_execution(executionArn=arns[-1])
        return described if described["status"] != "RUNNING" else None

    return eventually(done, timeout=timeout, interval=0.25)


def approval_message(local: LocalProcess, invoice_id: str) -> dict[str, Any] | None:
    return next(
        (
            m
            for m in local.slack_messages(CHANNEL)
            if m["thread_ts"] is None and m["text"] == f"Approval needed: invoice {invoice_id}"
        ),
        None,
    )


def payments(local: LocalProcess, invoice_id: str) -> list[dict[str, Any]]:
    return [i for i in local.payment_intents() if i["metadata"].get("invoice_id") == invoice_id]


@pytest.fixture(scope="module")
def invoices(local: LocalProcess) -> dict[str, dict[str, Any]]:
    """A clean invoice paid automatically, and one above the limit waiting in Slack."""
    add_invoice(local, "INV-2001", AUTO, "283.55")
    add_invoice(local, "INV-2003", HUMAN, "7160.10")
    send(local, AUTO)
    send(local, HUMAN)
    auto = finished(local, f"erp:{AUTO}")
    assert auto["status"] == "SUCCEEDED"
    message = eventually(lambda: approval_message(local, HUMAN), timeout=30)
    return {"auto": auto, "message": message}


def test_approvals_pending_says_who_since_when_and_at_which_stage(
    local: LocalProcess, invoices: dict[str, Any]
) -> None:
    # When the operator asks what waits
    [waiting] = [p for p in aios_json(local, "approvals", "pending") if p["business_key"] == f"erp:{HUMAN}"]
    table = aios(local, "approvals", "pending").stdout
    # Then the invoice above the limit waits for the approver in the request stage
    assert waiting["stage"] in ("request", "reminder")  # 8 s per stage
    assert APPROVER in waiting["approvers"] and waiting["channel"] == CHANNEL
    assert 0 <= waiting["waiting_seconds"] < 24
    assert waiting["waiting_since"] <= waiting["stage_since"]  # since the request, not the stage
    assert "7160.1" in waiting["amount"]
    assert f"erp:{HUMAN}" in table and waiting["approval_id"] in table
    assert "task_token" not in json.dumps(waiting)

    # When the approver presses Approve, nothing waits any more
    message = invoices["message"]
    approval_id = next(
        e["value"]
        for b in message["blocks"]
        for e in b.get("elements") or []
        if e.get("action_id") == "approve"
    )
    body = slack_action_body(approval_id, "approve", APPROVER, CHANNEL, message["ts"])
    status, _, reply = local.request("POST", "/approvals/slack", body, sign_slack(SLACK_SECRET, body))
    assert status == 200, reply
    assert finished(local, f"erp:{HUMAN}")["status"] == "SUCCEEDED"
    assert f"erp:{HUMAN}" not in [p["business_key"] for p in aios_json(local, "approvals", "pending")]


def test_lineage_tells_the_whole_story_in_one_query(local: LocalProcess, invoices: dict[str, Any]) -> None:
    story = aios_json(local, "lineage", f"erp:{HUMAN}")
    rows = local.lineage(f"erp:{HUMAN}")
    # Every lineage row of the item, in order: receipt, steps, the human decision, the outcome
    assert len(story["steps"]) == len(rows)
    states = [step["state"] for step in story["steps"]]
    assert story["steps"][0]["workflow"] == "intake"
    assert states.index("Human decision") < states.index("Close the books")
    [decision] = [s for s in story["steps"] if s["state"] == "Human decision"]
    assert decision["facts"] == {"approver": f"slack:{APPROVER}", "decision": "approved"}
    fetch = next(s for s in story["steps"] if s["state"] == "Fetch the invoice from the ERP")
    assert fetch["facts"]["connector"] == "erp" and fetch["facts"]["connector_version"]
    assert story["outcome"] == "paid"
    # ... and how its execution ended
    [end] = story["executions"]
    assert end["status"] == "SUCCEEDED"
    assert end["execution"] == local.executions_for(WORKFLOW, f"erp:{HUMAN}")[-1]
    table = aios(local, "lineage", f"erp:{HUMAN}").stdout
    assert "outcome paid" in table and f"approver=slack:{APPROVER}" in table
    assert aios(local, "lineage", "erp:INV-NONE", check=False).returncode == 1


def test_a_dead_letter_is_redriven_to_its_target_and_processed_once(
    local: LocalProcess, invoices: dict[str, Any]
) -> None:
    # Given an "Invoice Received" event that EventBridge could not deliver to the workflow,
    # dead-lettered twice (as a redrive whose delete was lost would leave it), with the
    # attributes EventBridge sets
    add_invoice(local, "INV-2001", DEAD, "291.20")
    event = json.loads(invoices["auto"]["input"])
    event["id"] = f"e2e-{uuid.uuid4()}"
    event["detail"] = {**event["detail"], "business_key": f"erp:{DEAD}", "invoice_id": DEAD}
    names = LocalNames()
    # What the workflow's rule targets (its "live" alias since rollouts), as EventBridge names it
    [rule_target] = local.client("events").list_targets_by_rule(
        Rule=names.rule(WORKFLOW), EventBusName=names.bus("aios")
    )["Targets"]
    machine = rule_target["Arn"]
    sqs = local.client("sqs")
    queue_url = sqs.get_queue_url(QueueName=names.dead_letter_queue)["QueueUrl"]
    attributes = {
        "RULE_ARN": (
            f"arn:aws:events:{names.region}:{names.account}:rule/{names.bus('aios')}/{names.rule(WORKFLOW)}"
        ),
        "TARGET_ARN": machine,
        "ERROR_CODE": "ThrottlingException",
        "ERROR_MESSAGE": "Rate exceeded",
    }
    for _ in range(2):
        sqs.send_message(
            QueueUrl=queue_url,
            MessageBody=json.dumps(event),
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
        )

    # When the operator lists and shows them
    letters = aios_json(local, "dlq", "list")
    assert len(letters) == 2
    assert {(d["target_arn"], d["error_code"], d["business_key"]) for d in letters} == {
        (machine, "ThrottlingException", f"erp:{DEAD}")
    }
    shown = aios(local, "dlq", "show", letters[0]["message_id"]).stdout
    assert machine in shown and "Invoice Received" in shown and "Rate exceeded" in shown

    # ... and redrives them all
    results = aios_json(local, "dlq", "redrive", "--all")

    # Then the event reached its workflow once, and the invoice was paid once
    assert sorted(r["outcome"] for r in results) == ["already-redriven", "redriven"]
    assert finished(local, f"erp:{DEAD}")["status"] == "SUCCEEDED"
    assert len(local.executions_for(WORKFLOW, f"erp:{DEAD}")) == 1
    assert len(payments(local, DEAD)) == 1
    # ... and the queue is empty
    assert aios_json(local, "dlq", "list") == []
    assert "empty" in aios(local, "dlq", "list").stdout


def test_report_counts_what_happened(local: LocalProcess, invoices: dict[str, Any]) -> None:
    result = aios_json(local, "report")
    # Three invoices: two paid without a human (one of them redriven), one approved in Slack
    assert (result["invoices"], result["ended"], result["automated"]) == (3, 3, 2)
    assert result["automation_coverage"] == pytest.approx(2 / 3)
    assert result["human_touches"] == 1
    assert result["outcomes"] == {"paid": 3}
    assert 0 < result["cycle_time_p50_seconds"] <= result["cycle_time_p95_seconds"]
    histories = [
        local.history(arn)
        for key in (AUTO, HUMAN, DEAD)
        for arn in local.executions_for(WORKFLOW, f"erp:{key}")
    ]
    entered = [sum(1 for e in h if e["type"].endswith("StateEntered")) for h in histories]
    assert result["transitions_per_invoice"] == pytest.approx(sum(entered) / 3)
    assert result["cost_per_1000_invoices_usd"] > 0
    table = aios(local, "report").stdout
    assert "automated" in table and "66.7% of ended" in table
    # --since after everything: nothing
    assert aios_json(local, "report", "--since", "2999-01-01")["invoices"] == 0
