"""Both approval handlers on moto: approvals, lineage, idempotency and circuit tables, the
Slack connector's secret in Secrets Manager, Slack's Web API as a local HTTP server, and a
recording Step Functions client. Configuration comes from the environment, as deployed."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from aios import lineage as lineage_module
from aios.approvals import wiring
from aios.approvals.models import approval_id_for
from aios.approvals.responder import StepFunctionsResponder
from aios.config import settings, variable
from aios.connectors.catalog import slack as slack_catalog
from aios.errors import ApprovalDecided
from aios.idempotency import persistence_layer
from aios.secrets import WebhookSecret, connector_secret_name, webhook_secret_name
from functions.approval_request import handler as approval_request
from functions.slack_interactions import handler as slack_interactions
from infrastructure.platform import PLATFORM
from tests.integration.moto_env import fake_aws_environment
from tests.lambda_context import LambdaContext
from tests.unit.webhooks.webhook_fakes import http_api_event

pytestmark = [
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
    pytest.mark.filterwarnings("ignore:Couldn.t determine the remaining time"),
]

REGION = "eu-west-1"
SIGNING_SECRET = "slack-signing-secret-integration"
BOT_TOKEN = "xoxb-integration-bot-token"
EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:aios-accounts-payable:erp-INV-1001"
APPROVAL_ID = approval_id_for(EXECUTION)
TOKEN = "AAAAKgAAAAIAAAAAAAAAAT-task-token-request-" + "q" * 400
TOKEN_ESCALATION = "AAAAKgAAAAIAAAAAAAAAAT-task-token-escalation-" + "w" * 400
TOKEN_REMINDER = "AAAAKgAAAAIAAAAAAAAAAT-task-token-reminder-" + "r" * 400
CHANNEL, ALICE, BOB, CAROL, MALLORY = "C0APPROVALS", "U0ALICE", "U0BOB", "U0CAROL", "U0MALLORY"
TABLES = {"approvals": "pk", "idempotency": "id", "circuit": "id"}


CONTEXT = LambdaContext(function_name="approvals")


class SlackApi:
    """chat.postMessage and chat.update answered as Slack does; every request recorded."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.authorization: list[str] = []
        api = self
        counter = iter(range(1, 1000))

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                api.raw.append(body)
                api.authorization.append(self.headers.get("Authorization", ""))
                request = json.loads(body)
                method = self.path.rsplit("/", 1)[-1]
                api.requests.append({"method": method, **request})
                if method == "chat.postMessage":
                    answer = {
                        "ok": True,
                        "channel": request["channel"],
                        "ts": f"1750000000.{next(counter):06d}",
                    }
                elif method == "chat.update":
                    answer = {"ok": True, "channel": request["channel"], "ts": request["ts"], "text": ""}
                else:
                    answer = {"ok": False, "error": "unknown_method"}
                payload = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def methods(self) -> list[str]:
        return [r["method"] for r in self.requests]


@dataclass
class RecordingSfn:
    """The part of the Step Functions client the responder uses; ``closed`` tokens time out."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    closed: set[str] = field(default_factory=set)
    unavailable: bool = False

    def _check(self, token: str, operation: str) -> None:
        if self.unavailable:
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "try later"}}, operation)
        if token in self.closed:
            raise ClientError({"Error": {"Code": "TaskTimedOut", "Message": "Task Timed Out"}}, operation)

    def send_task_success(self, *, taskToken: str, output: str) -> dict[str, Any]:
        self._check(taskToken, "SendTaskSuccess")
        self.calls.append(
            {"operation": "SendTaskSuccess", "taskToken": taskToken, "output": json.loads(output)}
        )
        return {}

    def send_task_failure(self, *, taskToken: str, error: str, cause: str) -> dict[str, Any]:
        self._check(taskToken, "SendTaskFailure")
        self.calls.append(
            {
                "operation": "SendTaskFailure",
                "taskToken": taskToken,
                "error": error,
                "cause": json.loads(cause),
            }
        )
        return {}


def _clear_caches() -> None:
    settings.cache_clear()
    persistence_layer.cache_clear()
    lineage_module.default_writer.cache_clear()
    slack_catalog.SlackConnector.reset_defaults()
    wiring.default_store.cache_clear()
    wiring.default_requests.cache_clear()
    wiring.default_interactions.cache_clear()
    clear = getattr(wiring.default_responder, "cache_clear", None)  # replaced in the tests
    if clear is not None:
        clear()


@dataclass
class Platform:
    dynamodb: Any
    slack: SlackApi
    sfn: RecordingSfn

    def approval(self) -> dict[str, Any]:
        item = self.dynamodb.get_item(TableName="approvals", Key={"pk": {"S": f"approval#{APPROVAL_ID}"}})[
            "Item"
        ]
        return {k: next(iter(v.values())) for k, v in item.items()}

    def lineage(self) -> list[dict[str, Any]]:
        items = self.dynamodb.query(
            TableName="lineage",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": EXECUTION}},
        )["Items"]
        return [{k: next(iter(v.values())) for k, v in item.items()} for item in items]


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    environment = {
        **fake_aws_environment(REGION),
        variable("approvals_table"): "approvals",
        variable("lineage_table"): "lineage",
        variable("idempotency_table"): "idempotency",
        variable("circuit_table"): "circuit",
        variable("secrets_prefix"): "aios",
        variable("approval_channel"): CHANNEL,
        variable("approvers"): f"{ALICE}, {BOB}",
        variable("escalation_approvers"): CAROL,
        variable("service_name"): "approvals",
        # As both renderings set it: the retention the description declares for the table.
        variable("table_retention_days"): PLATFORM.function_environment(
            PLATFORM.function("approval-request")
        )[variable("table_retention_days")].id,
    }
    for name, value in environment.items():
        monkeypatch.setenv(str(name), value)
    slack_api = SlackApi()
    sfn = RecordingSfn()
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        for table, key in TABLES.items():
            dynamodb.create_table(
                TableName=table,
                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        dynamodb.create_table(
            TableName="lineage",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        secrets = boto3.client("secretsmanager", region_name=REGION)
        secrets.create_secret(
            Name=connector_secret_name("slack", "aios"),
            SecretString=json.dumps({"base_url": slack_api.base_url, "token": BOT_TOKEN}),
        )
        secrets.create_secret(
            Name=webhook_secret_name("slack", "aios"),
            SecretString=WebhookSecret.model_validate({"current": SIGNING_SECRET}).to_json(),
        )
        _clear_caches()
        monkeypatch.setattr(wiring, "default_responder", lambda: StepFunctionsResponder(client=sfn))  # type: ignore[arg-type]
        try:
            yield Platform(dynamodb=dynamodb, slack=slack_api, sfn=sfn)
        finally:
            _clear_caches()
            slack_api.close()


def stage(stage_name: str, token: str | None, state: str, entered_at: str) -> dict[str, Any]:
    event: dict[str, Any] = {
        "stage": stage_name,
        "business_key": "erp:INV-1001",
        "invoice": {
            "invoice_id": "INV-1001",
            "vendor_name": "Acme GmbH",
            "amount": "12500.50",
            "currency": "EUR",
        },
        "lineage": {
            "execution": EXECUTION,
            "state": state,
            "entered_at": entered_at,
            "business_key": "erp:INV-1001",
            "workflow": "accounts-payable",
        },
    }
    if token is not None:
        event["task_token"] = token
    return event


def request_approval() -> dict[str, Any]:
    result: dict[str, Any] = approval_request.handler(
        stage("request", TOKEN, "Request approval", "2025-06-15T15:06:40.000Z"),
        CONTEXT,
    )
    return result


def click(action: str, user: str, *, secret: str = SIGNING_SECRET) -> tuple[int, dict[str, Any]]:
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "container": {"type": "message", "message_ts": "1750000000.000001", "channel_id": CHANNEL},
        "channel": {"id": CHANNEL},
        "actions": [{"action_id": action, "value": APPROVAL_ID, "type": "button"}],
    }
    body = urlencode({"payload": json.dumps(payload)})
    ts = str(int(time.time()))
    signature = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": ts,
        "x-slack-signature": f"v0={signature}",
    }
    event = http_api_event("POST /approvals/slack", "/approvals/slack", body.encode(), headers, epoch=int(ts))
    response = slack_interactions.handler(event, CONTEXT)
    return int(response["statusCode"]), json.loads(response["body"])


def test_request_stores_the_approval_and_posts_without_the_token(platform: Platform) -> None:
    assert request_approval() == {"approval_id": APPROVAL_ID, "status": "pending"}

    item = platform.approval()
    assert item["task_token"] == TOKEN
    assert item["status"] == "pending"
    assert item["allowed_approvers"] == [{"S": ALICE}, {"S": BOB}]
    assert item["ts"] == "1750000000.000001"
    assert platform.slack.methods() == ["chat.postMessage"]
    posted = platform.slack.requests[0]
    assert posted["channel"] == CHANNEL
    buttons = posted["blocks"][1]["elements"]
    assert [b["value"] for b in buttons] == [APPROVAL_ID, APPROVAL_ID]
    assert platform.slack.authorization == [f"Bearer {BOT_TOKEN}"]
    assert all(TOKEN.encode() not in raw for raw in platform.slack.raw)
    [record] = platform.lineage()
    assert record["state"] == "Request approval"
    assert record["connector"] == "slack"
    assert TOKEN not in json.dumps(record)
    # a retried request posts nothing more
    request_approval()
    assert platform.slack.methods() == ["chat.postMessage"]


def test_approve_then_repeat(platform: Platform) -> None:
    request_approval()

    assert click("approve", ALICE) == (200, {"status": "approved", "approval_id": APPROVAL_ID})
    assert platform.sfn.calls == [
        {
            "operation": "SendTaskSuccess",
            "taskToken": TOKEN,
            "output": {"decision": "approved", "approver": f"slack:{ALICE}", "approval_id": APPROVAL_ID},
        }
    ]
    item = platform.approval()
    assert (item["status"], item["decided_by"], item["delivered"]) == ("approved", ALICE, True)
    assert platform.slack.methods() == ["chat.postMessage", "chat.update"]
    decision = [r for r in platform.lineage() if r["state"] == "Human decision"]
    assert [(r["approver"], r["decision"]) for r in decision] == [(f"slack:{ALICE}", "approved")]

    assert click("approve", BOB) == (
        200,
        {"status": "already_decided", "decision": "approved", "approval_id": APPROVAL_ID},
    )
    assert len(platform.sfn.calls) == 1


def test_reject(platform: Platform) -> None:
    request_approval()

    assert click("reject", BOB) == (200, {"status": "rejected", "approval_id": APPROVAL_ID})
    [call] = platform.sfn.calls
    assert call["operation"] == "SendTaskFailure"
    assert call["error"] == "Approval.Rejected"
    assert call["cause"] == {"approver": f"slack:{BOB}", "approval_id": APPROVAL_ID}
    assert platform.approval()["status"] == "rejected"


def test_bad_signature_and_non_approver_change_nothing(platform: Platform) -> None:
    request_approval()
    before = platform.approval()

    assert click("approve", ALICE, secret="wrong") == (401, {"error": "invalid_signature"})
    assert click("approve", MALLORY) == (403, {"error": "not_an_approver"})

    assert platform.approval() == before
    assert platform.sfn.calls == []
    assert platform.slack.methods() == ["chat.postMessage"]


def test_escalation_allows_the_escalation_approver(platform: Platform) -> None:
    request_approval()
    assert click("approve", CAROL)[0] == 403

    result = approval_request.handler(
        stage("escalation", TOKEN_ESCALATION, "Escalate approval", "2025-06-16T15:06:40.000Z"),
        CONTEXT,
    )

    assert result == {"approval_id": APPROVAL_ID, "status": "pending"}
    escalation = platform.slack.requests[-1]
    assert escalation["thread_ts"] == "1750000000.000001"
    assert f"<@{CAROL}>" in escalation["text"]
    assert escalation["reply_broadcast"] is True
    assert click("approve", CAROL) == (200, {"status": "approved", "approval_id": APPROVAL_ID})
    [call] = platform.sfn.calls
    assert call["taskToken"] == TOKEN_ESCALATION


def test_expire(platform: Platform) -> None:
    request_approval()

    result = approval_request.handler(
        stage("expire", None, "Approval expired", "2025-06-18T15:06:40.000Z"),
        CONTEXT,
    )

    assert result == {"approval_id": APPROVAL_ID, "status": "expired", "decision": "expired"}
    assert platform.approval()["status"] == "expired"
    assert platform.slack.methods() == ["chat.postMessage", "chat.update"]
    assert click("approve", ALICE) == (200, {"status": "expired", "approval_id": APPROVAL_ID})
    assert platform.sfn.calls == []


def test_click_after_the_task_timed_out_is_followed_by_the_next_stage(platform: Platform) -> None:
    # Given the request task timed out just before the click
    request_approval()
    platform.sfn.closed.add(TOKEN)

    # When the approver clicks, the decision is recorded and acknowledged
    assert click("approve", ALICE) == (200, {"status": "approved", "approval_id": APPROVAL_ID})
    assert platform.approval()["status"] == "approved"

    # Then the reminder stage fails at once with Approval.Decided, and the outcome step reads it
    with pytest.raises(ApprovalDecided):
        approval_request.handler(
            stage("reminder", TOKEN_REMINDER, "Remind the approver", "2025-06-15T19:06:40.000Z"), CONTEXT
        )
    outcome = approval_request.handler(
        stage("outcome", None, "Follow the recorded outcome", "2025-06-15T19:06:41.000Z"), CONTEXT
    )
    assert outcome == {"approval_id": APPROVAL_ID, "status": "approved", "decision": "approved"}


def test_step_functions_unavailable_keeps_the_recorded_decision(platform: Platform) -> None:
    request_approval()
    platform.sfn.unavailable = True

    # The decision is recorded before it is acknowledged; Step Functions only speeds it up
    assert click("approve", ALICE) == (200, {"status": "approved", "approval_id": APPROVAL_ID})
    item = platform.approval()
    assert (item["status"], item["decided_by"]) == ("approved", ALICE)

    platform.sfn.unavailable = False
    assert click("reject", ALICE) == (
        200,
        {"status": "already_decided", "approval_id": APPROVAL_ID, "decision": "approved"},
    )
    expired = approval_request.handler(
        stage("expire", None, "Expire the approval request", "2025-06-18T15:06:40.000Z"), CONTEXT
    )
    assert expired["decision"] == "approved"


def test_every_approval_item_carries_the_declared_ttl(platform: Platform) -> None:
    # Given the approvals table's declared retention, through the function's environment
    days = PLATFORM.table("approvals").retention_days
    assert days is not None

    # When the request stage creates the approval
    before = int(time.time())
    request_approval()

    # Then its item expires that many days from now (DynamoDB TTL, epoch seconds)
    expires = int(platform.approval()["expires_at"])
    assert before + days * 86_400 <= expires <= int(time.time()) + days * 86_400
