"""Accounts payable's part of the platform description: the approvals table, the policy and
approval functions, the Slack interactions endpoint, and the workflow itself."""

from __future__ import annotations

from aios import events
from aios.config import EnvVar
from infrastructure.platform.model import (
    Access,
    FunctionSpec,
    HttpRouteSpec,
    KeyAttribute,
    Platform,
    TableSpec,
    TriggerSpec,
    WorkflowSpec,
)

APPROVALS = TableSpec(
    id="approvals",
    description=(
        "pk 'approval#<approval id>': the pending approval (task token, allowed approvers, Slack "
        "message); pk 'claim#<business key>': the execution working on an invoice; pk "
        "'fingerprint#<hmac-sha256>': the first invoice with a vendor/amount/date (duplicate check)."
    ),
    env_var=EnvVar.APPROVALS_TABLE,
    partition_key=KeyAttribute(name="pk"),
    ttl_attribute="expires_at",
    # Longer than the bus archive keeps events (365 days), so a replayed Invoice Received
    # still finds its claim and fingerprint: every item carries expires_at from this.
    retention_days=400,
)

#: Deployment choices of the approval policy; each step's delay is configurable here.
POLICY_ENVIRONMENT = {
    EnvVar.AUTO_APPROVAL_LIMIT.value: "5000",
    EnvVar.ANOMALY_THRESHOLD.value: "0.5",
    EnvVar.APPROVAL_REMINDER_SECONDS.value: str(4 * 3600),
    EnvVar.APPROVAL_ESCALATION_SECONDS.value: str(20 * 3600),
    EnvVar.APPROVAL_EXPIRY_SECONDS.value: str(48 * 3600),
}

#: Who approves in Slack (channel and user ids; replace for a real workspace).
APPROVERS_ENVIRONMENT = {
    EnvVar.APPROVAL_CHANNEL.value: "C0AIOSAP01",
    EnvVar.APPROVERS.value: "U0AIOSAP01",
    EnvVar.ESCALATION_APPROVERS.value: "U0AIOSCFO1",
}

#: The approvals, lineage, and what the in-process Slack connector needs (idempotency, breaker).
_SLACK_STEP_TABLES = {
    "approvals": Access.READ_WRITE,
    "lineage": Access.WRITE,
    "idempotency": Access.READ_WRITE,
    "circuit": Access.READ_WRITE,
}

INVOICE_POLICY = FunctionSpec(
    name="invoice-policy",
    description="Accounts-payable policy: validate, decide automatic or human, close the books.",
    code="invoice_policy",
    memory_mb=512,
    timeout_seconds=30,
    tables={"approvals": Access.READ_WRITE, "lineage": Access.WRITE},
    environment=POLICY_ENVIRONMENT,
    # Duplicate fingerprints are keyed (aios.fingerprints).
    fingerprint_key=True,
)

APPROVAL_REQUEST = FunctionSpec(
    name="approval-request",
    description="Posts approval requests, reminders and escalations to Slack; keeps task tokens server-side.",
    code="approval_request",
    memory_mb=512,
    timeout_seconds=30,
    tables=_SLACK_STEP_TABLES,
    credentials="slack",
    environment=APPROVERS_ENVIRONMENT,
    # Sends no task responses: a stage that finds a decision recorded fails with
    # Approval.Decided and the workflow follows the approvals item.
)

SLACK_INTERACTIONS = FunctionSpec(
    name="slack-interactions",
    description="POST /approvals/slack: verifies Slack's signature, records the decision, answers the task.",
    code="slack_interactions",
    memory_mb=512,
    timeout_seconds=10,
    tables=_SLACK_STEP_TABLES,
    credentials="slack",
    # Slack signs interactions with the app's signing secret, the one its Events API uses.
    webhook_secrets=("slack",),
    answers_workflows=("accounts-payable",),
)

ACCOUNTS_PAYABLE = WorkflowSpec(
    name="accounts-payable",
    description="Fetch, validate, score, decide, approve in Slack, post, pay; compensate on failure.",
    asl="accounts-payable.asl.json",
    type="STANDARD",
    trigger=TriggerSpec(
        description="Every invoice intake announced.",
        event_pattern={"source": [events.INVOICES_SOURCE], "detail-type": [events.INVOICE_RECEIVED]},
    ),
    # The claim is invoice-policy's (it stamps the table's TTL): the workflow touches no table.
    functions=("erp-connector", "payments-connector", "invoice-policy", "model-invoke", "approval-request"),
    put_events=True,
)

PAYABLES_FUNCTIONS = (INVOICE_POLICY, APPROVAL_REQUEST, SLACK_INTERACTIONS)
APPROVALS_ROUTE = HttpRouteSpec(method="POST", path="/approvals/slack", function="slack-interactions")


def with_approval_ladder(platform: Platform, *, reminder: int, escalation: int, expiry: int) -> Platform:
    """``platform`` with other approval-ladder delays (seconds): how the demo and the e2e
    tests run the whole ladder in seconds without touching the ASL."""
    functions = tuple(
        function.model_copy(
            update={
                "environment": {
                    **function.environment,
                    EnvVar.APPROVAL_REMINDER_SECONDS.value: str(reminder),
                    EnvVar.APPROVAL_ESCALATION_SECONDS.value: str(escalation),
                    EnvVar.APPROVAL_EXPIRY_SECONDS.value: str(expiry),
                }
            }
        )
        if function.name == INVOICE_POLICY.name
        else function
        for function in platform.functions
    )
    return platform.model_copy(update={"functions": functions})
