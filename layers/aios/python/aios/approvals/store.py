"""The approvals table: one item per approval, the single source of truth of its outcome.

Item ``pk = approval#<approval_id>``. Every transition is a DynamoDB ``ConditionExpression``
on ``status``, which only ever moves forward: ``pending`` -> ``approved`` | ``rejected``
(a click) or ``pending`` -> ``expired`` (the expiry step). Whichever conditional write comes
first wins and nothing undoes it, so a decision acknowledged to an approver is the outcome
every later reader (the next ladder stage, the expiry step) finds. A task token is stored
only while the approval is pending, and only in this item. Every item carries
``expires_at`` (epoch seconds) for the table's TTL, from the retention the platform
description declares.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import SecretStr

from aios import clients
from aios.approvals.models import Approval, Decision, Status

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    from aios.lineage import LineageContext

KEY_PREFIX = "approval#"
#: The table's TTL attribute (``TableSpec.ttl_attribute`` of the approvals table).
EXPIRES_AT = "expires_at"
#: The sparse index of pending approvals (``aios.approvals.gauge`` queries it): only a
#: pending item carries ``PENDING_KEY``; deciding or expiring it removes the attribute, and
#: DynamoDB drops the item from the index. ``REQUESTED_AT`` (when it was created) sorts it.
PENDING_INDEX = "pending"
PENDING_KEY = "pending_queue"
PENDING_VALUE = "approvals"
REQUESTED_AT = "requested_at"


def approval_key(approval_id: str) -> str:
    return f"{KEY_PREFIX}{approval_id}"


class ApprovalConflict(Exception):
    """A conditional write found the approval in another state; ``current`` is that state
    (``None`` when the approval does not exist)."""

    def __init__(self, approval_id: str, current: Approval | None) -> None:
        super().__init__(f"approval {approval_id} is not in the expected state")
        self.approval_id = approval_id
        self.current = current


class ApprovalStore(Protocol):
    def create(self, approval: Approval) -> bool:
        """Put ``approval`` unless one with its id exists; ``True`` when it was created."""

    def get(self, approval_id: str) -> Approval | None: ...

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
        """Store the waiting task's token (and lineage, notice, approvers) while the status is
        one of ``expected``; ``ApprovalConflict`` otherwise."""

    def set_message(self, approval_id: str, *, ts: str, now: str) -> Approval: ...

    def decide(self, approval_id: str, *, decision: Decision, decided_by: str, now: str) -> Approval:
        """pending -> ``decision``; ``ApprovalConflict`` when no longer pending."""

    def mark_delivered(self, approval_id: str, *, now: str) -> None:
        """Note that Step Functions accepted the decision (information only: the workflow
        acts on ``status``, never on this flag)."""

    def expire(self, approval_id: str, *, now: str, expected: frozenset[Status]) -> Approval:
        """``expected`` -> expired; ``ApprovalConflict`` (with the recorded outcome) otherwise."""


# -- item (de)serialisation -------------------------------------------------------------------


def _s(value: str) -> AttributeValueTypeDef:
    return {"S": value}


def to_item(approval: Approval) -> dict[str, AttributeValueTypeDef]:
    item: dict[str, AttributeValueTypeDef] = {
        "pk": _s(approval_key(approval.approval_id)),
        "approval_id": _s(approval.approval_id),
        "business_key": _s(approval.business_key),
        "allowed_approvers": {"L": [_s(user) for user in approval.allowed_approvers]},
        "status": _s(approval.status.value),
        "channel": _s(approval.channel),
        "lineage": _s(approval.lineage.model_dump_json()),
        "invoice": _s(approval.invoice.model_dump_json()),
        "notices": {"L": [_s(notice) for notice in approval.notices]},
        "delivered": {"BOOL": approval.delivered},
        "updated_at": _s(approval.updated_at),
    }
    if approval.expires_at is not None:
        item[EXPIRES_AT] = {"N": str(approval.expires_at)}
    if approval.status is Status.PENDING:
        # Only ``create`` puts a whole item: its ``updated_at`` is the creation time.
        item[PENDING_KEY] = _s(PENDING_VALUE)
        item[REQUESTED_AT] = _s(approval.updated_at)
    if approval.task_token is not None:
        item["task_token"] = _s(approval.task_token.get_secret_value())
    for name in ("ts", "decided_by", "decided_at"):
        value = getattr(approval, name)
        if value is not None:
            item[name] = _s(value)
    return item


def from_item(item: dict[str, Any]) -> Approval:
    def text(name: str) -> str | None:
        value = item.get(name)
        return str(value["S"]) if value else None

    token = text("task_token")
    expires = item.get(EXPIRES_AT)
    return Approval.model_validate(
        {
            "approval_id": text("approval_id"),
            "business_key": text("business_key"),
            "task_token": SecretStr(token) if token is not None else None,
            "allowed_approvers": [v["S"] for v in item.get("allowed_approvers", {}).get("L", [])],
            "status": text("status"),
            "channel": text("channel"),
            "ts": text("ts"),
            "lineage": json.loads(text("lineage") or "null"),
            "invoice": json.loads(text("invoice") or "null"),
            "notices": [v["S"] for v in item.get("notices", {}).get("L", [])],
            "decided_by": text("decided_by"),
            "decided_at": text("decided_at"),
            "delivered": bool(item.get("delivered", {}).get("BOOL", False)),
            "updated_at": text("updated_at"),
            "expires_at": int(expires["N"]) if expires else None,
        }
    )


def _status_condition(expected: Iterable[Status], values: dict[str, AttributeValueTypeDef]) -> str:
    names = []
    for index, status in enumerate(sorted(expected)):
        values[f":st{index}"] = _s(status.value)
        names.append(f":st{index}")
    return f"#status IN ({', '.join(names)})"


class DynamoApprovalStore:
    """``ApprovalStore`` on the approvals table (low-level client, injectable)."""

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self.table_name = table_name
        self._client = client or clients.dynamodb()

    def _key(self, approval_id: str) -> dict[str, AttributeValueTypeDef]:
        return {"pk": _s(approval_key(approval_id))}

    def create(self, approval: Approval) -> bool:
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item=to_item(approval),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def get(self, approval_id: str) -> Approval | None:
        item = self._client.get_item(
            TableName=self.table_name, Key=self._key(approval_id), ConsistentRead=True
        ).get("Item")
        return from_item(item) if item else None

    def _update(
        self,
        approval_id: str,
        *,
        update: str,
        condition: str,
        values: dict[str, AttributeValueTypeDef],
    ) -> Approval:
        try:
            response = self._client.update_item(
                TableName=self.table_name,
                Key=self._key(approval_id),
                UpdateExpression=update,
                ConditionExpression=f"attribute_exists(pk) AND ({condition})",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            raise ApprovalConflict(approval_id, self.get(approval_id)) from None
        return from_item(response["Attributes"])

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
        values: dict[str, AttributeValueTypeDef] = {
            ":token": _s(token),
            ":lineage": _s(lineage.model_dump_json()),
            ":now": _s(now),
        }
        sets = ["task_token = :token", "lineage = :lineage", "updated_at = :now"]
        if allowed is not None:
            values[":allowed"] = {"L": [_s(user) for user in allowed]}
            sets.append("allowed_approvers = :allowed")
        condition = _status_condition(expected, values)
        if notice is not None:
            current = self.get(approval_id)
            if current is not None and notice not in current.notices:
                values[":notice"] = {"L": [_s(notice)]}
                values[":empty"] = {"L": []}
                sets.append("notices = list_append(if_not_exists(notices, :empty), :notice)")
        return self._update(approval_id, update="SET " + ", ".join(sets), condition=condition, values=values)

    def set_message(self, approval_id: str, *, ts: str, now: str) -> Approval:
        return self._update(
            approval_id,
            update="SET ts = :ts, updated_at = :now",
            condition="attribute_exists(#status)",
            values={":ts": _s(ts), ":now": _s(now)},
        )

    def decide(self, approval_id: str, *, decision: Decision, decided_by: str, now: str) -> Approval:
        return self._update(
            approval_id,
            update=(
                "SET #status = :decision, decided_by = :by, decided_at = :now, updated_at = :now "
                f"REMOVE {PENDING_KEY}"
            ),
            condition="#status = :pending",
            values={
                ":decision": _s(decision),
                ":by": _s(decided_by),
                ":now": _s(now),
                ":pending": _s(Status.PENDING.value),
            },
        )

    def mark_delivered(self, approval_id: str, *, now: str) -> None:
        self._update(
            approval_id,
            update="SET delivered = :true, updated_at = :now",
            condition="attribute_exists(#status)",
            values={":true": {"BOOL": True}, ":now": _s(now)},
        )

    def expire(self, approval_id: str, *, now: str, expected: frozenset[Status]) -> Approval:
        values: dict[str, AttributeValueTypeDef] = {
            ":expired": _s(Status.EXPIRED.value),
            ":now": _s(now),
        }
        condition = _status_condition(expected, values)
        return self._update(
            approval_id,
            update=f"SET #status = :expired, updated_at = :now REMOVE {PENDING_KEY}",
            condition=condition,
            values=values,
        )
