"""Accounts payable's part of the platform description: the approvals table, the policy and
approval functions, the Slack interactions endpoint, and the workflow itself."""

from __future__ import annotations

from aios import events
from aios.approvals import gauge, store
from aios.config import variable
from infrastructure.platform.spec import (
    Access,
    FunctionSpec,
    HttpRouteSpec,
    IndexSpec,
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
    env_var=variable("approvals_table"),
    partition_key=KeyAttribute(name="pk"),
    ttl_attribute="expires_at",
    # Longer than the bus archive keeps events (365 days), so a replayed Invoice Received
    # still finds its claim and fingerprint: every item carries expires_at from this.
    retention_days=400,
    indexes=(
        # Sparse: only pending approvals carry its key (aios.approvals.store); keys only,
        # so no task token is copied into it. The approvals gauge queries it every minute.
        IndexSpec(
            name=store.PENDING_INDEX,
            partition_key=KeyAttribute(name=store.PENDING_KEY),
            sort_key=KeyAttribute(name=store.REQUESTED_AT),
            projection="KEYS_ONLY",
        ),
    ),
)

#: Deployment choices of the approval policy; each step's delay is configurable here.
POLICY_ENVIRONMENT = {
    variable("auto_approval_limit"): "5000",
    variable("anomaly_threshold"): "0.5",
    variable("approval_reminder_seconds"): str(4 * 3600),
    variable("approval_escalation_seconds"): str(20 * 3600),
    variable("approval_expiry_seconds"): str(48 * 3600),
}

#: Who approves in Slack (channel and user ids; replace for a real workspace).
APPROVERS_ENVIRONMENT = {
    variable("approval_channel"): "C0AIOSAP01",
    variable("approvers"): "U0AIOSAP01",
    variable("escalation_approvers"): "U0AIOSCFO1",
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

APPROVALS_GAUGE = FunctionSpec(
    name=gauge.SERVICE,
    description="Every minute: approvals pending and the oldest one's age, as metrics (SLO alarm).",
    code="approvals_gauge",
    memory_mb=256,
    timeout_seconds=30,
    # Read only: a Query on the pending index (grant_read_data on this one table).
    tables={"approvals": Access.READ},
    # A gauge, not a step: it must keep reporting while executions are stuck.
    schedule="rate(1 minute)",
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
    # A step that fails after its retries fails the execution there (redrivable), before
    # "Close the books": invoice-policy writes the closing lineage row from the status change.
    on_failure=INVOICE_POLICY.name,
)

PAYABLES_FUNCTIONS = (INVOICE_POLICY, APPROVAL_REQUEST, SLACK_INTERACTIONS, APPROVALS_GAUGE)
APPROVALS_ROUTE = HttpRouteSpec(method="POST", path="/approvals/slack", function="slack-interactions")


def with_approval_ladder(platform: Platform, *, reminder: int, escalation: int, expiry: int) -> Platform:
    """``platform`` with other approval-ladder delays (seconds): how the demo and the e2e
    tests run the whole ladder in seconds without touching the ASL."""
    functions = tuple(
        function.model_copy(
            update={
                "environment": {
                    **function.environment,
                    variable("approval_reminder_seconds"): str(reminder),
                    variable("approval_escalation_seconds"): str(escalation),
                    variable("approval_expiry_seconds"): str(expiry),
                }
            }
        )
        if function.name == INVOICE_POLICY.name
        else function
        for function in platform.functions
    )
    return platform.model_copy(update={"functions": functions})
