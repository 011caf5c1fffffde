"""Fakes and builders for the approval tests (no sockets, no AWS)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from aios.approvals.models import Approval, Decision, Status
from aios.approvals.responder import TaskClosed
from aios.approvals.store import ApprovalConflict
from aios.connectors.catalog.slack import MessageResult, PostApprovalRequest, PostReminder, UpdateDecision
from aios.lineage import LineageContext, LineageRecord, LineageWriter

NOW = 1_750_000_000
EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:aios-accounts-payable:erp-INV-1001"
#: Shaped like a real task token: long, opaque, base64-ish.
TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAd0Tq1q" + "x" * 600 + "TOKEN-ONE"
TOKEN_2 = "AQCEAAAAKgAAAAMAAAAAAAAAAd0Tq1q" + "y" * 600 + "TOKEN-TWO"
TOKEN_3 = "AQCEAAAAKgAAAAMAAAAAAAAAAd0Tq1q" + "z" * 600 + "TOKEN-THREE"
CHANNEL = "C0APPROVALS"
APPROVER = "U0ALICE"
APPROVER_2 = "U0BOB"
ESCALATION = "U0CAROL"
STRANGER = "U0MALLORY"


def approval_created(number: int, created: str, *, status: Status = Status.PENDING) -> Approval:
    """Approval ``number`` of an invoice, asked at ``created`` (a lineage time)."""
    return Approval(
        approval_id=f"apr_{number:032x}",
        business_key=f"acme:INV-{number}",
        allowed_approvers=("U0AIOSAP01",),
        status=status,
        channel="C0AIOSAP01",
        lineage=LineageContext(
            execution=f"arn:aws:states:eu-west-1:123456789012:execution:ap:{number}",
            state="Request approval",
            entered_at=created,
            business_key=f"acme:INV-{number}",
            workflow="accounts-payable",
        ),
        invoice={
            "invoice_id": f"INV-{number}",
            "vendor_name": "Acme",
            "amount": "9000.00",
            "currency": "EUR",
        },
        updated_at=created,
    )


def lineage(state: str = "Request approval", entered_at: str = "2025-06-15T15:06:40.000Z") -> dict[str, str]:
    return {
        "execution": EXECUTION,
        "state": state,
        "entered_at": entered_at,
        "business_key": "erp:INV-1001",
        "workflow": "accounts-payable",
    }


def stage_event(
    stage: str, token: str | None = TOKEN, *, state: str | None = None, entered_at: str | None = None
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "stage": stage,
        "business_key": "erp:INV-1001",
        "invoice": {
            "invoice_id": "INV-1001",
            "vendor_name": "Acme GmbH",
            "amount": 12500.5,
            "currency": "EUR",
            "due_date": "2025-07-15",
            "reason": "anomaly score 0.93",
        },
        "lineage": lineage(
            state or f"Approval {stage}", entered_at or f"2025-06-15T15:{10 + len(stage):02d}:00.000Z"
        ),
    }
    if token is not None:
        event["task_token"] = token
    return event


def click_body(
    action: str, approval_id: str, user: str = APPROVER, *, ts: str = "1750000000.000100"
) -> bytes:
    """A Slack ``block_actions`` interaction, form-encoded as Slack sends it."""
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": "someone", "team_id": "T0TEAM"},
        "api_app_id": "A0APP",
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": ts, "channel_id": CHANNEL, "is_ephemeral": False},
        "trigger_id": "1.2.3",
        "team": {"id": "T0TEAM", "domain": "example"},
        "channel": {"id": CHANNEL, "name": "approvals"},
        "response_url": "https://hooks.slack.com/actions/T0TEAM/1/abc",
        "actions": [
            {
                "action_id": action,
                "block_id": "aios_approval",
                "type": "button",
                "value": approval_id,
                "action_ts": "1750000001.000200",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


class FakeStore:
    """``ApprovalStore`` on a dict, with the same conditions as the DynamoDB one."""

    def __init__(self) -> None:
        self.items: dict[str, Approval] = {}
        self.writes = 0

    def _conflict(self, approval_id: str) -> ApprovalConflict:
        return ApprovalConflict(approval_id, self.items.get(approval_id))

    def _put(self, approval: Approval, **update: Any) -> Approval:
        self.writes += 1
        new = approval.model_copy(update=update)
        self.items[approval.approval_id] = new
        return new

    def create(self, approval: Approval) -> bool:
        if approval.approval_id in self.items:
            return False
        self._put(approval)
        return True

    def get(self, approval_id: str) -> Approval | None:
        return self.items.get(approval_id)

    def renew(
        self,
        approval_id: str,
        *,
        token: str,
        lineage: LineageContext,
        now: str,
        expected: frozenset[Status],
        notice: str | None = None,
        allowed: tuple[str, ...] | None = None,
    ) -> Approval:
        from pydantic import SecretStr  # noqa: PLC0415

        current = self.items.get(approval_id)
        if current is None or current.status not in expected:
            raise self._conflict(approval_id)
        update: dict[str, Any] = {"task_token": SecretStr(token), "lineage": lineage, "updated_at": now}
        if allowed is not None:
            update["allowed_approvers"] = allowed
        if notice is not None and notice not in current.notices:
            update["notices"] = (*current.notices, notice)
        return self._put(current, **update)

    def set_message(self, approval_id: str, *, ts: str, now: str) -> Approval:
        return self._put(self.items[approval_id], ts=ts, updated_at=now)

    def decide(self, approval_id: str, *, decision: Decision, decided_by: str, now: str) -> Approval:
        current = self.items.get(approval_id)
        if current is None or current.status is not Status.PENDING:
            raise self._conflict(approval_id)
        return self._put(
            current, status=Status(decision), decided_by=decided_by, decided_at=now, updated_at=now
        )

    def mark_delivered(self, approval_id: str, *, now: str) -> None:
        self._put(self.items[approval_id], delivered=True, updated_at=now)

    def expire(self, approval_id: str, *, now: str, expected: frozenset[Status]) -> Approval:
        current = self.items.get(approval_id)
        if current is None or current.status not in expected:
            raise self._conflict(approval_id)
        return self._put(current, status=Status.EXPIRED, updated_at=now)


class FakeResponder:
    """Records task responses; ``closed`` tokens answer ``TaskClosed``, ``broken`` raises."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.closed: set[str] = set()
        self.broken = False

    def _check(self, token: str) -> None:
        if self.broken:
            raise ConnectionError("endpoint unreachable")
        if token in self.closed:
            raise TaskClosed("TaskTimedOut")

    def succeed(self, token: str, output: dict[str, Any]) -> None:
        self._check(token)
        self.calls.append({"kind": "success", "token": token, "output": output})

    def fail(self, token: str, *, error: str, cause: dict[str, Any]) -> None:
        self._check(token)
        self.calls.append({"kind": "failure", "token": token, "error": error, "cause": cause})


class FakeSlack:
    """The Slack connector's logic: records requests, answers like Slack."""

    def __init__(self) -> None:
        self.requests: list[PostApprovalRequest | UpdateDecision | PostReminder] = []
        self._next = 100
        self.fail_with: Exception | None = None

    def __call__(self, request: PostApprovalRequest | UpdateDecision | PostReminder) -> MessageResult:
        if self.fail_with is not None:
            raise self.fail_with
        self.requests.append(request)
        self._next += 1
        ts = request.ts if isinstance(request, UpdateDecision) else f"1750000000.000{self._next}"
        return MessageResult(
            connector="slack",
            connector_version="1.0.0",
            operation=request.operation,
            business_key=request.business_key,
            channel=request.channel,
            ts=ts,
        )

    def dumped(self) -> str:
        return json.dumps([r.model_dump(mode="json") for r in self.requests])


class FakeLineage(LineageWriter):
    def __init__(self) -> None:
        self.records: list[LineageRecord] = []

    def write(self, record: LineageRecord) -> None:
        self.records.append(record)
