"""Accounts payable end to end on the local mode, over HTTP only (boto3 only inspects).

One ``aios local up`` for the module, with the test platform
``tests/e2e/fixtures/payables_platform.py`` (the default platform, approval ladder shortened to
3 s per stage) and a 0.01 time scale (Retry intervals). Each test sends a signed
``invoice.received`` webhook for an invoice of its own, which it first adds to the sandbox ERP
(copies of seeded invoices with another id and amount: a clean one, an amount outlier, one
above the auto-approval limit), then follows the accounts-payable execution that the
``Invoice Received`` event starts to its final state, and checks what the sandbox providers
(ERP postings, payment intents, Slack messages) and the lineage table show.

Lambda invocations are serialised in the local mode and scoring takes about 1.5 s, so the
tests run one after the other; polling has deadlines, nothing sleeps a fixed time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import pytest

from infrastructure.local.harness import (
    LocalProcess,
    invoice_webhook,
    sign_slack,
    sign_standard,
    slack_action_body,
)
from tests.e2e.conftest import STANDARD_SECRET, eventually, start_local

SLACK_SECRET = "e2e-slack-signing-secret-0f3b9c7d21a4"
WORKFLOW = "accounts-payable"
CHANNEL = "C0AIOSAP01"
APPROVER = "U0AIOSAP01"
ESCALATION_APPROVER = "U0AIOSCFO1"
#: AWS's ``$$.State.EnteredTime`` format, the one format of lineage times.
LINEAGE_TIME = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z"
#: Long enough for an execution that runs the whole ladder (3 x 3 s) plus serialised invocations.
FINISH_WITHIN = 45.0

CLEAN_TEMPLATE = "INV-2001"  # normal for its vendor, 282.39 SEK
OUTLIER_TEMPLATE = "INV-2002"  # planted amount_outlier: ~6 standard deviations above the vendor's mean
LARGE_TEMPLATE = "INV-2003"  # normal for its vendor, 7138.77 SEK: above the 5000 auto-approval limit

LADDER = ("Ask an approver in Slack", "Remind the approver", "Escalate to the second approver")
AP_STATES = [
    "Claim the invoice",
    "Fetch the invoice from the ERP",
    "Validate the invoice",
    "Score with the anomaly model",
    "Decide: automatic or human",
    "Post the invoice to the ERP",
    "Create the payment",
    "Close the books",
]


# -- the local mode and the sandbox ------------------------------------------------------------


@pytest.fixture(scope="module")
def local() -> Iterator[LocalProcess]:
    yield from start_local(
        "tests/e2e/fixtures/payables_platform.py:PLATFORM", env={"AIOS_LOCAL_SECRET_SLACK": SLACK_SECRET}
    )


@pytest.fixture(scope="module")
def seeded(local: LocalProcess) -> dict[str, dict[str, Any]]:
    return local.seeded_invoices()


@pytest.fixture(autouse=True)
def no_sandbox_faults(local: LocalProcess) -> Iterator[None]:
    yield
    local.sandbox_faults(None)
    local.sandbox("DELETE", "payments/refuse")


def add_invoice(
    local: LocalProcess, seeded: dict[str, dict[str, Any]], template: str, invoice_id: str, amount: str
) -> dict[str, Any]:
    """A copy of a seeded invoice under another id and gross amount (tax at the vendor's rate).

    A distinct amount also gives a distinct duplicate fingerprint (vendor, amount, currency, date).
    """
    gross = Decimal(amount)
    rate = Decimal(str(seeded[template]["vendor_tax_rate"]))
    tax = (gross * rate / (1 + rate)).quantize(Decimal("0.01"))
    invoice = {
        **seeded[template],
        "invoice_id": invoice_id,
        "business_key": f"erp:{invoice_id}",
        "amount": float(gross),
        "tax_amount": float(tax),
    }
    status, answer = local.sandbox("POST", "erp/invoices", invoice)
    assert status == 200, answer
    return invoice


def send_invoice(
    local: LocalProcess, invoice_id: str, headers: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, dict[str, Any]]:
    body = body or invoice_webhook(invoice_id)
    headers = headers or sign_standard(STANDARD_SECRET, body)
    status, _, reply = local.request("POST", "/webhooks/standard", body, headers)
    return status, json.loads(reply)


def accept(local: LocalProcess, invoice_id: str) -> None:
    status, reply = send_invoice(local, invoice_id)
    assert status == 202, reply


# -- executions --------------------------------------------------------------------------------


def the_execution(local: LocalProcess, business_key: str) -> str:
    [execution_arn] = eventually(lambda: local.executions_for(WORKFLOW, business_key), timeout=20)
    return execution_arn


def entered(events: list[dict[str, Any]]) -> list[str]:
    """The states an execution entered, in order."""
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


@dataclass(frozen=True)
class Ended:
    status: str
    state: str
    error: str | None
    events: list[dict[str, Any]]

    def entered(self) -> list[str]:
        return entered(self.events)

    def task_errors(self) -> dict[str, list[str]]:
        """Each state's failed task attempts (error names), in order."""
        errors: dict[str, list[str]] = {}
        state = ""
        for event in self.events:
            if "stateEnteredEventDetails" in event:
                state = event["stateEnteredEventDetails"]["name"]
            if event["type"] == "TaskFailed":
                errors.setdefault(state, []).append(event["taskFailedEventDetails"]["error"])
        return errors

    def succeeded(self, state: str) -> bool:
        """Whether ``state`` was entered and its task succeeded."""
        current = ""
        for event in self.events:
            if "stateEnteredEventDetails" in event:
                current = event["stateEnteredEventDetails"]["name"]
            if event["type"] == "TaskSucceeded" and current == state:
                return True
        return False


def ended(local: LocalProcess, execution_arn: str, timeout: float = FINISH_WITHIN) -> Ended:
    sfn = local.client("stepfunctions")
    described = eventually(
        lambda: (d := sfn.describe_execution(executionArn=execution_arn))["status"] != "RUNNING" and d,
        timeout=timeout,
        interval=0.25,
    )
    events = local.history(execution_arn)
    last = entered(events)[-1]
    failed: dict[str, Any] = next(
        (e["executionFailedEventDetails"] for e in events if e["type"] == "ExecutionFailed"), {}
    )
    return Ended(status=described["status"], state=last, error=failed.get("error"), events=events)


def running(local: LocalProcess, execution_arn: str) -> bool:
    status: str = local.client("stepfunctions").describe_execution(executionArn=execution_arn)["status"]
    return status == "RUNNING"


# -- side effects ------------------------------------------------------------------------------


def postings(local: LocalProcess, invoice_id: str) -> list[dict[str, Any]]:
    return [p for p in local.erp_postings()["postings"] if p["invoice_id"] == invoice_id]


def payments(local: LocalProcess, invoice_id: str) -> list[dict[str, Any]]:
    return [i for i in local.payment_intents() if i["metadata"].get("invoice_id") == invoice_id]


def ap_rows(local: LocalProcess, business_key: str) -> list[dict[str, Any]]:
    return [r for r in local.lineage(business_key) if r.get("workflow") == WORKFLOW]


# -- Slack -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApprovalMessage:
    approval_id: str
    channel: str
    ts: str


def request_message(local: LocalProcess, invoice_id: str) -> dict[str, Any] | None:
    """The approval request posted for ``invoice_id`` (its last state), if any."""
    return next(
        (
            m
            for m in local.slack_messages(CHANNEL)
            if m["thread_ts"] is None and m["text"] == f"Approval needed: invoice {invoice_id}"
        ),
        None,
    )


def approval_requested(local: LocalProcess, invoice_id: str) -> ApprovalMessage:
    message = eventually(lambda: request_message(local, invoice_id), timeout=20)
    [approval_id] = {
        element["value"]
        for block in message["blocks"]
        for element in block.get("elements") or []
        if element.get("action_id") == "approve"
    }
    assert approval_id in local.approval_ids()
    return ApprovalMessage(approval_id=approval_id, channel=message["channel"], ts=message["ts"])


def current(local: LocalProcess, message: ApprovalMessage) -> dict[str, Any]:
    """The request message as it is now (its text changes once decided or expired)."""
    [now] = [m for m in local.slack_messages(message.channel) if m["ts"] == message.ts]
    return now


def approvals_item(local: LocalProcess, key: str) -> dict[str, Any]:
    """An item of the approvals table (``approval#<id>``, ``claim#<business key>``), flattened."""
    item = local.client("dynamodb").get_item(
        TableName="aios-local-approvals", Key={"pk": {"S": key}}, ConsistentRead=True
    )["Item"]
    return {name: next(iter(value.values())) for name, value in item.items()}


def thread(local: LocalProcess, message: ApprovalMessage) -> list[dict[str, Any]]:
    return [m for m in local.slack_messages(message.channel) if m["thread_ts"] == message.ts]


def click(
    local: LocalProcess,
    message: ApprovalMessage,
    action: Literal["approve", "reject"],
    user: str = APPROVER,
    *,
    secret: str = SLACK_SECRET,
    approval_id: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """A signed Slack ``block_actions`` press of Approve/Reject, posted to ``/approvals/slack``."""
    body = slack_action_body(
        approval_id or message.approval_id,
        action,
        user,
        message.channel,
        message.ts,
    )
    status, _, reply = local.request("POST", "/approvals/slack", body, sign_slack(secret, body))
    return status, json.loads(reply) if reply else {}


# -- the scenarios -----------------------------------------------------------------------------


def test_clean_invoice_is_approved_automatically_and_paid(
    local: LocalProcess, seeded: dict[str, dict[str, Any]]
) -> None:
    # Given a clean invoice under the auto-approval limit
    invoice = add_invoice(local, seeded, CLEAN_TEMPLATE, "INV-7101", "283.17")

    # When its webhook arrives
    accept(local, "INV-7101")

    # Then the execution pays it without asking anyone
    execution_arn = the_execution(local, "erp:INV-7101")
    outcome = ended(local, execution_arn)
    assert (outcome.status, outcome.state) == ("SUCCEEDED", "Invoice paid")
    assert "Ask an approver in Slack" not in outcome.entered()
    assert request_message(local, "INV-7101") is None
    # ... with one posting and one payment intent of the invoice's amount
    [posting] = postings(local, "INV-7101")
    assert posting["status"] == "posted"
    [intent] = payments(local, "INV-7101")
    assert intent["amount"] == 28317
    assert intent["currency"] == "sek"
    assert intent["metadata"]["business_key"] == "erp:INV-7101"
    # ... and lineage holds one row per step under the business key, with the versions used
    rows = local.lineage("erp:INV-7101")
    assert [r["outcome"] for r in rows if r["workflow"] == "intake"] == ["received"]
    steps = {r["state"]: r for r in rows if r["workflow"] == WORKFLOW}
    assert sorted(steps) == sorted(AP_STATES)
    assert {r["pk"] for r in steps.values()} == {execution_arn}
    assert steps["Score with the anomaly model"]["model_version"]
    assert steps["Score with the anomaly model"]["model_endpoint"] == "aios-local-invoice-anomaly"
    assert steps["Fetch the invoice from the ERP"]["connector"] == "erp"
    assert steps["Fetch the invoice from the ERP"]["connector_version"]
    assert steps["Create the payment"]["connector"] == "payments"
    assert steps["Create the payment"]["connector_version"]
    assert steps["Validate the invoice"]["outcome"] == "valid"
    assert steps["Decide: automatic or human"]["decision"] == "auto-approved"
    assert steps["Close the books"]["outcome"] == "paid"
    # ... holding digests, not the invoice's account or vendor data
    stored = json.dumps(rows)
    assert invoice["bank_account"] not in stored
    assert invoice["vendor_name"] not in stored


def test_anomalous_invoice_approved_in_slack_is_paid(
    local: LocalProcess, seeded: dict[str, dict[str, Any]]
) -> None:
    # Given an amount outlier under the limit, waiting for an approver in Slack
    add_invoice(local, seeded, OUTLIER_TEMPLATE, "INV-7201", "2417.36")
    accept(local, "INV-7201")
    message = approval_requested(local, "INV-7201")
    execution_arn = the_execution(local, "erp:INV-7201")
    assert running(local, execution_arn)
    assert postings(local, "INV-7201") == []
    request = request_message(local, "INV-7201")
    assert request is not None
    assert "anomaly score" in json.dumps(request["blocks"])

    # When the approver presses Approve
    status, reply = click(local, message, "approve")

    # Then the click is answered approved and the invoice is posted and paid
    assert (status, reply) == (200, {"status": "approved", "approval_id": message.approval_id})
    outcome = ended(local, execution_arn)
    assert (outcome.status, outcome.state) == ("SUCCEEDED", "Invoice paid")
    # ... because the click reached the task waiting for it (not the next stage's own read):
    # a decision that only a later stage picks up would wait a whole ladder stage on AWS
    assert any(outcome.succeeded(stage) for stage in LADDER), outcome.entered()
    assert len(postings(local, "INV-7201")) == 1
    assert len(payments(local, "INV-7201")) == 1
    # ... lineage has the human decision, who made it and what it was
    [decision] = [r for r in ap_rows(local, "erp:INV-7201") if r["state"] == "Human decision"]
    assert decision["approver"] == f"slack:{APPROVER}"
    assert decision["decision"] == "approved"
    assert decision["pk"] == execution_arn
    # ... and the Slack message shows the decision instead of the buttons
    updated = current(local, message)
    assert updated["updated"] is True
    assert message.approval_id not in local.approval_ids()


def test_invoice_rejected_in_slack_is_neither_posted_nor_paid(
    local: LocalProcess, seeded: dict[str, dict[str, Any]]
) -> None:
    # Given a normal invoice above the auto-approval limit, waiting for an approver
    add_invoice(local, seeded, LARGE_TEMPLATE, "INV-7301", "7151.42")
    accept(local, "INV-7301")
    message = approval_requested(local, "INV-7301")
    request = request_message(local, "INV-7301")
    assert request is not None
    assert "amount above the auto-approval limit of 5000" in json.dumps(request["blocks"])

    # When the approver presses Reject
    status, reply = click(local, message, "reject")

    # Then the execution ends rejected, and nothing was posted or paid
    assert (status, reply) == (200, {"status": "rejected", "approval_id": message.approval_id})
    outcome = ended(local, the_execution(local, "erp:INV-7301"))
    assert (outcome.status, outcome.state) == ("SUCCEEDED", "Invoice rejected by the approver")
    assert "Post the invoice to the ERP" not in outcome.entered()
    assert outcome.succeeded("Announce Invoice Rejected")
    assert postings(local, "INV-7301") == []
    assert payments(local, "INV-7301") == []
    rows = ap_rows(local, "erp:INV-7301")
    [decision] = [r for r in rows if r["state"] == "Human decision"]
    assert (decision["approver"], decision["decision"]) == (f"slack:{APPROVER}", "rejected")
    assert next(r for r in rows if r["state"] == "Close the books")["outcome"] == "rejected"

    # And a second press is answered, but decides nothing
    status, reply = click(local, message, "approve")
    assert (status, reply["status"], reply.get("decision")) == (200, "already_decided", "rejected")
    assert postings(local, "INV-7301") == []


def test_unanswered_approval_is_reminded_escalated_and_rejected(
    local: LocalProcess, seeded: dict[str, dict[str, Any]]
) -> None:
    # Given an anomalous invoice whose approval request nobody answers
    add_invoice(local, seeded, OUTLIER_TEMPLATE, "INV-7401", "2389.71")
    accept(local, "INV-7401")
    message = approval_requested(local, "INV-7401")

    # When the ladder runs out (reminder, escalation, expiry: 3 s each)
    outcome = ended(local, the_execution(local, "erp:INV-7401"))

    # Then the invoice is rejected automatically after a reminder and an escalation
    assert (outcome.status, outcome.state) == ("SUCCEEDED", "Invoice rejected: nobody answered")
    entered = outcome.entered()
    for stage in ("Remind the approver", "Escalate to the second approver", "Expire the approval request"):
        assert stage in entered, entered
    assert "Post the invoice to the ERP" not in entered
    # ... Slack shows the reminder and the escalation in the request's thread
    replies = thread(local, message)
    assert len(replies) == 2, replies
    reminder, escalation = replies
    assert f"<@{APPROVER}>" in json.dumps(reminder)
    assert f"<@{ESCALATION_APPROVER}>" in json.dumps(escalation)
    # ... and the request itself shows that it expired
    request = current(local, message)
    assert request["updated"] is True
    assert postings(local, "INV-7401") == []
    assert payments(local, "INV-7401") == []
    rows = ap_rows(local, "erp:INV-7401")
    assert next(r for r in rows if r["state"] == "Close the books")["outcome"] == "expired"

    # And a late press is told that the request expired
    status, reply = click(local, message, "approve")
    assert (status, reply["status"]) == (200, "expired")
    assert postings(local, "INV-7401") == []


def test_erp_down_twice_is_retried_and_the_invoice_paid(
    local: LocalProcess, seeded: dict[str, dict[str, Any]]
) -> None:
    # Given a clean invoice and an ERP that answers 503 to the next two requests
    add_invoice(local, seeded, CLEAN_TEMPLATE, "INV-7501", "291.46")
    local.sandbox_faults({"erp": {"status": 503, "times": 2}})

    # When its webhook arrives
    accept(local, "INV-7501")

    # Then fetching is retried and the invoice paid
    outcome = ended(local, the_execution(local, "erp:INV-7501"))
    assert (outcome.status, outcome.state) == ("SUCCEEDED", "Invoice paid")
    assert outcome.task_errors() == {"Fetch the invoice from the ERP": ["Connector.Unavailable"] * 2}
    assert len(postings(local, "INV-7501")) == 1
    assert len(payments(local, "INV-7501")) == 1


def test_refused_payment_reverses_the_posting(local: LocalProcess, seeded: dict[str, dict[str, Any]]) -> None:
    # Given a clean invoice whose payment the provider refuses permanently
    add_invoice(local, seeded, CLEAN_TEMPLATE, "INV-7601", "276.83")
    local.refuse_payment("INV-7601")

    # When its webhook arrives
    accept(local, "INV-7601")

    # Then the posting is reversed and the execution fails as compensated
    outcome = ended(local, the_execution(local, "erp:INV-7601"))
    assert (outcome.status, outcome.state) == ("FAILED", "Payment failed: posting reversed")
    assert outcome.error == "Invoice.Compensated"
    assert "Cancel the payment" not in outcome.entered()  # no payment was created
    assert outcome.task_errors() == {"Create the payment": ["Connector.Rejected"]}  # not retried
    [posting] = postings(local, "INV-7601")
    reversals = [r for r in local.erp_postings()["reversals"] if r["posting_id"] == posting["posting_id"]]
    assert len(reversals) == 1, local.erp_postings()
    assert payments(local, "INV-7601") == []
    # ... an Invoice Compensated event was put, and lineage closed the books as compensated
    assert outcome.succeeded("Announce Invoice Compensated")
    rows = ap_rows(local, "erp:INV-7601")
    assert "Reverse the ERP posting" in {r["state"] for r in rows}
    assert next(r for r in rows if r["state"] == "Close the books")["outcome"] == "compensated"


def test_duplicate_deliveries_pay_once(local: LocalProcess, seeded: dict[str, dict[str, Any]]) -> None:
    # Given a clean invoice
    add_invoice(local, seeded, CLEAN_TEMPLATE, "INV-7701", "301.29")
    body = invoice_webhook("INV-7701")
    headers = sign_standard(STANDARD_SECRET, body)

    # When the same delivery arrives twice
    first = send_invoice(local, "INV-7701", headers, body)
    second = send_invoice(local, "INV-7701", headers, body)

    # Then the second is answered as a duplicate of the first
    assert first[0] == 202, first
    assert second == (200, {"event_id": first[1]["event_id"], "duplicate": True})

    # When the producer sends the invoice again as another delivery (another Invoice Received)
    again = send_invoice(local, "INV-7701")
    assert again[0] == 202, again
    assert again[1]["event_id"] != first[1]["event_id"]

    # Then two executions ran: one paid the invoice, the other found it claimed
    def both() -> list[str] | None:
        found = local.executions_for(WORKFLOW, "erp:INV-7701")
        return found if len(found) == 2 else None

    executions = eventually(both)
    outcomes = {ended(local, execution_arn).state: execution_arn for execution_arn in executions}
    assert sorted(outcomes) == ["Already handled by another execution", "Invoice paid"]
    assert approvals_item(local, "claim#erp:INV-7701")["execution"] == outcomes["Invoice paid"]
    assert len(postings(local, "INV-7701")) == 1
    assert len(payments(local, "INV-7701")) == 1
    intake = [r for r in local.lineage("erp:INV-7701") if r["workflow"] == "intake"]
    assert len(intake) == 2


def test_forged_or_unauthorised_clicks_change_nothing(
    local: LocalProcess, seeded: dict[str, dict[str, Any]]
) -> None:
    # Given an anomalous invoice waiting for an approver
    add_invoice(local, seeded, OUTLIER_TEMPLATE, "INV-7801", "2436.52")
    accept(local, "INV-7801")
    message = approval_requested(local, "INV-7801")
    execution_arn = the_execution(local, "erp:INV-7801")

    # When a click arrives signed with the wrong secret
    status, _ = click(local, message, "approve", secret="not-the-signing-secret")
    # Then it is refused
    assert status == 401

    # When someone who is not an approver clicks
    status, _ = click(local, message, "approve", user="U0NOTALLOWED")
    # Then it is forbidden, as it is for the escalation approver before the escalation
    assert status == 403
    assert click(local, message, "approve", user=ESCALATION_APPROVER)[0] == 403

    # When a signed click names an approval that does not exist, or is not a button press
    assert click(local, message, "approve", approval_id="apr_" + "0" * 32)[0] == 404
    body = b"payload=%7B%22type%22%3A%22view_submission%22%7D"
    assert local.request("POST", "/approvals/slack", body, sign_slack(SLACK_SECRET, body))[0] == 400

    # Then the execution is still waiting and nothing was decided, posted or paid
    assert running(local, execution_arn)
    assert entered(local.history(execution_arn))[-1] in LADDER
    approval = approvals_item(local, f"approval#{message.approval_id}")
    assert approval["status"] == "pending"
    assert "decided_by" not in approval
    assert [r for r in ap_rows(local, "erp:INV-7801") if r["state"] == "Human decision"] == []
    assert current(local, message)["updated"] is False
    assert postings(local, "INV-7801") == []
    assert payments(local, "INV-7801") == []

    # And the approver's own click still decides, also once the reminder holds a newer task token
    eventually(lambda: thread(local, message), timeout=20)
    status, reply = click(local, message, "approve")
    assert (status, reply["status"]) == (200, "approved")
    outcome = ended(local, execution_arn)
    assert (outcome.status, outcome.state) == ("SUCCEEDED", "Invoice paid")
    assert len(payments(local, "INV-7801")) == 1


def test_escalation_approver_decides_after_the_escalation(
    local: LocalProcess, seeded: dict[str, dict[str, Any]]
) -> None:
    # Given an anomalous invoice whose request was reminded and then escalated
    add_invoice(local, seeded, OUTLIER_TEMPLATE, "INV-7901", "2442.18")
    accept(local, "INV-7901")
    message = approval_requested(local, "INV-7901")
    eventually(lambda: len(thread(local, message)) == 2, timeout=20, interval=0.05)

    # When the escalation approver presses Approve
    status, reply = click(local, message, "approve", user=ESCALATION_APPROVER)

    # Then the invoice is paid and lineage names the escalation approver
    assert (status, reply["status"]) == (200, "approved")
    outcome = ended(local, the_execution(local, "erp:INV-7901"))
    assert (outcome.status, outcome.state) == ("SUCCEEDED", "Invoice paid")
    # The click may land after the 3 s escalation stage timed out (a loaded machine): then
    # "Expire the approval request" finds the recorded decision and follows it, never
    # "expired" (the acknowledged decision is the one acted on, issue 11).
    assert "Invoice rejected: nobody answered" not in outcome.entered()
    [decision] = [r for r in ap_rows(local, "erp:INV-7901") if r["state"] == "Human decision"]
    assert decision["approver"] == f"slack:{ESCALATION_APPROVER}"
    assert len(payments(local, "INV-7901")) == 1


def test_re_keyed_copy_of_a_paid_invoice_goes_to_a_human(
    local: LocalProcess, seeded: dict[str, dict[str, Any]]
) -> None:
    # Given a paid clean invoice, and a copy of it under another id (same vendor, amount, date)
    add_invoice(local, seeded, CLEAN_TEMPLATE, "INV-8001", "288.64")
    accept(local, "INV-8001")
    assert ended(local, the_execution(local, "erp:INV-8001")).state == "Invoice paid"
    add_invoice(local, seeded, CLEAN_TEMPLATE, "INV-8002", "288.64")

    # When the copy arrives
    accept(local, "INV-8002")

    # Then an approver is asked, with the reason
    message = approval_requested(local, "INV-8002")
    assert "possible duplicate of erp:INV-8001" in json.dumps(current(local, message)["blocks"])
    assert click(local, message, "reject")[0] == 200
    outcome = ended(local, the_execution(local, "erp:INV-8002"))
    assert outcome.state == "Invoice rejected by the approver"
    assert payments(local, "INV-8002") == []


def test_invoice_whose_totals_do_not_add_up_is_rejected_as_invalid(
    local: LocalProcess, seeded: dict[str, dict[str, Any]]
) -> None:
    # Given an invoice whose lines plus tax differ from its gross amount
    invoice = add_invoice(local, seeded, CLEAN_TEMPLATE, "INV-8101", "294.51")
    invoice["lines"] = [{"description": "freight", "amount": 100.0}]
    status, answer = local.sandbox("POST", "erp/invoices", invoice)
    assert status == 200, answer

    # When it arrives
    accept(local, "INV-8101")

    # Then it is rejected as invalid before scoring, and nothing is posted or paid
    outcome = ended(local, the_execution(local, "erp:INV-8101"))
    assert (outcome.status, outcome.state) == ("SUCCEEDED", "Invoice rejected as invalid")
    assert "Score with the anomaly model" not in outcome.entered()
    assert postings(local, "INV-8101") == []
    assert payments(local, "INV-8101") == []


def test_click_while_the_next_stage_starts_is_the_decision_acted_on(
    local: LocalProcess, seeded: dict[str, dict[str, Any]]
) -> None:
    # Given an invoice waiting in Slack, whose reminder stage will hang 3 s in its Slack post
    # and then fail (it has stored its task token; its invoke has not returned)
    add_invoice(local, seeded, OUTLIER_TEMPLATE, "INV-8201", "2451.07")
    accept(local, "INV-8201")
    message = approval_requested(local, "INV-8201")
    execution_arn = the_execution(local, "erp:INV-8201")
    local.sandbox_faults({"slack": {"status": 500, "times": 1, "delay_seconds": 3}})

    def reminder_started() -> bool:
        item = approvals_item(local, f"approval#{message.approval_id}")
        return json.loads(item["lineage"])["state"] == "Remind the approver"

    eventually(reminder_started, timeout=20, interval=0.05)

    # When the approver clicks at that moment
    status, reply = click(local, message, "approve")

    # Then the click is acknowledged approved, and that is what the workflow does
    assert (status, reply["status"]) == (200, "approved"), reply
    outcome = ended(local, execution_arn)
    assert (outcome.status, outcome.state) == ("SUCCEEDED", "Invoice paid"), outcome.entered()
    assert "Expire the approval request" not in outcome.entered()
    assert len(payments(local, "INV-8201")) == 1
    assert approvals_item(local, f"approval#{message.approval_id}")["status"] == "approved"
    [decision] = [r for r in ap_rows(local, "erp:INV-8201") if r["state"] == "Human decision"]
    assert decision["decision"] == "approved"


def test_payment_created_then_the_call_fails_is_cancelled(
    local: LocalProcess, seeded: dict[str, dict[str, Any]]
) -> None:
    # Given a clean invoice whose payment the processor creates, then answers with an error
    add_invoice(local, seeded, CLEAN_TEMPLATE, "INV-8301", "279.94")
    local.sandbox_faults({"payments": {"status": 402, "times": 1, "after_commit": True}})

    # When its webhook arrives
    accept(local, "INV-8301")

    # Then compensation finds the payment by the business key and cancels it
    outcome = ended(local, the_execution(local, "erp:INV-8301"))
    assert (outcome.status, outcome.state) == ("FAILED", "Payment failed: posting reversed")
    entered = outcome.entered()
    assert "Find the payment" in entered and "Cancel the payment" in entered, entered
    assert outcome.succeeded("Cancel the payment")
    # ... exactly one payment exists, cancelled, none live
    [intent] = payments(local, "INV-8301")
    assert intent["status"] == "canceled"
    assert intent["cancellation_reason"] == "abandoned"
    [posting] = postings(local, "INV-8301")
    assert [r for r in local.erp_postings()["reversals"] if r["posting_id"] == posting["posting_id"]]
    # ... and lineage closes the books as compensated, with the payment error's name
    rows = ap_rows(local, "erp:INV-8301")
    closing = next(r for r in rows if r["state"] == "Close the books")
    assert (closing["outcome"], closing["error"]) == ("compensated", "Connector.Rejected")
    assert "Find the payment" in {r["state"] for r in rows}


def test_lineage_of_a_failed_invoice_names_the_error(
    local: LocalProcess, seeded: dict[str, dict[str, Any]]
) -> None:
    # Given an invoice the ERP does not know (fetching it is refused permanently)
    # When its webhook arrives
    accept(local, "INV-8401")

    # Then the execution fails, and lineage's closing row says with which error and why
    outcome = ended(local, the_execution(local, "erp:INV-8401"))
    assert (outcome.status, outcome.state) == ("FAILED", "Invoice not processed")
    closing = next(r for r in ap_rows(local, "erp:INV-8401") if r["state"] == "Close the books")
    assert closing["outcome"] == "failed"
    assert closing["error"] == "Connector.Rejected"
    assert closing["error_cause"]
    assert "{" not in closing["error_cause"]


def test_every_lineage_time_has_one_format(local: LocalProcess, seeded: dict[str, dict[str, Any]]) -> None:
    # Given a paid invoice, with rows written by intake (ASL), the steps and the click
    add_invoice(local, seeded, OUTLIER_TEMPLATE, "INV-8501", "2463.88")
    accept(local, "INV-8501")
    message = approval_requested(local, "INV-8501")
    assert click(local, message, "approve")[0] == 200
    assert ended(local, the_execution(local, "erp:INV-8501")).state == "Invoice paid"

    # Then every recorded_at and sort key is AWS's EnteredTime format
    rows = local.lineage("erp:INV-8501")
    assert {r["workflow"] for r in rows} == {"intake", WORKFLOW}
    for row in rows:
        assert re.fullmatch(LINEAGE_TIME, row["recorded_at"]), row
        assert re.fullmatch(LINEAGE_TIME + "#.+", row["sk"]), row
    claim = approvals_item(local, "claim#erp:INV-8501")
    assert re.fullmatch(LINEAGE_TIME, claim["claimed_at"]), claim
    assert int(claim["expires_at"]) > 0


def test_a_click_after_the_invoice_failed_is_told_it_expired(
    local: LocalProcess, seeded: dict[str, dict[str, Any]]
) -> None:
    # Given an invoice waiting in Slack whose next ladder stage fails permanently
    add_invoice(local, seeded, OUTLIER_TEMPLATE, "INV-8601", "2477.13")
    accept(local, "INV-8601")
    message = approval_requested(local, "INV-8601")
    execution_arn = the_execution(local, "erp:INV-8601")
    local.set_faults({"approval-request": {"error": "Validation.Failed", "times": 1}})
    try:
        # When the workflow gives up on the invoice
        outcome = ended(local, execution_arn)
    finally:
        local.set_faults({})

    # Then it closed the approval request on its way out
    assert (outcome.status, outcome.state) == ("FAILED", "Invoice not processed")
    assert outcome.succeeded("Withdraw the approval request"), outcome.entered()
    assert approvals_item(local, f"approval#{message.approval_id}")["status"] == "expired"
    # ... so a later click is told so, instead of "approved" for a workflow that has ended
    status, reply = click(local, message, "approve")
    assert (status, reply["status"]) == (200, "expired")
    assert payments(local, "INV-8601") == []
