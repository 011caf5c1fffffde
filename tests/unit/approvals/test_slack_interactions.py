"""Slack clicks with fakes: signature first, approvers only, one decision, one delivery."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aios.approvals.interactions import InteractionReply, parse_click
from aios.approvals.models import Status, approval_id_for
from aios.connectors.catalog.slack import UpdateDecision
from aios.errors import ApprovalRejected, ConnectorUnavailable
from aios.secrets import WebhookSecret
from aios.webhooks.errors import WebhookError
from aios.webhooks.request import WebhookRequest
from tests.unit.approvals.approval_fakes import (
    APPROVER,
    APPROVER_2,
    ESCALATION,
    EXECUTION,
    STRANGER,
    TOKEN,
    TOKEN_2,
    click_body,
    stage_event,
)
from tests.unit.approvals.conftest import LogLines, World
from tests.unit.webhooks.webhook_fakes import NOW, SLACK_SECRET, FakeSecrets, api_event, slack_headers

APPROVAL_ID = approval_id_for(EXECUTION)


def slack_event(body: bytes, headers: dict[str, str] | None = None, *, b64: bool = False) -> dict[str, Any]:
    event = api_event("slack", body, slack_headers(body) if headers is None else headers, b64=b64)
    event["routeKey"] = event["requestContext"]["routeKey"] = "POST /approvals/slack"
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/approvals/slack"
    event["headers"]["content-type"] = "application/x-www-form-urlencoded"
    event.pop("pathParameters")
    return event


def click(
    world: World, body: bytes, headers: dict[str, str] | None = None, *, b64: bool = False
) -> InteractionReply:
    """What the handler does: build the request, handle it, map a rejection."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        b64 = True  # API Gateway base64-encodes a body that is not text
    try:
        request = WebhookRequest.from_api_gateway(slack_event(body, headers, b64=b64), source="slack")
        return world.interactions.handle(request)
    except WebhookError as error:
        return InteractionReply(status_code=error.status_code, body={"error": error.code})


@pytest.fixture
def requested(world: World) -> World:
    world.requests.handle(stage_event("request"))
    return world


def test_approve_sends_task_success_once(requested: World) -> None:
    reply = click(requested, click_body("approve", APPROVAL_ID))

    assert reply.status_code == 200
    assert reply.body == {"status": "approved", "approval_id": APPROVAL_ID}
    [call] = requested.responder.calls
    assert call == {
        "kind": "success",
        "token": TOKEN,
        "output": {"decision": "approved", "approver": f"slack:{APPROVER}", "approval_id": APPROVAL_ID},
    }
    approval = requested.store.items[APPROVAL_ID]
    assert approval.status is Status.APPROVED
    assert approval.decided_by == APPROVER
    assert approval.delivered


def test_reject_sends_task_failure_approval_rejected(requested: World) -> None:
    reply = click(requested, click_body("reject", APPROVAL_ID, APPROVER_2))

    assert reply.body == {"status": "rejected", "approval_id": APPROVAL_ID}
    [call] = requested.responder.calls
    assert call["kind"] == "failure"
    assert call["error"] == ApprovalRejected.error_name == "Approval.Rejected"
    assert call["cause"] == {"approver": f"slack:{APPROVER_2}", "approval_id": APPROVAL_ID}


def test_repeated_click_is_already_decided_without_a_second_call(requested: World) -> None:
    click(requested, click_body("approve", APPROVAL_ID))

    again = click(requested, click_body("reject", APPROVAL_ID, APPROVER_2))

    assert again.status_code == 200
    assert again.body == {"status": "already_decided", "decision": "approved", "approval_id": APPROVAL_ID}
    assert len(requested.responder.calls) == 1
    assert requested.store.items[APPROVAL_ID].status is Status.APPROVED


def test_decision_updates_the_message_and_writes_lineage(requested: World) -> None:
    click(requested, click_body("approve", APPROVAL_ID))

    update = requested.slack.requests[-1]
    assert isinstance(update, UpdateDecision)
    assert update.decision == "approved"
    assert update.decided_by == APPROVER
    assert update.ts == requested.store.items[APPROVAL_ID].ts
    record = requested.lineage.records[-1]
    assert record.state == "Human decision"
    assert record.pk == EXECUTION
    assert record.approver == f"slack:{APPROVER}"
    assert record.decision == "approved"
    assert record.recorded_at == "2025-06-15T15:06:40.000Z"  # the click's time (NOW)


@pytest.mark.parametrize(
    "headers",
    [
        {},  # missing
        {"X-Slack-Request-Timestamp": str(NOW), "X-Slack-Signature": "v0=" + "0" * 64},  # wrong
        "stale",
        "other-secret",
    ],
)
def test_bad_signature_is_401_and_changes_nothing(requested: World, headers: Any) -> None:
    body = click_body("approve", APPROVAL_ID)
    if headers == "stale":
        headers = slack_headers(body, ts=NOW - 301)
    elif headers == "other-secret":
        headers = slack_headers(body, secret="not-the-secret")
    before = requested.store.items[APPROVAL_ID]

    reply = click(requested, body, headers)

    assert reply.status_code == 401
    assert reply.body == {"error": "invalid_signature"}
    assert requested.store.items[APPROVAL_ID] == before
    assert requested.responder.calls == []


def test_signature_is_over_the_raw_body_and_headers_are_case_insensitive(requested: World) -> None:
    body = click_body("approve", APPROVAL_ID)
    headers = {k.upper(): v for k, v in slack_headers(body).items()}
    tampered = body.replace(b"approve", b"reject")

    assert click(requested, tampered, slack_headers(body)).status_code == 401
    assert click(requested, body, headers, b64=True).status_code == 200


def test_previous_secret_still_verifies_during_rotation(requested: World) -> None:
    rotated = WebhookSecret.model_validate({"current": "new-secret-value", "previous": SLACK_SECRET})
    requested.interactions.secrets = FakeSecrets({"slack": rotated})

    assert click(requested, click_body("approve", APPROVAL_ID)).status_code == 200


def test_non_approver_is_403_and_changes_nothing(requested: World) -> None:
    before = requested.store.items[APPROVAL_ID]

    reply = click(requested, click_body("approve", APPROVAL_ID, STRANGER))

    assert reply.status_code == 403
    assert reply.body == {"error": "not_an_approver"}
    assert requested.store.items[APPROVAL_ID] == before
    assert requested.responder.calls == []


def test_escalation_approver_only_after_escalation(requested: World) -> None:
    assert click(requested, click_body("approve", APPROVAL_ID, ESCALATION)).status_code == 403

    requested.requests.handle(stage_event("escalation", TOKEN_2))
    reply = click(requested, click_body("approve", APPROVAL_ID, ESCALATION))

    assert reply.body["status"] == "approved"
    [call] = requested.responder.calls
    assert call["token"] == TOKEN_2  # the escalation task's token


def test_unknown_approval_is_404(requested: World) -> None:
    reply = click(requested, click_body("approve", "apr_" + "0" * 32))
    assert reply.status_code == 404
    assert reply.body == {"error": "unknown_approval"}


@pytest.mark.parametrize(
    "body",
    [
        b"payload=not-json",
        b"nothing=here",
        b"",
        b"payload=" + json.dumps({"type": "view_submission"}).encode(),
        b"payload=" + json.dumps({"type": "block_actions", "user": {"id": APPROVER}, "actions": []}).encode(),
        b"payload="
        + json.dumps(
            {
                "type": "block_actions",
                "user": {"id": APPROVER},
                "actions": [{"action_id": "x", "value": "apr_123456789"}],
            }
        ).encode(),
        b"\xff\xfe",
    ],
)
def test_not_a_block_actions_payload_is_400(requested: World, body: bytes) -> None:
    reply = click(requested, body)
    assert reply.status_code == 400
    assert requested.responder.calls == []


def test_expired_approval_answers_expired(requested: World) -> None:
    requested.requests.handle(stage_event("expire", token=None))

    reply = click(requested, click_body("approve", APPROVAL_ID))

    assert reply.body == {"status": "expired", "approval_id": APPROVAL_ID}
    assert requested.responder.calls == []


def test_click_between_stages_is_held_for_the_next_stage(requested: World) -> None:
    # Given the request stage's task just timed out (the reminder has not stored its token)
    requested.responder.closed.add(TOKEN)

    # When the approver clicks
    reply = click(requested, click_body("approve", APPROVAL_ID))

    # Then the decision stands, recorded, for the next stage to follow
    assert reply.status_code == 200
    assert reply.body == {"status": "approved", "approval_id": APPROVAL_ID}
    assert requested.store.items[APPROVAL_ID].status is Status.APPROVED
    assert not requested.store.items[APPROVAL_ID].delivered


def test_expiry_returns_a_held_decision_instead_of_expiring(requested: World) -> None:
    # Given a click held while the last stage timed out
    requested.responder.closed.add(TOKEN)
    click(requested, click_body("reject", APPROVAL_ID))

    # When the ladder's expiry step runs
    result = requested.requests.handle(stage_event("expire", token=None))

    # Then the workflow gets the approver's decision, not an expiry
    assert result["decision"] == "rejected"
    assert requested.store.items[APPROVAL_ID].status is Status.REJECTED


def test_expiry_follows_a_decision_even_once_it_was_sent_to_a_task(requested: World) -> None:
    # Given a decision that Step Functions accepted, but whose task never completed (the
    # local interpreter dropped responses sent before the task's invoke returned)
    assert click(requested, click_body("approve", APPROVAL_ID)).body["status"] == "approved"
    assert requested.store.items[APPROVAL_ID].delivered

    # When the ladder nevertheless reaches its expiry step
    result = requested.requests.handle(stage_event("expire", token=None))

    # Then the workflow acts on the recorded decision, and the message is not marked expired
    assert result == {"approval_id": APPROVAL_ID, "status": "approved", "decision": "approved"}
    assert not [
        r for r in requested.slack.requests if isinstance(r, UpdateDecision) and r.decision == "expired"
    ]


def test_step_functions_unreachable_keeps_the_recorded_decision(requested: World) -> None:
    # Given Step Functions cannot be reached
    requested.responder.broken = True

    # When the approver clicks
    reply = click(requested, click_body("approve", APPROVAL_ID))

    # Then the click is acknowledged: the decision is recorded and stays the outcome
    assert reply.body == {"status": "approved", "approval_id": APPROVAL_ID}
    assert requested.store.items[APPROVAL_ID].status is Status.APPROVED
    assert not requested.store.items[APPROVAL_ID].delivered
    # ... a second click cannot change it, and the ladder's next step follows it
    requested.responder.broken = False
    assert click(requested, click_body("reject", APPROVAL_ID)).body == {
        "status": "already_decided",
        "approval_id": APPROVAL_ID,
        "decision": "approved",
    }
    assert requested.requests.handle(stage_event("outcome", token=None))["decision"] == "approved"


def test_message_update_failure_does_not_undo_the_decision(requested: World) -> None:
    requested.slack.fail_with = ConnectorUnavailable("503", connector="slack")

    reply = click(requested, click_body("approve", APPROVAL_ID))

    assert reply.body["status"] == "approved"
    assert len(requested.responder.calls) == 1


def test_token_and_payload_never_logged(requested: World, log_lines: LogLines) -> None:
    click(requested, click_body("approve", APPROVAL_ID, STRANGER))
    click(requested, click_body("approve", APPROVAL_ID))
    click(requested, click_body("approve", APPROVAL_ID))
    click(requested, b"payload=not-json")

    text = log_lines.text()
    assert log_lines.lines
    assert TOKEN not in text
    assert "legacy-verification-token" not in text
    assert "hooks.slack.com" not in text
    assert TOKEN not in requested.slack.dumped()


def test_parse_click() -> None:
    parsed = parse_click(click_body("reject", APPROVAL_ID, APPROVER_2))
    assert (parsed.approval_id, parsed.decision, parsed.user_id) == (APPROVAL_ID, "rejected", APPROVER_2)
