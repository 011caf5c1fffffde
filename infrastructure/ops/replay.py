"""``aios replay BUSINESS_KEY``: run one item again, from its recorded input, in a new execution.

The item's executions come from its lineage (one query) and from its claim; the latest one's
input (``DescribeExecution``: Standard executions keep it 90 days) starts a new Standard
execution whose name the verb chooses, so its ARN is known before it starts. Before starting
it, the claim (``claim#<key>`` in the approvals table, which the workflow's first state takes
with a conditional put) is handed over to that ARN with a write conditional on the claim
still naming the execution that was inspected: a delivery that arrives meanwhile finds the
claim held and ends "Already handled", a second operator's replay fails its condition, and
the new execution's own claim finds itself the holder.

A replay is refused while any execution of the item still runs (it would race it), after a
compensation (the ERP posting was reversed: the side-effect records keyed on the business key
would hand the replay the reversed posting), and for an item that ended ``SUCCEEDED`` unless
``--force``. Side effects are keyed on the business key (``aios.connectors.kit.once`` and the
payment provider's ``Idempotency-Key`` derived from it), so a forced replay of a paid invoice
re-runs its steps without paying again, for as long as those records live
(``IDEMPOTENCY_EXPIRES_SECONDS``, 24 h; Stripe keeps keys 24 h too:
https://docs.stripe.com/api/idempotent_requests): past that, a replay of anything that may
have posted or paid is refused. The new execution's first lineage row, written before it
starts, names the execution it replays (``replay_of``) and the operator.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import click
from pydantic import BaseModel, ConfigDict

from aios.connectors.kit import IDEMPOTENCY_EXPIRES_SECONDS
from aios.lineage import digest
from infrastructure.ops import actions
from infrastructure.ops.lineage import plain, query, story
from infrastructure.ops.target import Target, emit, render_table, target_options

WORKFLOW = "accounts-payable"
STATE = "Replayed by an operator"
#: Statuses of an execution that has not ended.
RUNNING = frozenset({"RUNNING", "PENDING_REDRIVE"})
#: Errors after which a replay would act on a reversed posting (the workflow's Fail states).
COMPENSATED = frozenset({"Invoice.Compensated", "Invoice.CompensationFailed"})
#: The one failure that, by the workflow's definition, posted and paid nothing.
NOTHING_DONE = "Invoice.NotProcessed"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Previous(_Model):
    """The item's latest execution, as the replay found it."""

    execution: str
    status: str
    started: datetime
    stopped: datetime | None = None
    error: str | None = None
    outcome: str | None = None


class Replayed(_Model):
    business_key: str
    previous: Previous
    execution: str
    status: str
    claim: str


def refusal(previous: Previous, *, force: bool, now: datetime) -> str | None:
    """Why ``previous`` must not be replayed now (``None``: it may)."""
    what = f"{previous.execution} ({previous.status})"
    if previous.status in RUNNING:
        return f"{what} is still running: a replay would race it. Wait for it to end, or stop it first."
    if previous.error in COMPENSATED or previous.outcome == "compensated":
        return (
            f"{what} ended {previous.error or previous.outcome}: its ERP posting was reversed, and the "
            "side-effect records keyed on the business key would give a replay that reversed posting. "
            "Resolve it by hand (aios lineage shows what happened)."
        )
    if previous.status == "SUCCEEDED" and not force:
        return (
            f"{what} ended with outcome {previous.outcome or '-'}: nothing to re-run. --force re-runs it; "
            "side effects keyed on the business key (posting, payment) are not repeated."
        )
    ended = previous.stopped or previous.started
    window = timedelta(seconds=IDEMPOTENCY_EXPIRES_SECONDS)
    if previous.error != NOTHING_DONE and now - ended > window:
        return (
            f"{what} ended more than {window} ago: the records that keep its side effects from "
            "repeating have expired, so a replay could post or pay again."
        )
    return None


def replay_name(business_key: str, at: datetime) -> str:
    """A new execution's name (<= 80 characters of ``[A-Za-z0-9-_]``): when, and which item."""
    item = hashlib.sha256(business_key.encode()).hexdigest()[:16]
    return f"replay-{at:%Y%m%dT%H%M%S}{at.microsecond // 1000:03d}-{item}"


def candidates(rows: Iterable[Mapping[str, Any]], machine_arn: str, holder: str | None) -> list[str]:
    """The executions of the workflow that lineage (plain rows) and the claim name for the item."""
    prefix = machine_arn.replace(":stateMachine:", ":execution:", 1) + ":"
    found = [str(r["pk"]) for r in rows if str(r.get("pk", "")).startswith(prefix)]
    if holder and holder.startswith(prefix):
        found.append(holder)
    return list(dict.fromkeys(found))


def describe_all(target: Target, arns: Iterable[str]) -> list[dict[str, Any]]:
    from botocore.exceptions import ClientError  # noqa: PLC0415 - boto3 is imported lazily

    sfn = target.client("stepfunctions")
    described = []
    for arn in arns:
        try:
            described.append(sfn.describe_execution(executionArn=arn))
        except ClientError as error:
            # A claim handed to a replay whose StartExecution then failed names no execution.
            if error.response["Error"]["Code"] != "ExecutionDoesNotExist":
                raise
    return described


def claim_holder(target: Target, business_key: str) -> str | None:
    item = (
        target.client("dynamodb")
        .get_item(
            TableName=target.name(actions.CLAIM_TABLE),
            Key=actions.claim_key(business_key),
            ConsistentRead=True,
        )
        .get("Item")
    )
    return str(item["execution"]["S"]) if item else None


def hand_over_claim(target: Target, business_key: str, holder: str | None, to: str, at: datetime) -> str:
    """Point the claim at ``to``, only if it still names ``holder`` (or, with none, still is none)."""
    from botocore.exceptions import ClientError  # noqa: PLC0415

    if holder is None:
        return "none held: the new execution claims it"
    try:
        target.client("dynamodb").update_item(
            TableName=target.name(actions.CLAIM_TABLE),
            Key=actions.claim_key(business_key),
            UpdateExpression="SET #execution = :to, released_from = :from, released_at = :at",
            ConditionExpression="#execution = :from",
            ExpressionAttributeNames={"#execution": "execution"},
            ExpressionAttributeValues={
                ":to": {"S": to},
                ":from": {"S": holder},
                ":at": {"S": at.isoformat()},
            },
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            raise click.ClickException(
                f"the claim on {business_key} changed while replaying (another replay or delivery): "
                "look again with aios lineage"
            ) from None
        raise
    return f"handed over from {holder}"


def replay_one(target: Target, business_key: str, workflow: str, *, force: bool) -> Replayed:
    sfn = target.client("stepfunctions")
    machine = target.state_machine_arn(workflow)
    if sfn.describe_state_machine(stateMachineArn=machine)["type"] != "STANDARD":
        raise click.ClickException(f"{workflow} is Express: its executions keep no input to replay")
    items = query(target, business_key)
    rows = [plain(item) for item in items]
    holder = claim_holder(target, business_key)
    described = describe_all(target, candidates(rows, machine, holder))
    if not described:
        receipt = min(rows, key=lambda r: str(r.get("recorded_at", "")), default=None)
        hint = (
            f"lineage has its receipt ({receipt.get('workflow')}, {receipt.get('recorded_at')}) but no "
            f"{workflow} execution: if {workflow} was paused, aios resume {workflow}; if the delivery "
            "was dead-lettered, aios dlq list"
            if receipt
            else "nothing in lineage either"
        )
        raise click.ClickException(f"no execution of {workflow} for {business_key}: {hint}")
    # Every execution of the item must have ended, not only the one replayed: the claim's
    # holder did the work (a repeated delivery ends "Already handled"), else the latest.
    running = [d for d in described if d["status"] in RUNNING]
    holding = [d for d in described if d["executionArn"] == holder]
    chosen = (running or holding or [max(described, key=lambda d: d["startDate"])])[0]
    previous = Previous(
        execution=str(chosen["executionArn"]),
        status=str(chosen["status"]),
        started=chosen["startDate"],
        stopped=chosen.get("stopDate"),
        error=chosen.get("error"),
        outcome=story(business_key, items).outcome,
    )
    at = actions.now()
    if reason := refusal(previous, force=force, now=at):
        raise click.ClickException(f"not replayed: {reason}")
    name = replay_name(business_key, at)
    new_arn = actions.execution_arn(machine, name)
    recorded_input = str(chosen["input"])
    claim = hand_over_claim(target, business_key, holder, new_arn, at)
    actions.record(
        target,
        pk=new_arn,
        business_key=business_key,
        workflow=workflow,
        state=STATE,
        at=at,
        facts={
            "action": "replay",
            "replay_of": previous.execution,
            "operator": actions.operator(target),
            "input_digest": digest(json.loads(recorded_input)),
        },
    )
    started = sfn.start_execution(
        stateMachineArn=target.workflow_entry_arn(workflow), name=name, input=recorded_input
    )
    if started["executionArn"] != new_arn:  # the claim was handed to the ARN we predicted
        raise click.ClickException(
            f"started {started['executionArn']}, not {new_arn} as predicted: the claim names the latter; "
            "hand it over by hand (approvals table, claim#<key>)"
        )
    return Replayed(
        business_key=business_key,
        previous=previous,
        execution=str(started["executionArn"]),
        status="RUNNING",
        claim=claim,
    )


def wait_for(target: Target, execution: str, timeout: float) -> str:
    sfn = target.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while True:
        status = str(sfn.describe_execution(executionArn=execution)["status"])
        if status not in RUNNING or time.monotonic() > deadline:
            return status
        time.sleep(0.5)


def render(result: Replayed) -> str:
    previous = result.previous
    return "\n".join(
        [
            f"replayed {result.business_key}",
            "",
            render_table(
                ["", "EXECUTION", "STATUS", "DETAIL"],
                [
                    [
                        "previous",
                        previous.execution,
                        previous.status,
                        f"error {previous.error or '-'}, outcome {previous.outcome or '-'}",
                    ],
                    ["new", result.execution, result.status, f"claim {result.claim}"],
                ],
            ),
        ]
    )


@click.command("replay")
@click.argument("business_key")
@click.option("--workflow", default=WORKFLOW, show_default=True, help="The workflow to run it through.")
@click.option("--force", is_flag=True, help="Also re-run an item whose execution SUCCEEDED.")
@click.option(
    "--wait", "wait_seconds", type=float, default=0, help="Wait up to this many seconds for it to end."
)
@target_options
def replay(  # noqa: PLR0917 - one parameter per option, as click passes them
    business_key: str,
    workflow: str,
    force: bool,
    wait_seconds: float,
    stage: str | None,
    endpoint_url: str | None,
    as_json: bool,
) -> None:
    """Run BUSINESS_KEY again from its recorded input in a new execution, linked to the old one
    in lineage; its claim is handed over with a conditional write. Refused while an execution
    of it runs, after a compensation, and (without --force) when it succeeded."""
    target = Target.of(stage, endpoint_url)
    result = replay_one(target, business_key, workflow, force=force)
    if wait_seconds > 0:
        result = result.model_copy(update={"status": wait_for(target, result.execution, wait_seconds)})
    emit(result.model_dump(mode="json"), as_json=as_json, table=lambda: render(result))
