"""The approval models: the stage event the workflow sends, the stored approval, and outcomes.

One approval per workflow execution: ``approval_id`` is derived from the execution ARN, so a
retried invocation finds the approval it created. The task token is a ``SecretStr`` wherever
it is held in memory (its ``repr`` and ``str`` are masked); it is stored only in the approvals
table and leaves the process only towards Step Functions.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from aios.connectors.catalog.slack import ApprovalId, ChannelId, InvoiceSummary, MessageTs, UserId
from aios.invoices import BusinessKey, CurrencyCode, Identifier, Money
from aios.lineage import LineageContext, lineage_time

#: The lineage state of a human decision (the click is not a state of the workflow).
DECISION_STATE = "Human decision"
#: Task tokens are at most 1024 characters (Step Functions API reference).
_MAX_TOKEN_CHARS = 1024


class Stage(StrEnum):
    REQUEST = "request"
    REMINDER = "reminder"
    ESCALATION = "escalation"
    EXPIRE = "expire"
    #: Plain invoke: the outcome recorded in the approvals table, for a stage that found
    #: the approval no longer pending (``Approval.Decided``).
    OUTCOME = "outcome"


class Status(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"


Decision = Literal["approved", "rejected"]
DECIDED: frozenset[Status] = frozenset({Status.APPROVED, Status.REJECTED})
#: Stages that wait for a task token; ``expire`` and ``outcome`` are plain invokes.
CALLBACK_STAGES: frozenset[Stage] = frozenset({Stage.REQUEST, Stage.REMINDER, Stage.ESCALATION})


def approval_id_for(execution: str) -> str:
    """``apr_`` + the first 32 hex digits of sha256(execution ARN): one per execution."""
    return "apr_" + hashlib.sha256(execution.encode()).hexdigest()[:32]


def utc_now_iso(now: float) -> str:
    """``2025-06-15T15:06:40.123Z``: the format of Step Functions' ``EnteredTime``, the one
    format of every time in lineage (``aios.lineage.lineage_time``)."""
    return lineage_time(now)


class InvoiceInput(BaseModel):
    """The invoice part of the stage event (unknown fields ignored: the workflow may pass more)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    invoice_id: Identifier
    vendor_name: Annotated[str, Field(min_length=1, max_length=256)]
    amount: Money
    currency: CurrencyCode
    due_date: Annotated[str, Field(max_length=64)] | None = None
    reason: Annotated[str, Field(max_length=500)] | None = None

    def summary(self) -> InvoiceSummary:
        return InvoiceSummary(
            invoice_id=self.invoice_id,
            vendor_name=self.vendor_name,
            amount=self.amount,
            currency=self.currency,
            due_date=self.due_date,
            reason=self.reason,
        )


class StageEvent(BaseModel):
    """What the accounts-payable workflow sends to ``approval-request``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    stage: Stage
    task_token: Annotated[SecretStr, Field(min_length=1, max_length=_MAX_TOKEN_CHARS)] | None = None
    business_key: BusinessKey
    invoice: InvoiceInput
    lineage: LineageContext

    @property
    def approval_id(self) -> str:
        return approval_id_for(self.lineage.execution)


class Approval(BaseModel):
    """An approval as the approvals table keeps it (item ``pk = approval#<approval_id>``)."""

    model_config = ConfigDict(frozen=True)

    approval_id: ApprovalId
    business_key: BusinessKey
    task_token: SecretStr | None = None
    allowed_approvers: tuple[UserId, ...]
    status: Status = Status.PENDING
    channel: ChannelId
    ts: MessageTs | None = None
    lineage: LineageContext
    invoice: InvoiceSummary
    #: ``<stage>#<entered_at>`` of each reminder/escalation posted; the index is its sequence.
    notices: tuple[str, ...] = ()
    decided_by: str | None = None
    decided_at: str | None = None
    #: Whether Step Functions accepted the decision (``SendTaskSuccess``/``Failure``).
    delivered: bool = False
    updated_at: str
    #: The TTL attribute (epoch seconds): the approvals table's declared retention.
    expires_at: int | None = None

    def token(self) -> str:
        if self.task_token is None:
            raise RuntimeError(f"approval {self.approval_id} holds no task token")
        return self.task_token.get_secret_value()


class StageResult(BaseModel):
    """What ``approval-request`` returns (Step Functions ignores it for callback stages)."""

    model_config = ConfigDict(frozen=True)

    approval_id: str
    status: Status
    decision: str | None = None


class ClickOutcome(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"
    ALREADY_DECIDED = "already_decided"
    EXPIRED = "expired"
