"""``approval-request``: the workflow's side of a human approval, one call per stage.

- ``request`` (``.waitForTaskToken``): create the approval (one per execution), post the
  Block Kit message once, keep the token in the approvals table.
- ``reminder`` / ``escalation`` (``.waitForTaskToken``): keep the new token, post in the
  request's thread; an escalation also lets the escalation approvers decide.
- ``expire`` (plain invoke): pending -> expired, the message shows it.

A retried invocation is harmless: the approval id derives from the execution, the message
is posted only while the approval has none, and each reminder is numbered by the time its
state was entered (the Slack connector posts each number once). If a human decided while no
token was valid (between a stage's timeout and the next stage), the next stage delivers that
decision to its own token at once.

Connector errors propagate unchanged: the state machine's ``Retry`` decides.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import TypeAdapter

from aios.approvals.common import (
    ApprovalConfig,
    SlackPort,
    count,
    log_fields,
    send_decision,
)
from aios.approvals.models import (
    DECIDED,
    Approval,
    Stage,
    StageEvent,
    StageResult,
    Status,
    utc_now_iso,
)
from aios.approvals.responder import TaskResponder
from aios.approvals.store import ApprovalConflict, ApprovalStore
from aios.connectors.catalog import slack
from aios.connectors.catalog.slack import MessageResult, PostApprovalRequest, PostReminder, UpdateDecision
from aios.connectors.kit import parse_request
from aios.errors import ValidationFailed
from aios.lineage import TASK_TOKEN_KEY, LineageWriter, record_step, split_context
from aios.observability import logger

_EVENT: TypeAdapter[StageEvent] = TypeAdapter(StageEvent)
_PENDING = frozenset({Status.PENDING})


class ApprovalRequests:
    """Serves the four stages. Every dependency is injected (tests pass fakes)."""

    def __init__(
        self,
        *,
        store: ApprovalStore,
        responder: TaskResponder,
        config: ApprovalConfig,
        slack_port: SlackPort = slack.handle,
        lineage: LineageWriter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.responder = responder
        self.config = config
        self.slack = slack_port
        self.lineage = lineage
        self.clock = clock

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """One stage; returns the JSON result and writes the step's lineage record."""
        parsed = parse_request(_EVENT, event)
        if parsed.stage is not Stage.EXPIRE and parsed.task_token is None:
            raise ValidationFailed(f"invalid request: ['task_token: missing for stage {parsed.stage}']")
        logger.info(
            "approval stage", extra=log_fields(parsed.approval_id, parsed.business_key, stage=parsed.stage)
        )
        match parsed.stage:
            case Stage.REQUEST:
                result, message = self.request(parsed)
            case Stage.REMINDER | Stage.ESCALATION:
                result, message = self.notify(parsed)
            case Stage.EXPIRE:
                result, message = self.expire(parsed)
        output = result.model_dump(mode="json", exclude_none=True)
        request, context = split_context(event)
        request.pop(TASK_TOKEN_KEY, None)
        provenance = (
            {"connector": message.connector, "connector_version": message.connector_version}
            if message is not None
            else {}
        )
        record_step(context, request, {**output, **provenance}, writer=self.lineage)
        return output

    # -- stages ------------------------------------------------------------------------------

    def request(self, event: StageEvent) -> tuple[StageResult, MessageResult | None]:
        token = _token(event)
        now = utc_now_iso(self.clock())
        approval = Approval(
            approval_id=event.approval_id,
            business_key=event.business_key,
            task_token=event.task_token,
            allowed_approvers=self.config.approvers,
            channel=self.config.channel,
            lineage=event.lineage,
            invoice=event.invoice.summary(),
            updated_at=now,
        )
        if not self.store.create(approval):
            try:
                approval = self.store.renew(
                    event.approval_id, token=token, lineage=event.lineage, now=now, expected=_PENDING
                )
            except ApprovalConflict as conflict:
                return self._not_pending(event, conflict), None
        message = None
        if approval.ts is None:
            message = self.slack(
                PostApprovalRequest(
                    operation="post_approval_request",
                    business_key=approval.business_key,
                    approval_id=approval.approval_id,
                    channel=approval.channel,
                    invoice=approval.invoice,
                )
            )
            self.store.set_message(approval.approval_id, ts=message.ts, now=utc_now_iso(self.clock()))
        return StageResult(approval_id=approval.approval_id, status=Status.PENDING), message

    def notify(self, event: StageEvent) -> tuple[StageResult, MessageResult | None]:
        escalation = event.stage is Stage.ESCALATION
        notice = f"{event.stage}#{event.lineage.entered_at}"
        allowed = None
        if escalation:
            current = self.store.get(event.approval_id)
            allowed = self.config.escalated(current.allowed_approvers if current else ())
        try:
            approval = self.store.renew(
                event.approval_id,
                token=_token(event),
                lineage=event.lineage,
                now=utc_now_iso(self.clock()),
                expected=_PENDING,
                notice=notice,
                allowed=allowed,
            )
        except ApprovalConflict as conflict:
            return self._not_pending(event, conflict), None
        if approval.ts is None:
            raise ValidationFailed(f"approval {approval.approval_id} has no request message to remind of")
        message = self.slack(
            PostReminder(
                operation="post_escalation" if escalation else "post_reminder",
                business_key=approval.business_key,
                channel=approval.channel,
                thread_ts=approval.ts,
                sequence=approval.notices.index(notice) if notice in approval.notices else 0,
                mention=self.config.escalation_approvers if escalation else self.config.approvers,
            )
        )
        count("ApprovalEscalations" if escalation else "ApprovalReminders")
        return StageResult(approval_id=approval.approval_id, status=Status.PENDING), message

    def expire(self, event: StageEvent) -> tuple[StageResult, MessageResult | None]:
        """Close the request, unless a decision arrived while the last stage timed out: that
        decision is returned (``decision`` approved/rejected) and the workflow follows it."""
        expired = StageResult(approval_id=event.approval_id, status=Status.EXPIRED, decision="expired")
        try:
            approval = self.store.expire(
                event.approval_id, now=utc_now_iso(self.clock()), expected=frozenset({Status.PENDING})
            )
            count("ApprovalsExpired")
        except ApprovalConflict as conflict:
            if conflict.current is None:
                logger.warning("expire: no approval", extra=log_fields(event.approval_id, event.business_key))
                return expired, None
            approval = conflict.current
            if approval.status in DECIDED and not approval.delivered:
                self.store.mark_delivered(approval.approval_id, now=utc_now_iso(self.clock()))
                logger.info(
                    "expire: a held decision ends the ladder",
                    extra=log_fields(approval.approval_id, approval.business_key, status=approval.status),
                )
                held = StageResult(
                    approval_id=approval.approval_id, status=approval.status, decision=approval.status.value
                )
                return held, None
            if approval.status is not Status.EXPIRED:
                logger.warning(
                    "expire: decision already delivered",
                    extra=log_fields(approval.approval_id, approval.business_key, status=approval.status),
                )
                return expired, None
        if approval.ts is None:
            return expired, None
        message = self.slack(
            UpdateDecision(
                operation="update_decision",
                business_key=approval.business_key,
                channel=approval.channel,
                ts=approval.ts,
                decision="expired",
                invoice=approval.invoice,
            )
        )
        return expired, message

    # -- a decision made while no token was valid ------------------------------------------------

    def _not_pending(self, event: StageEvent, conflict: ApprovalConflict) -> StageResult:
        current = conflict.current
        if current is None:
            raise ValidationFailed(f"approval {event.approval_id} does not exist (stage {event.stage})")
        fields = log_fields(current.approval_id, current.business_key, status=current.status)
        if current.status in DECIDED and not current.delivered and current.decided_by:
            token = _token(event)
            self.store.renew(
                current.approval_id,
                token=token,
                lineage=event.lineage,
                now=utc_now_iso(self.clock()),
                expected=DECIDED,
            )
            send_decision(self.responder, token, current, current.decided_by)
            self.store.mark_delivered(current.approval_id, now=utc_now_iso(self.clock()))
            logger.info("approval: earlier decision delivered to this stage's task", extra=fields)
        else:
            # Expired (or delivered): nothing to wait for; this task times out into the next stage.
            logger.warning("approval stage found the approval no longer pending", extra=fields)
        return StageResult(approval_id=current.approval_id, status=current.status)


def _token(event: StageEvent) -> str:
    if event.task_token is None:
        raise ValidationFailed(f"invalid request: ['task_token: missing for stage {event.stage}']")
    return event.task_token.get_secret_value()
