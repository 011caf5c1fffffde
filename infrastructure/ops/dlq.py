"""``aios dlq list | show ID | redrive [ID | --all]``: the platform's dead letters.

The dead-letter queue ``aios-<stage>-dead-letters`` receives what EventBridge could not
deliver to a rule's target (body: the event; attributes ``RULE_ARN``, ``TARGET_ARN``,
``ERROR_CODE``, ``ERROR_MESSAGE``, ``RETRY_ATTEMPTS``:
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html) and failed
asynchronous Lambda invocations (body: the payload; attributes ``RequestID``, ``ErrorCode``,
``ErrorMessage``, but no function:
https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html).

Redrive sends each letter back to its target, exactly once, and deletes it only after the
target accepted it. A Step Functions target is started with an execution name derived from
the event id, so a second redrive of the same event (a delete that failed, two operators)
is refused by Step Functions with ``ExecutionAlreadyExists`` (Standard names are unique for
90 days) and counts as delivered; the workflow's own claim on the business key and the
idempotent side effects hold beyond that. A letter whose target is unknown (Lambda's own
DLQ messages) is left in the queue and said so.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import click
from pydantic import BaseModel, ConfigDict

from infrastructure.ops.actions import execution_arn
from infrastructure.ops.target import Target, emit, render_table, target_options

QUEUE = "dead-letters"
#: How long a letter stays hidden while a verb holds it (released at once when done).
HOLD_SECONDS = 60


class DeadLetter(BaseModel):
    model_config = ConfigDict(frozen=True)

    message_id: str
    receipt_handle: str
    sent_at: datetime | None
    receive_count: int
    target_arn: str | None
    rule_arn: str | None
    error_code: str | None
    error_message: str | None
    retry_attempts: int | None
    event_id: str | None
    detail_type: str | None
    business_key: str | None
    body: str

    @property
    def target_kind(self) -> str:
        if not self.target_arn:
            return "unknown"
        service = self.target_arn.split(":")[2]
        return {"states": "workflow", "lambda": "function"}.get(service, service)

    def summary(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"receipt_handle", "body"}) | {
            "target_kind": self.target_kind
        }


def letter(message: Mapping[str, Any]) -> DeadLetter:
    """A received SQS message as a dead letter, with what EventBridge or Lambda attached."""
    attributes = {
        name: value.get("StringValue") for name, value in (message.get("MessageAttributes") or {}).items()
    }
    system = message.get("Attributes") or {}
    body = str(message.get("Body", ""))
    try:
        event = json.loads(body)
    except ValueError:
        event = None
    event = event if isinstance(event, dict) else {}
    detail = event.get("detail") if isinstance(event.get("detail"), dict) else {}
    sent = system.get("SentTimestamp")
    retries = attributes.get("RETRY_ATTEMPTS")
    return DeadLetter(
        message_id=str(message["MessageId"]),
        receipt_handle=str(message["ReceiptHandle"]),
        sent_at=datetime.fromtimestamp(int(sent) / 1000, UTC) if sent else None,
        receive_count=int(system.get("ApproximateReceiveCount", 0)),
        target_arn=attributes.get("TARGET_ARN"),
        rule_arn=attributes.get("RULE_ARN"),
        error_code=attributes.get("ERROR_CODE") or attributes.get("ErrorCode"),
        error_message=attributes.get("ERROR_MESSAGE") or attributes.get("ErrorMessage"),
        retry_attempts=int(retries) if retries and retries.isdigit() else None,
        event_id=event.get("id"),
        detail_type=event.get("detail-type"),
        business_key=detail.get("business_key") if detail else None,
        body=body,
    )


def execution_name(target_arn: str, event_id: str) -> str:
    """The one execution name a redrive of this event to this target may use (<= 80 chars)."""
    return "dlq-" + hashlib.sha256(f"{target_arn}\n{event_id}".encode()).hexdigest()[:40]


def find(letters: Iterable[DeadLetter], reference: str) -> DeadLetter:
    matches = [d for d in letters if d.message_id == reference or d.message_id.startswith(reference)]
    if len(matches) != 1:
        raise click.ClickException(
            f"{'no' if not matches else 'more than one'} dead letter with id {reference!r}"
        )
    return matches[0]


def render_list(letters: list[DeadLetter]) -> str:
    if not letters:
        return "the dead-letter queue is empty"
    return render_table(
        ["ID", "SENT", "TARGET", "ERROR", "BUSINESS KEY", "EVENT"],
        [
            [
                d.message_id,
                f"{d.sent_at:%Y-%m-%d %H:%M:%S}" if d.sent_at else "-",
                (d.target_arn or "unknown").rsplit(":", 1)[-1] + f" ({d.target_kind})",
                f"{d.error_code or '-'}: {(d.error_message or '')[:60]}",
                d.business_key or "-",
                d.detail_type or "-",
            ]
            for d in letters
        ],
    )


def render_show(d: DeadLetter) -> str:
    fields = [
        ("id", d.message_id),
        ("sent", f"{d.sent_at:%Y-%m-%d %H:%M:%S}Z" if d.sent_at else "-"),
        ("target", f"{d.target_arn or 'unknown'} ({d.target_kind})"),
        ("rule", d.rule_arn or "-"),
        ("error", d.error_code or "-"),
        ("message", d.error_message or "-"),
        ("retries", str(d.retry_attempts) if d.retry_attempts is not None else "-"),
        ("received", f"{d.receive_count} times"),
        ("event", f"{d.event_id or '-'} {d.detail_type or ''}".strip()),
        ("business key", d.business_key or "-"),
    ]
    try:
        body = json.dumps(json.loads(d.body), indent=2, sort_keys=True)
    except ValueError:
        body = d.body
    return "\n".join([*(f"{name:<13}{value}" for name, value in fields), "", body])


class Queue:
    """The dead-letter queue, held while a verb works on it."""

    def __init__(self, target: Target) -> None:
        self.sqs = target.client("sqs")
        self.url = target.queue_url(QUEUE)

    def receive_all(self) -> list[DeadLetter]:
        """Every letter, each held (invisible) for ``HOLD_SECONDS`` until released or deleted."""
        held: dict[str, DeadLetter] = {}
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=HOLD_SECONDS,
                # Long polling asks every SQS server; a short poll may miss letters of a small queue.
                WaitTimeSeconds=1,
                MessageAttributeNames=["All"],
                AttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                return sorted(held.values(), key=lambda d: d.sent_at or datetime.min.replace(tzinfo=UTC))
            for message in messages:
                held[message["MessageId"]] = letter(message)

    def release(self, letters: Iterable[DeadLetter]) -> None:
        for d in letters:
            self.sqs.change_message_visibility(
                QueueUrl=self.url, ReceiptHandle=d.receipt_handle, VisibilityTimeout=0
            )

    def delete(self, d: DeadLetter) -> None:
        self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=d.receipt_handle)


Outcome = Literal["redriven", "already-redriven", "skipped", "failed"]


class Redriven(BaseModel):
    model_config = ConfigDict(frozen=True)

    message_id: str
    target_arn: str | None
    outcome: Outcome
    detail: str


def send_back(target: Target, d: DeadLetter) -> Redriven:
    """Hand ``d`` to its original target once; the outcome says whether it may be deleted."""
    from botocore.exceptions import ClientError  # noqa: PLC0415 - boto3 is imported lazily

    try:
        if d.target_kind == "workflow" and d.target_arn:
            outcome, detail = _to_workflow(target, d, d.target_arn)
        elif d.target_kind == "function" and d.target_arn:
            answer = target.client("lambda").invoke(
                FunctionName=d.target_arn, InvocationType="Event", Payload=d.body.encode()
            )
            outcome, detail = "redriven", f"accepted (HTTP {answer['StatusCode']})"
        else:
            outcome, detail = (
                "skipped",
                "the letter names no target (a Lambda DLQ message): left in the queue",
            )
    except ClientError as error:
        outcome, detail = "failed", f"{error.response['Error']['Code']}: {error}"
    return Redriven(message_id=d.message_id, target_arn=d.target_arn, outcome=outcome, detail=detail)


def _to_workflow(target: Target, d: DeadLetter, machine_arn: str) -> tuple[Outcome, str]:
    from botocore.exceptions import ClientError  # noqa: PLC0415

    name = execution_name(machine_arn, d.event_id or d.message_id)
    sfn = target.client("stepfunctions")
    # StartExecution with a running execution's name and input answers that execution
    # (idempotent), so ask first: a letter whose execution exists was delivered before.
    existing = execution_arn(machine_arn, name)
    try:
        sfn.describe_execution(executionArn=existing)
        return "already-redriven", f"execution {existing} exists: delivered before"
    except ClientError as error:
        if error.response["Error"]["Code"] != "ExecutionDoesNotExist":
            raise
    try:
        started = sfn.start_execution(stateMachineArn=machine_arn, name=name, input=d.body)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
            raise
        return "already-redriven", f"execution {name} exists: delivered before"
    return "redriven", str(started["executionArn"])


def redrive_letters(target: Target, queue: Queue, chosen: list[DeadLetter]) -> list[Redriven]:
    results = []
    for d in chosen:
        outcome = send_back(target, d)
        if outcome.outcome in ("redriven", "already-redriven"):
            queue.delete(d)  # only after the target accepted it
        else:
            queue.release([d])
        results.append(outcome)
    return results


@click.group("dlq")
def dlq() -> None:
    """The platform dead-letter queue: undeliverable events and failed async invocations."""


@dlq.command("list")
@target_options
def dlq_list(stage: str | None, endpoint_url: str | None, as_json: bool) -> None:
    """Every dead letter: id, when, original target, error, business key."""
    queue = Queue(Target.of(stage, endpoint_url))
    letters = queue.receive_all()
    queue.release(letters)
    emit([d.summary() for d in letters], as_json=as_json, table=lambda: render_list(letters))


@dlq.command("show")
@click.argument("message_id")
@target_options
def dlq_show(message_id: str, stage: str | None, endpoint_url: str | None, as_json: bool) -> None:
    """One dead letter (MESSAGE_ID or a unique prefix): its target, error and the event."""
    queue = Queue(Target.of(stage, endpoint_url))
    letters = queue.receive_all()
    queue.release(letters)
    found = find(letters, message_id)
    emit(found.summary() | {"body": found.body}, as_json=as_json, table=lambda: render_show(found))


@dlq.command("redrive")
@click.argument("message_id", required=False)
@click.option("--all", "everything", is_flag=True, help="Every dead letter.")
@target_options
def dlq_redrive(
    message_id: str | None, everything: bool, stage: str | None, endpoint_url: str | None, as_json: bool
) -> None:
    """Send dead letters back to their original target, exactly once; each is deleted only
    after its target accepted it. Give MESSAGE_ID, or --all."""
    if bool(message_id) == everything:
        raise click.UsageError("give a MESSAGE_ID or --all (not both)")
    target = Target.of(stage, endpoint_url)
    queue = Queue(target)
    letters = queue.receive_all()
    try:
        chosen = letters if everything else [find(letters, str(message_id))]
    except click.ClickException:
        queue.release(letters)
        raise
    # Letters not being redriven go back at once.
    queue.release([d for d in letters if d not in chosen])
    results = redrive_letters(target, queue, chosen)
    emit(
        [r.model_dump() for r in results],
        as_json=as_json,
        table=lambda: (
            render_table(["ID", "OUTCOME", "DETAIL"], [[r.message_id, r.outcome, r.detail] for r in results])
            if results
            else "the dead-letter queue is empty"
        ),
    )
    if any(r.outcome == "failed" for r in results):
        raise SystemExit(1)
