"""Accounts-payable policy: validate an invoice, decide who approves it, close its books.

Served by the ``invoice-policy`` function, one operation per workflow step:

- ``claim``: the first execution for a business key claims it (one conditional put); a
  retried claim by the same execution is still its own, any other execution is told who holds it;
- ``validate``: the invoice's schema and totals (a mismatch is ``Validation.Failed``), and
  whether it duplicates an earlier invoice (same vendor, amount, currency and date under
  another business key: flagged, not rejected — a human decides);
- ``decide``: ``auto`` for clean invoices under the auto-approval limit, ``human`` with the
  reasons otherwise, plus the approval ladder's delays;
- ``complete``: the outcome's metrics (automated completions, human completions, the
  automation ratio as the average of a 0/1 metric, compensations, cycle time), and for a
  failed or compensated invoice the error's name and message (for lineage);
- ``record_failure``: the closing lineage row of an execution that ended FAILED, TIMED_OUT or
  ABORTED before "Close the books" (a step failed after its retries: redrivable), from Step
  Functions' "Execution Status Change" event (``as_request``), with the error's name and cut
  cause, never the input.

Every item written to the approvals table carries ``expires_at`` from the table's declared
retention (``aios.retention``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from aios import clients
from aios.config import settings
from aios.errors import ValidationFailed
from aios.fingerprints import default_key, keyed_digest
from aios.invoices import BusinessKey, Invoice
from aios.lineage import LineageRecord, LineageWriter, default_writer, digest, failure, lineage_time
from aios.observability import metrics
from aios.retention import expires_at, retention_days
from aios.scoring import InvoiceFeatures

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

#: How far lines plus tax may differ from the gross amount (rounding), in major units.
TOTALS_TOLERANCE = Decimal("0.01")


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Claim(_Request):
    operation: Literal["claim"]
    business_key: BusinessKey
    execution: Annotated[str, Field(min_length=1, max_length=2048)]


class Validate(_Request):
    operation: Literal["validate"]
    business_key: BusinessKey
    invoice: Invoice


class ScoreInput(BaseModel):
    """One item of ``model-invoke``'s scores; ``score`` is ``None`` when the model could not
    answer (the workflow caught Model.Unavailable and decided without it)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    score: Annotated[float, Field(ge=0, le=1)] | None = None


class Decide(_Request):
    operation: Literal["decide"]
    business_key: BusinessKey
    invoice: Invoice
    duplicate_of: str | None = None
    score: ScoreInput


Outcome = Literal["paid", "rejected", "expired", "compensated", "invalid", "failed"]


class StepError(BaseModel):
    """What a ``Catch`` put in ``ResultPath`` (``{"Error": ..., "Cause": ...}``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    Error: Annotated[str, Field(max_length=256)]
    Cause: str | None = None


class Complete(_Request):
    operation: Literal["complete"]
    business_key: BusinessKey
    outcome: Outcome
    route: Literal["auto", "human"] | None = None
    received_at: datetime | None = None
    error: StepError | None = None


#: Step Functions' event for an execution's status (https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html).
STATUS_CHANGE_SOURCE, STATUS_CHANGE_DETAIL_TYPE = "aws.states", "Step Functions Execution Status Change"
#: The workflow whose executions ``record_failure`` closes, and the state its row names: the
#: failing state is not in the event (only in the history, which would need another grant).
WORKFLOW = "accounts-payable"
FAILED_STATE = "Execution failed"
#: The errors of the Fail states the workflow reaches only after "Close the books" recorded
#: the outcome (tests/unit/test_failure_lineage.py checks them against the ASL): closed already.
CLOSED_ERRORS = frozenset({"Invoice.Compensated", "Invoice.NotProcessed"})
FailureOutcome = Literal["failed", "timed_out", "aborted"]
_OUTCOMES: dict[str, FailureOutcome] = {"FAILED": "failed", "TIMED_OUT": "timed_out", "ABORTED": "aborted"}


class ExecutionStatusChange(BaseModel):
    """The ``detail`` of a status change event: what ``DescribeExecution`` answers, dates in
    epoch milliseconds, ``input`` a JSON string (left out when too large)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    # AWS's field names, as the event spells them.
    executionArn: Annotated[str, Field(min_length=1, max_length=2048)]
    stateMachineArn: Annotated[str, Field(min_length=1, max_length=2048)]
    status: Literal["FAILED", "TIMED_OUT", "ABORTED"]
    stopDate: int | float | str
    input: str | None = None
    error: Annotated[str, Field(max_length=256)] | None = None
    cause: str | None = None


class RecordFailure(_Request):
    operation: Literal["record_failure"]
    detail: ExecutionStatusChange


Request = Annotated[Claim | Validate | Decide | Complete | RecordFailure, Field(discriminator="operation")]
REQUEST: TypeAdapter[Claim | Validate | Decide | Complete | RecordFailure] = TypeAdapter(Request)


def as_request(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """A workflow step's payload as it is; Step Functions' status change event (the failure
    rule's delivery, the whole event) as the ``record_failure`` operation."""
    if event.get("source") == STATUS_CHANGE_SOURCE and event.get("detail-type") == STATUS_CHANGE_DETAIL_TYPE:
        return {"operation": "record_failure", "detail": event.get("detail")}
    return event


class Claimed(BaseModel):
    business_key: str
    claimed: bool
    #: The execution that holds the claim (this one when ``claimed``).
    execution: str


class Validated(BaseModel):
    business_key: str
    outcome: Literal["valid"] = "valid"
    duplicate_of: str | None = None
    #: What the anomaly model scores, as ``model-invoke`` takes it.
    features: InvoiceFeatures


class Ladder(BaseModel):
    remind_after_seconds: int
    escalate_after_seconds: int
    expire_after_seconds: int


class ApprovalSummary(BaseModel):
    """What the approver sees: no account data, no personal data."""

    invoice_id: str
    vendor_name: str
    amount: Decimal
    currency: str
    due_date: str | None
    reason: str


class Decision(BaseModel):
    business_key: str
    route: Literal["auto", "human"]
    reasons: list[str]
    ladder: Ladder
    summary: ApprovalSummary
    decision: Literal["auto-approved", "needs-approval"]


class Completed(BaseModel):
    business_key: str
    outcome: Outcome
    route: Literal["auto", "human"] | None
    error: str | None = None
    error_cause: str | None = None


class FailureRecorded(BaseModel):
    execution: str
    recorded: bool
    business_key: str | None = None
    outcome: FailureOutcome | None = None
    error: str | None = None
    error_cause: str | None = None


class Policy(BaseModel):
    """The deployment's thresholds (function environment, one place: the description)."""

    auto_approval_limit: Decimal
    anomaly_threshold: float
    ladder: Ladder

    @classmethod
    def from_settings(cls) -> Policy:
        config = settings()
        return cls(
            auto_approval_limit=Decimal(config.require("auto_approval_limit")),
            anomaly_threshold=float(config.require("anomaly_threshold")),
            ladder=Ladder(
                remind_after_seconds=int(config.require("approval_reminder_seconds")),
                escalate_after_seconds=int(config.require("approval_escalation_seconds")),
                expire_after_seconds=int(config.require("approval_expiry_seconds")),
            ),
        )


class FingerprintStore:
    """First-seen business key per invoice fingerprint, and the execution that claimed each
    invoice (approvals table, conditional puts, each item with the table's TTL)."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient | None = None,
        *,
        retention: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.table_name = table_name
        self._client = client or clients.dynamodb()
        self.retention = retention
        self.clock = clock

    def _ttl(self) -> dict[str, AttributeValueTypeDef]:
        ttl = expires_at(self.retention, self.clock())
        return {} if ttl is None else {"expires_at": {"N": str(ttl)}}

    def claim(self, business_key: str, execution: str) -> str:
        """The execution holding the claim on ``business_key`` (``execution`` if it is new)."""
        key = {"pk": {"S": f"claim#{business_key}"}}
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item={
                    **key,
                    "execution": {"S": execution},
                    "claimed_at": {"S": lineage_time(self.clock())},
                    **self._ttl(),
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            item = self._client.get_item(TableName=self.table_name, Key=key, ConsistentRead=True)["Item"]
            return item["execution"]["S"]
        return execution

    def first_seen(self, fingerprint: str, business_key: str) -> str:
        """The business key that first had this fingerprint (``business_key`` if none)."""
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item={
                    "pk": {"S": f"fingerprint#{fingerprint}"},
                    "business_key": {"S": business_key},
                    **self._ttl(),
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            item = self._client.get_item(
                TableName=self.table_name,
                Key={"pk": {"S": f"fingerprint#{fingerprint}"}},
                ConsistentRead=True,
            )["Item"]
            return item["business_key"]["S"]
        return business_key


def fingerprint(invoice: Invoice, key: bytes) -> str:
    """Same vendor, gross amount, currency and date: what a re-sent or re-keyed invoice keeps.

    Keyed (HMAC under the fingerprint key, ``aios.fingerprints``): a plain hash of these few,
    guessable fields would let a reader of the approvals table test which vendor billed what.
    """
    parts = (invoice.vendor_id, f"{invoice.amount:.2f}", invoice.currency, invoice.invoice_date.isoformat())
    return keyed_digest(key, "|".join(parts))


def features(invoice: Invoice) -> InvoiceFeatures:
    """The model's features. Vendor context the ERP did not send falls back to values that
    describe this invoice itself (neutral for the model), never to zeros."""
    gross = float(invoice.amount)
    tax = float(invoice.tax_amount)
    own_tax_rate = tax / (gross - tax) if gross > tax else 0.0
    return InvoiceFeatures(
        amount=gross,
        tax_amount=tax,
        currency=invoice.currency,
        invoice_date=invoice.invoice_date.isoformat(),
        vendor_currency=invoice.vendor_currency or invoice.currency,
        vendor_tax_rate=invoice.vendor_tax_rate
        if invoice.vendor_tax_rate is not None
        else min(own_tax_rate, 0.99),
        vendor_mean_log_amount=(
            invoice.vendor_mean_log_amount if invoice.vendor_mean_log_amount is not None else math.log(gross)
        ),
        vendor_std_log_amount=invoice.vendor_std_log_amount
        if invoice.vendor_std_log_amount is not None
        else 1.0,
        vendor_invoice_count=float(invoice.vendor_invoice_count or 0),
        bank_account_changed=bool(invoice.bank_account_changed),
        days_since_last_invoice=invoice.days_since_last_invoice,
        days_since_similar_invoice=invoice.days_since_similar_invoice,
        similar_invoice_number_similarity=invoice.similar_invoice_number_similarity,
    )


def validate(
    request: Validate, store: FingerprintStore, *, key: Callable[[], bytes] | None = None
) -> Validated:
    """``key``: the fingerprint key (default: this function's, from its secret)."""
    invoice = request.invoice
    if invoice.business_key != request.business_key:
        raise ValidationFailed("invoice business key does not match the workflow's")
    if invoice.amount <= 0:
        raise ValidationFailed("invoice amount must be positive")
    if invoice.lines:
        lines_total = sum((line.amount for line in invoice.lines), Decimal(0))
        if abs(lines_total + invoice.tax_amount - invoice.amount) > TOTALS_TOLERANCE:
            raise ValidationFailed("invoice totals do not add up: lines plus tax differ from the amount")
    first = store.first_seen(fingerprint(invoice, (key or default_key().value)()), request.business_key)
    return Validated(
        business_key=request.business_key,
        duplicate_of=first if first != request.business_key else None,
        features=features(invoice),
    )


def decide(request: Decide, policy: Policy) -> Decision:
    invoice = request.invoice
    reasons: list[str] = []
    if request.score.score is None:
        reasons.append("anomaly model unavailable")
    elif request.score.score >= policy.anomaly_threshold:
        reasons.append(f"anomaly score {request.score.score:.2f}")
    if request.duplicate_of:
        reasons.append(f"possible duplicate of {request.duplicate_of}")
    if invoice.amount > policy.auto_approval_limit:
        reasons.append(f"amount above the auto-approval limit of {policy.auto_approval_limit}")
    route: Literal["auto", "human"] = "human" if reasons else "auto"
    return Decision(
        business_key=request.business_key,
        route=route,
        reasons=reasons,
        ladder=policy.ladder,
        decision="needs-approval" if reasons else "auto-approved",
        summary=ApprovalSummary(
            invoice_id=invoice.invoice_id,
            vendor_name=invoice.vendor_name,
            amount=invoice.amount,
            currency=invoice.currency,
            due_date=invoice.due_date.isoformat() if invoice.due_date else None,
            reason="; ".join(reasons) or "clean",
        ),
    )


def complete(request: Complete, *, now: datetime | None = None) -> Completed:
    """Count the outcome. ``AutomationRatio`` is 1 for an invoice paid without a human and
    0 for one a human decided: its CloudWatch average is the automation ratio."""
    metrics.add_metric(name=f"Invoices{request.outcome.capitalize()}", unit=MetricUnit.Count, value=1)
    if request.outcome == "compensated":
        metrics.add_metric(name="Compensations", unit=MetricUnit.Count, value=1)
    if request.route == "auto" and request.outcome == "paid":
        metrics.add_metric(name="AutomatedCompletions", unit=MetricUnit.Count, value=1)
    if request.route is not None:
        metrics.add_metric(
            name="AutomationRatio", unit=MetricUnit.Count, value=1 if request.route == "auto" else 0
        )
    if request.route == "human":
        metrics.add_metric(name="HumanCompletions", unit=MetricUnit.Count, value=1)
    if request.received_at is not None:
        elapsed = ((now or datetime.now(UTC)) - request.received_at).total_seconds()
        metrics.add_metric(name="CycleTimeSeconds", unit=MetricUnit.Seconds, value=max(0.0, elapsed))
    error, cause = failure(request.error.Error, request.error.Cause) if request.error else (None, None)
    return Completed(
        business_key=request.business_key,
        outcome=request.outcome,
        route=request.route,
        error=error,
        error_cause=cause,
    )


def _business_key(execution_input: str | None) -> str | None:
    """``$.detail.business_key`` of the execution's input (the Invoice Received event)."""
    try:
        parsed = json.loads(execution_input or "")
    except ValueError:
        return None
    detail = parsed.get("detail") if isinstance(parsed, dict) else None
    key = detail.get("business_key") if isinstance(detail, dict) else None
    return key if isinstance(key, str) and key else None


def failure_record(change: ExecutionStatusChange) -> LineageRecord | None:
    """The closing row of an unsuccessful execution: keyed by the execution and its stop time,
    so a redelivered event writes the same row and a later run (a redrive, a replay) its own,
    later one. ``None``: the execution closed its books itself, or its input (too large for
    the event) does not name the invoice."""
    if change.status == "FAILED" and change.error in CLOSED_ERRORS:
        return None
    business_key = _business_key(change.input)
    if business_key is None:
        return None
    stopped = change.stopDate
    at = lineage_time(stopped / 1000 if isinstance(stopped, int | float) else stopped)
    error, cause = failure(change.error, change.cause)
    return LineageRecord(
        pk=change.executionArn,
        sk=f"{at}#{FAILED_STATE}",
        business_key=business_key,
        recorded_at=at,
        workflow=WORKFLOW,
        state=FAILED_STATE,
        # A digest of what the execution was started with: never the input itself.
        input_digest=digest(json.loads(change.input or "null")),
        outcome=_OUTCOMES[change.status],
        error=error,
        error_cause=cause,
    )


def record_failure(request: RecordFailure, writer: LineageWriter | None = None) -> FailureRecorded:
    change = request.detail
    record = failure_record(change)
    if record is None:
        return FailureRecorded(execution=change.executionArn, recorded=False)
    (writer or default_writer()).write(record)
    return FailureRecorded(
        execution=change.executionArn,
        recorded=True,
        business_key=record.business_key,
        outcome=_OUTCOMES[change.status],
        error=record.error,
        error_cause=record.error_cause,
    )


def claim(request: Claim, store: FingerprintStore) -> Claimed:
    holder = store.claim(request.business_key, request.execution)
    return Claimed(business_key=request.business_key, claimed=holder == request.execution, execution=holder)


@cache
def default_store() -> FingerprintStore:
    config = settings()
    return FingerprintStore(config.require("approvals_table"), retention=retention_days("approvals", config))


def handle(request: Claim | Validate | Decide | Complete | RecordFailure) -> BaseModel:
    match request:
        case Claim():
            return claim(request, default_store())
        case Validate():
            return validate(request, default_store())
        case Decide():
            return decide(request, Policy.from_settings())
        case Complete():
            return complete(request)
        case RecordFailure():
            return record_failure(request)
