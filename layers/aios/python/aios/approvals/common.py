"""What both approval functions share: settings, the Slack port, the decision message."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from aios.approvals.models import Approval, Status
from aios.approvals.responder import TaskResponder
from aios.config import Settings
from aios.connectors.catalog.slack import MessageResult, PostApprovalRequest, PostReminder, UpdateDecision
from aios.errors import ApprovalRejected
from aios.observability import metrics
from aios.retention import retention_days

#: The approvals table's id in the platform description (its declared retention applies).
APPROVALS_TABLE_ID = "approvals"

SlackRequest = PostApprovalRequest | UpdateDecision | PostReminder
#: The Slack connector's logic, called in-process (``aios.connectors.catalog.slack.handle``).
SlackPort = Callable[[SlackRequest], MessageResult]


def _users(raw: str | None) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for user in (raw or "").split(","):
        if user.strip():
            seen[user.strip()] = None
    return tuple(seen)


@dataclass(frozen=True, slots=True)
class ApprovalConfig:
    """Where approvals are asked and who may decide (``AIOS_APPROVAL_CHANNEL``,
    ``AIOS_APPROVERS``, ``AIOS_ESCALATION_APPROVERS``), and how long the approvals table
    keeps an item (``AIOS_TABLE_RETENTION_DAYS``)."""

    channel: str
    approvers: tuple[str, ...]
    escalation_approvers: tuple[str, ...] = ()
    retention_days: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ApprovalConfig:
        approvers = _users(settings.require("approvers"))
        if not approvers:
            raise RuntimeError("AIOS_APPROVERS names no Slack user")
        return cls(
            channel=settings.require("approval_channel"),
            approvers=approvers,
            escalation_approvers=_users(settings.escalation_approvers),
            retention_days=retention_days(APPROVALS_TABLE_ID, settings),
        )

    def escalated(self, current: tuple[str, ...]) -> tuple[str, ...]:
        """``current`` plus the primary and escalation approvers, in order, without repeats."""
        return tuple(dict.fromkeys((*current, *self.approvers, *self.escalation_approvers)))


def approver_ref(user_id: str) -> str:
    return f"slack:{user_id}"


def send_decision(responder: TaskResponder, token: str, approval: Approval, decided_by: str) -> None:
    """The decision of ``approval`` (approved or rejected) to the waiting task ``token``."""
    approver = approver_ref(decided_by)
    if approval.status is Status.APPROVED:
        responder.succeed(
            token, {"decision": "approved", "approver": approver, "approval_id": approval.approval_id}
        )
    elif approval.status is Status.REJECTED:
        responder.fail(
            token,
            error=ApprovalRejected.error_name,
            cause={"approver": approver, "approval_id": approval.approval_id},
        )
    else:
        raise ValueError(f"approval {approval.approval_id} is {approval.status}, not decided")


def count(name: str) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def log_fields(approval_id: str, business_key: str, **extra: Any) -> dict[str, Any]:
    """Log fields of an approval: ids only (never the token, never the payload)."""
    return {"approval_id": approval_id, "business_key": business_key, **extra}
