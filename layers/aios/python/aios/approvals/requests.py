"""``approval-request``: the workflow's side of a human approval, one call per stage.

- ``request`` (``.waitForTaskToken``): create the approval (one per execution), post the
  Block Kit message once, keep the token in the approvals table.
- ``reminder`` / ``escalation`` (``.waitForTaskToken``): keep the new token, post in the
  request's thread; an escalation also lets the escalation approvers decide.
- ``expire`` (plain invoke): pending -> expired, the message shows it; when a decision is
  recorded instead, that decision is returned and the workflow follows it.
- ``outcome`` (plain invoke): the outcome recorded in the approvals table.

The approvals item is the single source of truth (``aios.approvals.store``). Every callback
stage first moves its token into the item with a write conditional on ``pending``; if the
approval is no longer pending (a click, or the expiry, is recorded) the stage fails at once
with ``Approval.Decided`` and the workflow reads the recorded outcome (``outcome``). So a
click that lands while the ladder moves on between stages is acted on by the next stage,
and never depends on a ``SendTaskSuccess`` racing the next task's start.

A retried invocation is harmless: the approval id derives from the execution, the message
is posted only while the approval has none, and each reminder is numbered by the time its
state was entered (the Slack connector posts each number once).

Connector errors propagate unchanged: the state machine's ``Retry`` decides.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import TypeAdapter

from aios.approvals.common import ApprovalConfig, SlackPort, count, log_fields
from aios.approvals.models import (
    CALLBACK_STAGES,
    DECIDED,
    Approval,
    Stage,
    StageEvent,
    StageResult,
    Status,
    utc_now_iso,
)
from aios.approvals.store import ApprovalConflict, ApprovalStore
from aios.connectors.catalog import slack
from aios.connectors.catalog.slack import MessageResult, PostApprovalRequest, PostReminder, UpdateDecision
from aios.connectors.kit import parse_request
from aios.errors import ApprovalDecided, ValidationFailed
from aios.lineage import TASK_TOKEN_KEY, LineageWriter, record_step, split_context
from aios.observability import logger
from aios.retention import expires_at

_EVENT: TypeAdapter[StageEvent] = TypeAdapter(StageEvent)
_PENDING = frozenset({Status.PENDING})


class ApprovalRequests:
    """Serves the five stages. Every dependency is injected (tests pass fakes)."""

    def __init__(
        self,
        *,
        store: ApprovalStore,
        config: ApprovalConfig,
        slack_port: SlackPort = slack.handle,
        lineage: LineageWriter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.config = config
        self.slack = slack_port
        self.lineage = lineage
        self.clock = clock

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """One stage; returns the JSON result and writes the step's lineage record."""
        parsed = parse_request(_EVENT, event)
        if parsed.stage in CALLBACK_STAGES and parsed.task_token is None:
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
            case Stage.OUTCOME:
                result, message = self.outcome(parsed), None
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

    def _new_approval(self, event: StageEvent, now: str) -> Approval:
        return Approval(
            approval_id=event.approval_id,
            business_key=event.business_key,
            task_token=event.task_token,
            allowed_approvers=self.config.approvers,
            channel=self.config.channel,
            lineage=event.lineage,
            invoice=event.invoice.summary(),
            updated_at=now,
            expires_at=expires_at(self.config.retention_days, self.clock()),
        )

    def request(self, event: StageEvent) -> tuple[StageResult, MessageResult | None]:
        token = _token(event)
        now = utc_now_iso(self.clock())
        approval = self._new_approval(event, now)
        if not self.store.create(approval):
            try:
                approval = self.store.renew(
                    event.approval_id, token=token, lineage=event.lineage, now=now, expected=_PENDING
                )
            except ApprovalConflict as conflict:
                raise self._not_pending(event, conflict) from None
        _, message = self._request_message(approval)
        return StageResult(approval_id=approval.approval_id, status=Status.PENDING), message

    def _request_message(self, approval: Approval) -> tuple[str, MessageResult | None]:
        """The request message's ts, posting it first when the approval has none. The Slack
        connector posts it once per approval id (a post still in flight elsewhere answers
        ``Connector.Unavailable``, which the stage's Retry waits out)."""
        if approval.ts is not None:
            return approval.ts, None
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
        return message.ts, message

    def notify(self, event: StageEvent) -> tuple[StageResult, MessageResult | None]:
        escalation = event.stage is Stage.ESCALATION
        notice = f"{event.stage}#{event.lineage.entered_at}"
        current = self.store.get(event.approval_id)
        if current is None:
            # The request stage never ran (its task timed out while its invocation waited,
            # e.g. behind cold starts): this stage creates the approval as it would have.
            self.store.create(self._new_approval(event, utc_now_iso(self.clock())))
            current = self.store.get(event.approval_id)
            count("ApprovalsCreatedByLaterStage")
        allowed = self.config.escalated(current.allowed_approvers if current else ()) if escalation else None
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
            raise self._not_pending(event, conflict) from None
        # The request stage may still be running, or never have run (its task timed out
        # first, e.g. a slow cold start): its message is then posted, or found, here rather
        # than failing the workflow.
        thread_ts, _ = self._request_message(approval)
        message = self.slack(
            PostReminder(
                operation="post_escalation" if escalation else "post_reminder",
                business_key=approval.business_key,
                channel=approval.channel,
                thread_ts=thread_ts,
                sequence=approval.notices.index(notice) if notice in approval.notices else 0,
                mention=self.config.escalation_approvers if escalation else self.config.approvers,
            )
        )
        count("ApprovalEscalations" if escalation else "ApprovalReminders")
        return StageResult(approval_id=approval.approval_id, status=Status.PENDING), message

    def expire(self, event: StageEvent) -> tuple[StageResult, MessageResult | None]:
        """Close the request, unless an outcome is already recorded: a decision is returned
        (``decision`` approved/rejected) and the workflow follows it. Never ``expired`` while
        the item holds a decision, whether or not it reached a task."""
        expired = StageResult(approval_id=event.approval_id, status=Status.EXPIRED, decision="expired")
        now = utc_now_iso(self.clock())
        try:
            approval = self.store.expire(event.approval_id, now=now, expected=_PENDING)
            count("ApprovalsExpired")
        except ApprovalConflict as conflict:
            if conflict.current is None:
                # No stage has run yet (their invocations still wait, e.g. behind cold starts,
                # and run after their tasks timed out, as Lambda runs them): the approval is
                # created expired, so a late stage finds it closed and posts no buttons that an
                # approver could answer after the workflow moved on (the soak met this: a click
                # told "approved" on an invoice already rejected as unanswered).
                closed = self._new_approval(event, now).model_copy(update={"status": Status.EXPIRED})
                if not self.store.create(closed):
                    return self.expire(event)  # a late stage created it just now: expire that one
                logger.warning(
                    "expire: no stage had created the approval",
                    extra=log_fields(event.approval_id, event.business_key),
                )
                count("ApprovalsExpiredBeforeRequest")
                return expired, None
            approval = conflict.current
            if approval.status in DECIDED:
                logger.info(
                    "expire: a recorded decision ends the ladder",
                    extra=log_fields(approval.approval_id, approval.business_key, status=approval.status),
                )
                return _recorded(approval), None
            # Already expired (a retried expiry): the message update below is idempotent.
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

    def outcome(self, event: StageEvent) -> StageResult:
        """The recorded outcome, for a stage that failed with ``Approval.Decided``."""
        approval = self.store.get(event.approval_id)
        if approval is None or approval.status is Status.PENDING:
            # Statuses never return to pending: a stage saw this approval decided or expired.
            state = "missing" if approval is None else "pending"
            raise ValidationFailed(f"approval {event.approval_id} is {state}: no outcome to follow")
        return _recorded(approval)

    # -- an approval that is no longer pending -------------------------------------------------

    def _not_pending(self, event: StageEvent, conflict: ApprovalConflict) -> Exception:
        """What a callback stage raises when its approval is no longer pending: the workflow
        catches ``Approval.Decided`` and follows the outcome the item records."""
        current = conflict.current
        if current is None:
            return ValidationFailed(f"approval {event.approval_id} does not exist (stage {event.stage})")
        logger.info(
            "approval stage found an outcome recorded: the workflow follows it",
            extra=log_fields(current.approval_id, current.business_key, status=current.status),
        )
        count("ApprovalsDecidedBetweenStages")
        return ApprovalDecided(f"approval {current.approval_id} is {current.status} (stage {event.stage})")


def _recorded(approval: Approval) -> StageResult:
    return StageResult(
        approval_id=approval.approval_id, status=approval.status, decision=approval.status.value
    )


def _token(event: StageEvent) -> str:
    if event.task_token is None:
        raise ValidationFailed(f"invalid request: ['task_token: missing for stage {event.stage}']")
    return event.task_token.get_secret_value()
