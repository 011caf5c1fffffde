"""The two thin handlers: routing, status codes and JSON bodies (logic wired to fakes)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aios.approvals.models import approval_id_for
from functions.approval_request import handler as approval_request
from functions.slack_interactions import handler as slack_interactions
from tests.lambda_context import LambdaContext
from tests.unit.approvals.approval_fakes import EXECUTION, STRANGER, TOKEN, click_body, stage_event
from tests.unit.approvals.conftest import LogLines, World
from tests.unit.approvals.test_slack_interactions import slack_event
from tests.unit.webhooks.webhook_fakes import NOW

APPROVAL_ID = approval_id_for(EXECUTION)
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


CONTEXT = LambdaContext(function_name="approvals")


@pytest.fixture
def wired(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setattr(approval_request, "default_requests", lambda: world.requests)
    monkeypatch.setattr(slack_interactions, "default_interactions", lambda: world.interactions)
    return world


def post(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = slack_interactions.handler(event, CONTEXT)
    return int(response["statusCode"]), json.loads(response["body"])


def test_request_then_approve_through_the_handlers(wired: World, log_lines: LogLines) -> None:
    result = approval_request.handler(stage_event("request"), CONTEXT)
    assert result == {"approval_id": APPROVAL_ID, "status": "pending"}

    assert post(slack_event(click_body("approve", APPROVAL_ID))) == (
        200,
        {"status": "approved", "approval_id": APPROVAL_ID},
    )
    assert post(slack_event(click_body("approve", APPROVAL_ID)))[1]["status"] == "already_decided"
    assert len(wired.responder.calls) == 1
    assert TOKEN not in log_lines.text()


def test_handler_status_codes(wired: World) -> None:
    approval_request.handler(stage_event("request"), CONTEXT)
    body = click_body("approve", APPROVAL_ID)

    assert post(slack_event(body, {"X-Slack-Request-Timestamp": str(NOW)})) == (
        401,
        {"error": "invalid_signature"},
    )
    assert post(slack_event(click_body("approve", APPROVAL_ID, STRANGER))) == (
        403,
        {"error": "not_an_approver"},
    )
    assert post(slack_event(click_body("approve", "apr_" + "1" * 32))) == (404, {"error": "unknown_approval"})
    assert post(slack_event(b"payload=%7B%7D"))[0] == 400
    assert wired.responder.calls == []
