"""approval-request stages with fakes: request, retry, reminder, escalation, expire."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aios.approvals.models import Status, approval_id_for
from aios.connectors.catalog.slack import PostApprovalRequest, PostReminder, UpdateDecision
from aios.errors import ApprovalDecided, ConnectorThrottled, ValidationFailed
from tests.unit.approvals.approval_fakes import (
    APPROVER,
    APPROVER_2,
    ESCALATION,
    EXECUTION,
    TOKEN,
    TOKEN_2,
    TOKEN_3,
    stage_event,
)
from tests.unit.approvals.conftest import LogLines, World

APPROVAL_ID = approval_id_for(EXECUTION)


def test_approval_id_is_derived_from_the_execution() -> None:
    assert APPROVAL_ID.startswith("apr_")
    assert len(APPROVAL_ID) == 36
    assert approval_id_for(EXECUTION) == APPROVAL_ID
    assert approval_id_for(EXECUTION + "-2") != APPROVAL_ID


@given(token=st.text(min_size=1, max_size=1024), execution=st.text(min_size=1, max_size=200))
def test_approval_id_never_contains_the_token(token: str, execution: str) -> None:
    approval_id = approval_id_for(execution)
    assert approval_id != token
    if len(token) > 4:
        assert token not in approval_id


def test_request_stores_the_token_and_posts_once(world: World) -> None:
    # Given a request stage, When it runs
    result = world.requests.handle(stage_event("request"))

    # Then the approval waits with the token, and the message carries only the approval id
    assert result == {"approval_id": APPROVAL_ID, "status": "pending"}
    approval = world.store.items[APPROVAL_ID]
    assert approval.token() == TOKEN
    assert approval.status is Status.PENDING
    assert approval.allowed_approvers == (APPROVER, APPROVER_2)
    assert approval.ts is not None
    assert approval.lineage.state == "Approval request"
    [posted] = world.slack.requests
    assert isinstance(posted, PostApprovalRequest)
    assert posted.approval_id == APPROVAL_ID
    assert str(posted.invoice.amount) == "12500.5"
    assert TOKEN not in world.slack.dumped()


def test_retried_request_does_not_repost_and_keeps_the_token(world: World) -> None:
    world.requests.handle(stage_event("request"))
    first_ts = world.store.items[APPROVAL_ID].ts

    world.requests.handle(stage_event("request", TOKEN_2))

    assert len(world.slack.requests) == 1
    assert world.store.items[APPROVAL_ID].ts == first_ts
    assert world.store.items[APPROVAL_ID].token() == TOKEN_2


def test_request_retried_after_a_failed_post_posts(world: World) -> None:
    world.slack.fail_with = ConnectorThrottled("429", connector="slack")
    with pytest.raises(ConnectorThrottled):  # propagates unchanged: the state machine retries
        world.requests.handle(stage_event("request"))
    assert world.store.items[APPROVAL_ID].ts is None

    world.slack.fail_with = None
    world.requests.handle(stage_event("request"))

    assert len(world.slack.requests) == 1
    assert world.store.items[APPROVAL_ID].ts is not None


def test_stage_writes_lineage_without_the_token(world: World) -> None:
    world.requests.handle(stage_event("request"))

    [record] = world.lineage.records
    assert record.pk == EXECUTION
    assert record.state == "Approval request"
    assert record.connector == "slack"
    assert record.connector_version == "1.0.0"
    assert TOKEN not in record.model_dump_json()


def test_reminder_posts_in_the_thread_and_renews_the_token(world: World) -> None:
    world.requests.handle(stage_event("request"))
    ts = world.store.items[APPROVAL_ID].ts

    result = world.requests.handle(stage_event("reminder", TOKEN_2))

    assert result == {"approval_id": APPROVAL_ID, "status": "pending"}
    reminder = world.slack.requests[-1]
    assert isinstance(reminder, PostReminder)
    assert reminder.operation == "post_reminder"
    assert reminder.thread_ts == ts
    assert reminder.mention == (APPROVER, APPROVER_2)
    assert reminder.sequence == 0
    assert world.store.items[APPROVAL_ID].token() == TOKEN_2
    assert world.store.items[APPROVAL_ID].allowed_approvers == (APPROVER, APPROVER_2)


def test_reminders_are_numbered_by_the_state_entered_and_retries_reuse_the_number(world: World) -> None:
    world.requests.handle(stage_event("request"))
    world.requests.handle(stage_event("reminder", TOKEN_2, entered_at="2025-06-15T16:00:00.000Z"))
    world.requests.handle(stage_event("reminder", TOKEN_2, entered_at="2025-06-15T16:00:00.000Z"))
    world.requests.handle(stage_event("reminder", TOKEN_3, entered_at="2025-06-15T17:00:00.000Z"))

    sequences = [r.sequence for r in world.slack.requests if isinstance(r, PostReminder)]
    assert sequences == [0, 0, 1]


def test_escalation_lets_the_escalation_approvers_decide(world: World) -> None:
    world.requests.handle(stage_event("request"))

    world.requests.handle(stage_event("escalation", TOKEN_2))

    escalation = world.slack.requests[-1]
    assert isinstance(escalation, PostReminder)
    assert escalation.operation == "post_escalation"
    assert escalation.mention == (ESCALATION,)
    assert world.store.items[APPROVAL_ID].allowed_approvers == (APPROVER, APPROVER_2, ESCALATION)


def test_expire_marks_expired_and_updates_the_message(world: World) -> None:
    world.requests.handle(stage_event("request"))

    result = world.requests.handle(stage_event("expire", token=None))

    assert result == {"approval_id": APPROVAL_ID, "status": "expired", "decision": "expired"}
    assert world.store.items[APPROVAL_ID].status is Status.EXPIRED
    update = world.slack.requests[-1]
    assert isinstance(update, UpdateDecision)
    assert update.decision == "expired"
    # a retried expire answers the same
    assert world.requests.handle(stage_event("expire", token=None))["status"] == "expired"


def test_callback_stage_without_a_token_is_refused(world: World) -> None:
    with pytest.raises(ValidationFailed):
        world.requests.handle(stage_event("request", token=None))


def test_invalid_event_names_fields_not_values(world: World) -> None:
    event = stage_event("request")
    event["invoice"]["currency"] = "euro"
    with pytest.raises(ValidationFailed) as raised:
        world.requests.handle(event)
    assert "invoice.currency" in str(raised.value)
    assert TOKEN not in str(raised.value)


def test_reminder_whose_request_never_ran_creates_the_approval(world: World) -> None:
    # Given a request stage whose task timed out before its invocation ran (it waited behind
    # cold starts): no approval exists (the soak met this: the invoice ended not processed)
    assert APPROVAL_ID not in world.store.items

    # When the reminder stage runs
    result = world.requests.handle(stage_event("reminder", TOKEN_2))

    # Then the approval is created pending with this stage's token, the request is posted
    # (so the buttons exist) and the reminder in its thread
    assert result == {"approval_id": APPROVAL_ID, "status": "pending"}
    approval = world.store.items[APPROVAL_ID]
    assert approval.status is Status.PENDING
    assert approval.token() == TOKEN_2
    posted, reminder = world.slack.requests
    assert isinstance(posted, PostApprovalRequest) and isinstance(reminder, PostReminder)
    assert reminder.thread_ts == approval.ts


def test_expiry_before_any_stage_ran_closes_the_approval_for_late_stages(world: World) -> None:
    # Given a ladder whose stage invocations all still wait (their tasks timed out first)
    # When the expiry step runs
    result = world.requests.handle(stage_event("expire", token=None))

    # Then the approval exists, expired, without a token
    assert result == {"approval_id": APPROVAL_ID, "status": "expired", "decision": "expired"}
    assert world.store.items[APPROVAL_ID].status is Status.EXPIRED
    assert world.store.items[APPROVAL_ID].task_token is None

    # And a late request stage posts nothing an approver could still answer
    with pytest.raises(ApprovalDecided):
        world.requests.handle(stage_event("request"))
    with pytest.raises(ApprovalDecided):
        world.requests.handle(stage_event("reminder", TOKEN_2))
    assert world.slack.requests == []
    assert world.store.items[APPROVAL_ID].status is Status.EXPIRED


def test_escalation_whose_earlier_stages_never_ran_creates_the_approval(world: World) -> None:
    world.requests.handle(stage_event("escalation", TOKEN_3))

    approval = world.store.items[APPROVAL_ID]
    assert approval.token() == TOKEN_3
    assert ESCALATION in approval.allowed_approvers


def test_decision_made_while_no_token_was_valid_ends_the_next_stage(world: World) -> None:
    # Given a click decided, but the request task had timed out before delivery
    world.requests.handle(stage_event("request"))
    world.store.decide(APPROVAL_ID, decision="approved", decided_by=APPROVER, now="t")

    # When the reminder stage starts with a new token
    with pytest.raises(ApprovalDecided) as raised:
        world.requests.handle(stage_event("reminder", TOKEN_2))

    # Then it fails at once with Approval.Decided (the workflow follows the recorded outcome),
    # keeps no token, sends nothing and posts no reminder
    assert type(raised.value).__name__ == "Approval.Decided"
    assert world.store.items[APPROVAL_ID].token() == TOKEN
    assert world.responder.calls == []
    assert not any(isinstance(r, PostReminder) for r in world.slack.requests)
    # ... and the outcome stage returns the decision
    outcome = world.requests.handle(stage_event("outcome", token=None))
    assert outcome == {"approval_id": APPROVAL_ID, "status": "approved", "decision": "approved"}


def test_outcome_of_a_pending_approval_is_refused(world: World) -> None:
    # A stage raises Approval.Decided only for a settled approval; pending never comes back.
    world.requests.handle(stage_event("request"))
    with pytest.raises(ValidationFailed):
        world.requests.handle(stage_event("outcome", token=None))


def test_request_stamps_the_declared_retention(world: World) -> None:
    # Given approvals kept 400 days (the description's retention for the table)
    world.requests.config = replace(world.config, retention_days=400)

    # When the request stage creates the approval
    world.requests.handle(stage_event("request"))

    # Then the item expires 400 days after it was written
    assert world.store.items[APPROVAL_ID].expires_at == int(world.now) + 400 * 86_400


def test_token_never_logged(world: World, log_lines: LogLines) -> None:
    world.requests.handle(stage_event("request"))
    world.requests.handle(stage_event("reminder", TOKEN_2))
    world.requests.handle(stage_event("escalation", TOKEN_3))
    world.requests.handle(stage_event("expire", token=None))

    assert log_lines.lines
    for token in (TOKEN, TOKEN_2, TOKEN_3):
        assert token not in log_lines.text()
        assert token[-40:] not in log_lines.text()


def test_reminder_before_the_request_stored_its_message_posts_the_request(world: World) -> None:
    # Given a request stage whose task timed out before it posted (a slow cold start): the
    # approval exists, pending, without a message
    world.slack.fail_with = ConnectorThrottled("429", connector="slack")
    with pytest.raises(ConnectorThrottled):
        world.requests.handle(stage_event("request"))
    world.slack.fail_with = None
    assert world.store.items[APPROVAL_ID].ts is None

    # When the reminder stage runs
    result = world.requests.handle(stage_event("reminder", TOKEN_2))

    # Then it posts the request (so the buttons exist) and the reminder in its thread
    assert result["status"] == "pending"
    posted, reminder = world.slack.requests
    assert isinstance(posted, PostApprovalRequest) and isinstance(reminder, PostReminder)
    assert world.store.items[APPROVAL_ID].ts is not None
    assert reminder.thread_ts == world.store.items[APPROVAL_ID].ts
    assert world.store.items[APPROVAL_ID].token() == TOKEN_2
