"""``POST /approvals/slack``: Slack's interactivity callback for the Approve / Reject buttons.

Order matters: the Slack signature is verified over the raw body (the same ``slack`` scheme
and secrets as webhooks: ``v0=`` HMAC over ``v0:{ts}:{body}``, 300 s tolerance, current and
previous secret) before anything is parsed. Then: the approval must exist (404), the user
must be one of its approvers (403, nothing changes), and one conditional write decides
(pending -> approved/rejected), so two concurrent clicks decide once, a click after the
expiry is told so, and a repeated click sends nothing to Step Functions.

That write is the decision: the approvals item is the single source of truth, and nothing
undoes it. The click is answered only after it is recorded, and every ladder stage and the
expiry step read the item first and follow a recorded decision (``aios.approvals.requests``).
Sending it to the waiting task (``SendTaskSuccess``, or ``SendTaskFailure``
``Approval.Rejected``, with the token the item holds) only makes the workflow move at once:
if the task has just timed out, or Step Functions cannot be reached, the next stage or the
expiry step acts on the recorded decision instead.
Afterwards the message is updated and the decision recorded in lineage; failures of those
are logged, not answered: the decision is already made.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aios.approvals.common import SlackPort, approver_ref, count, log_fields, send_decision
from aios.approvals.errors import InvalidInteraction, NotAnApprover, UnknownApproval
from aios.approvals.models import (
    DECISION_STATE,
    Approval,
    ClickOutcome,
    Decision,
    Status,
    utc_now_iso,
)
from aios.approvals.responder import TaskClosed, TaskResponder
from aios.approvals.store import ApprovalConflict, ApprovalStore
from aios.connectors.catalog import slack
from aios.connectors.catalog.slack import ApprovalId, UpdateDecision, UserId
from aios.lineage import LineageWriter, record_step
from aios.observability import logger
from aios.secrets import SecretUnavailable
from aios.webhooks.errors import TemporarilyUnavailable
from aios.webhooks.ingest import SecretSource
from aios.webhooks.request import WebhookRequest
from aios.webhooks.schemes import SCHEMES

#: The webhook source whose signing secret verifies Slack's requests.
SLACK_SOURCE = "slack"
_ACTIONS: dict[str, Decision] = {"approve": "approved", "reject": "rejected"}


class _User(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    id: UserId


class _Action(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    action_id: Literal["approve", "reject"]
    value: ApprovalId


class BlockActions(BaseModel):
    """The part of Slack's ``block_actions`` payload we use (the rest, including Slack's
    ``token`` and ``response_url``, is ignored and never logged)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["block_actions"]
    user: _User
    actions: Annotated[list[_Action], Field(min_length=1, max_length=1)]


class Click(BaseModel):
    model_config = ConfigDict(frozen=True)

    approval_id: str
    decision: Decision
    user_id: str


class InteractionReply(BaseModel):
    model_config = ConfigDict(frozen=True)

    status_code: int
    body: dict[str, Any]


def parse_click(body: bytes) -> Click:
    """``payload=<JSON>`` (form-encoded) -> the click; ``InvalidInteraction`` otherwise."""
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=True, max_num_fields=20)
        [raw] = form["payload"]
        payload = BlockActions.model_validate(json.loads(raw))
    except (ValueError, KeyError, RecursionError, ValidationError):
        # ValidationError is a ValueError; its text quotes the input: never chain or log it.
        raise InvalidInteraction("not a block_actions payload with one approve/reject action") from None
    action = payload.actions[0]
    return Click(approval_id=action.value, decision=_ACTIONS[action.action_id], user_id=payload.user.id)


class SlackInteractions:
    def __init__(
        self,
        *,
        secrets: SecretSource,
        store: ApprovalStore,
        responder: TaskResponder,
        slack_port: SlackPort = slack.handle,
        lineage: LineageWriter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.secrets = secrets
        self.store = store
        self.responder = responder
        self.slack = slack_port
        self.lineage = lineage
        self.clock = clock

    def verify(self, request: WebhookRequest) -> None:
        """``InvalidSignature`` unless Slack signed this body within the tolerance."""
        scheme = SCHEMES[SLACK_SOURCE]
        try:
            keys = [scheme.key(value) for value in self.secrets.get(SLACK_SOURCE).values()]
        except (SecretUnavailable, ValueError) as error:
            logger.error("slack signing secret unusable", extra={"reason": str(error)})
            raise TemporarilyUnavailable("signing secret unavailable") from None
        scheme.verify(request.headers, request.body, keys, self.clock())

    def handle(self, request: WebhookRequest) -> InteractionReply:
        self.verify(request)
        click = parse_click(request.body)
        approval = self.store.get(click.approval_id)
        if approval is None:
            raise UnknownApproval(f"no approval {click.approval_id}")
        fields = log_fields(approval.approval_id, approval.business_key, user=click.user_id)
        if click.user_id not in approval.allowed_approvers:
            logger.warning("approval click by a user who is not an approver", extra=fields)
            count("ApprovalClicksRefused")
            raise NotAnApprover(f"user {click.user_id} may not decide {approval.approval_id}")
        if approval.status is not Status.PENDING:
            return self._closed(approval)
        decided_at = utc_now_iso(self.clock())
        try:
            decided = self.store.decide(
                approval.approval_id, decision=click.decision, decided_by=click.user_id, now=decided_at
            )
        except ApprovalConflict as conflict:  # another click (or the expiry) came first
            if conflict.current is None:
                raise UnknownApproval(f"approval {click.approval_id} vanished") from None
            return self._closed(conflict.current)
        # Recorded: from here on this is the outcome; delivering it only saves waiting.
        self._deliver(decided, click)
        logger.info("approval decided", extra={**fields, "decision": click.decision})
        count("HumanApprovals" if click.decision == "approved" else "HumanRejections")
        self._record(decided, click, decided_at)
        self._update_message(decided, click.decision, click.user_id)
        return _reply(decided, ClickOutcome(click.decision))

    # -- steps -------------------------------------------------------------------------------

    def _closed(self, approval: Approval) -> InteractionReply:
        if approval.status is Status.EXPIRED:
            return _reply(approval, ClickOutcome.EXPIRED)
        return _reply(approval, ClickOutcome.ALREADY_DECIDED)

    def _deliver(self, decided: Approval, click: Click) -> None:
        """Send the recorded decision to the task waiting now, if any still is."""
        fields = log_fields(decided.approval_id, decided.business_key)
        if decided.task_token is None:
            return
        try:
            send_decision(self.responder, decided.token(), decided, click.user_id)
        except TaskClosed as closed:
            # The stage timed out as the click landed: the next stage (or the expiry) reads it.
            logger.info(
                "task closed; the next approval stage follows the decision",
                extra={**fields, "code": closed.code},
            )
            count("ApprovalDecisionsHeld")
            return
        except Exception as error:
            # Step Functions unreachable: the decision stands; the stage's end picks it up.
            logger.warning("decision recorded, not yet sent", extra={**fields, "error": type(error).__name__})
            count("ApprovalDecisionsHeld")
            return
        try:
            self.store.mark_delivered(decided.approval_id, now=utc_now_iso(self.clock()))
        except Exception as error:
            logger.warning("delivery not noted", extra={**fields, "error": type(error).__name__})

    def _record(self, decided: Approval, click: Click, decided_at: str) -> None:
        context = decided.lineage.model_copy(update={"state": DECISION_STATE, "entered_at": decided_at})
        request = {
            "approval_id": decided.approval_id,
            "action": click.decision,
            "user": approver_ref(click.user_id),
        }
        result = {
            "approval_id": decided.approval_id,
            "approver": approver_ref(click.user_id),
            "decision": click.decision,
        }
        try:
            record_step(context, request, result, writer=self.lineage)
        except Exception as error:
            logger.error(
                "decision lineage not written",
                extra=log_fields(decided.approval_id, decided.business_key, error=type(error).__name__),
            )

    def _update_message(
        self, approval: Approval, decision: Literal["approved", "rejected", "expired"], decided_by: str | None
    ) -> None:
        if approval.ts is None:
            return
        try:
            self.slack(
                UpdateDecision(
                    operation="update_decision",
                    business_key=approval.business_key,
                    channel=approval.channel,
                    ts=approval.ts,
                    decision=decision,
                    decided_by=decided_by,
                    invoice=approval.invoice,
                )
            )
        except Exception as error:
            logger.warning(
                "approval message not updated",
                extra=log_fields(approval.approval_id, approval.business_key, error=type(error).__name__),
            )


def _reply(approval: Approval, outcome: ClickOutcome) -> InteractionReply:
    body: dict[str, Any] = {"status": outcome.value, "approval_id": approval.approval_id}
    if outcome is ClickOutcome.ALREADY_DECIDED:
        body["decision"] = approval.status.value
    return InteractionReply(status_code=200, body=body)
