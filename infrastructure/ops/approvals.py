"""``aios approvals pending``: what waits for whom, since when, at which ladder stage.

Read from the approvals table (items ``pk = approval#<id>``, aios.approvals.store), whose
``notices`` list the reminder and escalation posted (``<stage>#<entered_at>``). The table has
no index on status, so this is a filtered scan; the pending set is small (one item per
waiting invoice). The task token is never read: the projection leaves it out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import click
from pydantic import BaseModel, ConfigDict

from infrastructure.ops.lineage import plain, query
from infrastructure.ops.target import Target, age, emit, parse_iso, render_table, target_options

#: The policy's decision that sends an invoice to a human (aios.payables).
NEEDS_APPROVAL = "needs-approval"
#: Everything but ``task_token``: an operator's terminal is no place for it.
PROJECTION = ", ".join(
    [
        *("pk", "approval_id", "business_key", "allowed_approvers", "#status", "channel"),
        *("lineage", "invoice", "notices", "updated_at"),
    ]
)


class Pending(BaseModel):
    model_config = ConfigDict(frozen=True)

    approval_id: str
    business_key: str
    approvers: tuple[str, ...]
    channel: str
    stage: str
    waiting_since: datetime
    stage_since: datetime
    amount: str
    vendor: str
    execution: str


def pending(
    items: Iterable[Mapping[str, Any]], requested_at: Mapping[str, datetime] | None = None
) -> list[Pending]:
    """The pending approvals among ``items`` (DynamoDB items), oldest first.

    The item's ``lineage`` is the current stage's; ``requested_at`` (execution ARN -> time,
    from ``request_times``) says when the request itself was posted.
    """
    found = []
    for item in map(plain, items):
        if item.get("status") != "pending" or not str(item.get("pk", "")).startswith("approval#"):
            continue
        context = json.loads(item.get("lineage") or "{}")
        invoice = json.loads(item.get("invoice") or "{}")
        entered = parse_iso(context["entered_at"]) if context.get("entered_at") else _updated(item)
        waiting_since = (requested_at or {}).get(str(context.get("execution", "")), entered)
        stage, stage_since = "request", entered
        notices = item.get("notices") or []
        if notices:
            stage, _, noticed = str(notices[-1]).partition("#")
            stage_since = parse_iso(noticed) if noticed else stage_since
        found.append(
            Pending(
                approval_id=str(item["approval_id"]),
                business_key=str(item["business_key"]),
                approvers=tuple(item.get("allowed_approvers") or ()),
                channel=str(item.get("channel", "")),
                stage=stage,
                waiting_since=waiting_since,
                stage_since=stage_since,
                amount=f"{invoice.get('amount', '')} {invoice.get('currency', '')}".strip(),
                vendor=str(invoice.get("vendor_name", "")),
                execution=str(context.get("execution", "")),
            )
        )
    return sorted(found, key=lambda p: p.waiting_since)


def request_times(rows: Iterable[Mapping[str, Any]]) -> dict[str, datetime]:
    """Execution ARN -> when its approval request was posted: the step the workflow entered
    right after deciding the invoice needs a human (lineage rows, plain values)."""
    by_execution: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_execution.setdefault(str(row.get("pk", "")), []).append(row)
    times = {}
    for execution, steps in by_execution.items():
        ordered = sorted(steps, key=lambda r: str(r.get("recorded_at", "")))
        decided = next((i for i, r in enumerate(ordered) if r.get("decision") == NEEDS_APPROVAL), None)
        if decided is not None and decided + 1 < len(ordered):
            times[execution] = parse_iso(str(ordered[decided + 1]["recorded_at"]))
    return times


def _updated(item: Mapping[str, Any]) -> datetime:
    return parse_iso(str(item["updated_at"])) if item.get("updated_at") else datetime.now(UTC)


def render(found: list[Pending], now: datetime) -> str:
    if not found:
        return "no approval is pending"
    return render_table(
        ["BUSINESS KEY", "STAGE", "WAITING", "STAGE FOR", "APPROVERS", "CHANNEL", "AMOUNT", "APPROVAL"],
        [
            [
                p.business_key,
                p.stage,
                f"{age(p.waiting_since, now)} (since {p.waiting_since:%Y-%m-%d %H:%M:%S}Z)",
                age(p.stage_since, now),
                ",".join(p.approvers),
                p.channel,
                p.amount,
                p.approval_id,
            ]
            for p in found
        ],
    )


def scan(target: Target) -> list[dict[str, Any]]:
    pages = (
        target.client("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=target.name("approvals"),
            FilterExpression="begins_with(pk, :prefix) AND #status = :pending",
            ProjectionExpression=PROJECTION,
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":prefix": {"S": "approval#"}, ":pending": {"S": "pending"}},
        )
    )
    return [item for page in pages for item in page["Items"]]


@click.group("approvals")
def approvals() -> None:
    """Human approvals of the accounts-payable workflow."""


@approvals.command("pending")
@target_options
def approvals_pending(stage: str | None, endpoint_url: str | None, as_json: bool) -> None:
    """Pending approvals, oldest first: who may decide, since when, at which ladder stage
    (request, reminder, escalation)."""
    target = Target.of(stage, endpoint_url)
    items = scan(target)
    # One lineage query per waiting item: the item keeps only its current stage's time.
    rows = [
        plain(row) for key in {str(plain(i).get("business_key")) for i in items} for row in query(target, key)
    ]
    found = pending(items, request_times(rows))
    now = datetime.now(UTC)
    emit(
        [
            {**p.model_dump(mode="json"), "waiting_seconds": int((now - p.waiting_since).total_seconds())}
            for p in found
        ],
        as_json=as_json,
        table=lambda: render(found, now),
    )
