"""``aios redrive EXECUTION | --workflow W --failed-since T``: Step Functions RedriveExecution.

A redrive restarts an unsuccessful Standard execution from its unsuccessful step, with that
step's input, under the same ARN; the steps that succeeded are not run again. It applies to
FAILED, ABORTED and TIMED_OUT executions of Standard workflows that ended within 14 days
(https://docs.aws.amazon.com/step-functions/latest/dg/redrive-executions.html,
https://docs.aws.amazon.com/step-functions/latest/apireference/API_RedriveExecution.html).
Where it cannot help, the verb says so, and what to do instead:

- Express workflows: RedriveExecution is not supported for them. ``aios replay`` (their item
  through the Standard workflow it feeds) or ``aios dlq redrive`` (what intake dead-lettered).
- Older than 14 days: no longer redrivable; ``aios replay BUSINESS_KEY`` starts a new
  execution from the recorded input.
- Ended in a Fail state: the error was caught and handled (the workflow decided the item's
  outcome); the unsuccessful step is the Fail state itself, so a redrive would run it and end
  the same way. Fix the cause, then ``aios replay BUSINESS_KEY``.
- What AWS itself answers as not redrivable (``redriveStatus`` NOT_REDRIVABLE and its reason).

The workflow fails at the failing state (not caught) where a fix and a redrive can finish the
item: see the README, "Which failures are redrivable". Each redrive carries a client token
derived from the execution and its redrive count, so two operators (or a retried call)
redrive it once.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

import click
from pydantic import BaseModel, ConfigDict

from infrastructure.ops import actions
from infrastructure.ops.lineage import is_express
from infrastructure.ops.target import Target, emit, parse_time, render_table, target_options

REDRIVABLE_DAYS = 14
STATE = "Redriven by an operator"
UNSUCCESSFUL = ("FAILED", "TIMED_OUT", "ABORTED")
Verdict = Literal["redriven", "would-redrive", "cannot", "not-needed", "failed"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Assessment(_Model):
    execution: str
    status: str
    business_key: str | None = None
    fail_state: str | None = None
    verdict: Verdict
    detail: str


def business_key_of(described: Mapping[str, Any]) -> str | None:
    try:
        event = json.loads(described.get("input") or "{}")
    except ValueError:
        return None
    detail = event.get("detail") if isinstance(event, dict) else None
    key = detail.get("business_key") if isinstance(detail, dict) else None
    return str(key) if key else None


def fail_state_of(events: Iterable[Mapping[str, Any]]) -> str | None:
    """The Fail state the execution ended in, if it ended in one (history, any order)."""
    ordered = sorted(events, key=lambda e: int(e["id"]))
    if not ordered or ordered[-1]["type"] != "ExecutionFailed":
        return None
    entered = [e for e in ordered if str(e["type"]).endswith("StateEntered")]
    if entered and entered[-1]["type"] == "FailStateEntered":
        return str(entered[-1]["stateEnteredEventDetails"]["name"])
    return None


def assess(
    described: Mapping[str, Any],
    *,
    express: bool,
    fail_state: str | None,
    now: datetime,
) -> Assessment:
    """Whether RedriveExecution applies to ``described`` (DescribeExecution), and if not, why
    and what to do instead."""
    arn, status = str(described["executionArn"]), str(described["status"])
    key = business_key_of(described)
    replay = f"aios replay {key}" if key else "aios replay BUSINESS_KEY"

    def verdict(kind: Verdict, detail: str) -> Assessment:
        return Assessment(
            execution=arn, status=status, business_key=key, fail_state=fail_state, verdict=kind, detail=detail
        )

    if express:
        return verdict(
            "cannot",
            "Express workflows cannot be redriven. Instead: aios dlq redrive (what it dead-lettered), "
            "or aios replay the item through the Standard workflow it feeds.",
        )
    if status not in UNSUCCESSFUL:
        return verdict("not-needed", f"{status}: only FAILED, TIMED_OUT or ABORTED executions are redriven")
    stopped = described.get("stopDate")
    if stopped is not None and now - stopped > timedelta(days=REDRIVABLE_DAYS):
        return verdict("cannot", f"ended more than {REDRIVABLE_DAYS} days ago. Instead: {replay}.")
    if fail_state is not None:
        return verdict(
            "cannot",
            f"ended in the Fail state {fail_state!r} ({described.get('error') or '-'}): the error was caught "
            f"and the outcome decided, so a redrive would end the same way. Fix the cause, then {replay}.",
        )
    if described.get("redriveStatus") == "NOT_REDRIVABLE":
        reason = described.get("redriveStatusReason") or "Step Functions says so"
        return verdict("cannot", f"not redrivable: {reason}. Instead: {replay}.")
    return verdict("redriven", "redrivable: restarts at the failed step")


def client_token(execution_arn: str, redrive_count: int) -> str:
    """One token per (execution, redrive): a repeated call redrives it once (<= 64 chars)."""
    return "aios-" + hashlib.sha256(f"{execution_arn}#{redrive_count}".encode()).hexdigest()[:40]


def _history(target: Target, arn: str) -> list[dict[str, Any]]:
    pages = target.client("stepfunctions").get_paginator("get_execution_history").paginate(executionArn=arn)
    return [event for page in pages for event in page["events"]]


def examine(target: Target, arn: str, now: datetime) -> tuple[Assessment, dict[str, Any]]:
    sfn = target.client("stepfunctions")
    if is_express(arn):
        return assess({"executionArn": arn, "status": "UNKNOWN"}, express=True, fail_state=None, now=now), {}
    described: dict[str, Any] = sfn.describe_execution(executionArn=arn)
    fail_state = fail_state_of(_history(target, arn)) if described["status"] == "FAILED" else None
    return assess(described, express=False, fail_state=fail_state, now=now), described


def redrive_one(target: Target, arn: str, now: datetime, *, dry_run: bool) -> Assessment:
    from botocore.exceptions import ClientError  # noqa: PLC0415 - boto3 is imported lazily

    found, described = examine(target, arn, now)
    if found.verdict != "redriven" or dry_run:
        return found if found.verdict != "redriven" else found.model_copy(update={"verdict": "would-redrive"})
    try:
        target.client("stepfunctions").redrive_execution(
            executionArn=arn, clientToken=client_token(arn, int(described.get("redriveCount") or 0))
        )
    except ClientError as error:
        code = error.response["Error"]["Code"]
        return found.model_copy(update={"verdict": "failed", "detail": f"{code}: {error}"})
    if found.business_key:
        # In the item's story, between the failed attempt's rows and the redriven ones.
        actions.record(
            target,
            pk=arn,
            business_key=found.business_key,
            workflow=arn.split(":")[6].removeprefix(target.name("")),
            state=STATE,
            at=actions.now(),
            facts={
                "action": "redrive",
                "operator": actions.operator(target),
                "redrive_count": int(described.get("redriveCount") or 0) + 1,
            },
        )
    return found


def unsuccessful_since(target: Target, workflow: str, since: datetime) -> list[str]:
    """The workflow's unsuccessful executions that ended at or after ``since``, oldest first."""
    sfn = target.client("stepfunctions")
    machine = target.state_machine_arn(workflow)
    if sfn.describe_state_machine(stateMachineArn=machine)["type"] == "EXPRESS":
        raise click.ClickException(
            f"{workflow} is Express: its executions cannot be redriven (nor listed). "
            "Instead: aios dlq redrive, or aios replay an item."
        )
    found = []
    for status in UNSUCCESSFUL:
        pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=machine, statusFilter=status)
        for execution in (e for page in pages for e in page["executions"]):
            stopped = execution.get("stopDate") or execution["startDate"]
            if stopped >= since:
                found.append((stopped, str(execution["executionArn"])))
    return [arn for _, arn in sorted(found)]


def wait_for(target: Target, results: list[Assessment], timeout: float) -> list[Assessment]:
    sfn = target.client("stepfunctions")
    deadline = time.monotonic() + timeout
    done = []
    for result in results:
        if result.verdict != "redriven":
            done.append(result)
            continue
        while True:
            status = str(sfn.describe_execution(executionArn=result.execution)["status"])
            if status not in ("RUNNING", "PENDING_REDRIVE") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        done.append(result.model_copy(update={"status": status, "detail": f"redriven, now {status}"}))
    return done


def render(results: list[Assessment]) -> str:
    if not results:
        return "nothing to redrive"
    return render_table(
        ["EXECUTION", "STATUS", "VERDICT", "DETAIL"],
        [[r.execution, r.status, r.verdict, r.detail] for r in results],
    )


@click.command("redrive")
@click.argument("execution", required=False)
@click.option("--workflow", default=None, help="With --failed-since: the workflow whose failures to redrive.")
@click.option(
    "--failed-since", default=None, help="Unsuccessful since this time (ISO 8601 UTC, or 90m, 24h, 7d)."
)
@click.option("--dry-run", is_flag=True, help="Say what would be redriven, redrive nothing.")
@click.option(
    "--wait", "wait_seconds", type=float, default=0, help="Wait up to this many seconds for the ends."
)
@target_options
def redrive(  # noqa: PLR0917 - one parameter per option, as click passes them
    execution: str | None,
    workflow: str | None,
    failed_since: str | None,
    dry_run: bool,
    wait_seconds: float,
    stage: str | None,
    endpoint_url: str | None,
    as_json: bool,
) -> None:
    """Redrive EXECUTION (an ARN), or every unsuccessful execution of --workflow since
    --failed-since: Step Functions restarts each at its failed step. Says plainly where a
    redrive cannot help (Express, older than 14 days, ended in a Fail state) and what to do
    instead."""
    if bool(execution) == bool(workflow or failed_since) or bool(workflow) != bool(failed_since):
        raise click.UsageError("give an EXECUTION, or --workflow and --failed-since")
    target = Target.of(stage, endpoint_url)
    at = actions.now()
    arns = (
        [str(execution)]
        if execution
        else unsuccessful_since(target, str(workflow), parse_time(str(failed_since)))
    )
    results = [redrive_one(target, arn, at, dry_run=dry_run) for arn in arns]
    if wait_seconds > 0 and not dry_run:
        results = wait_for(target, results, wait_seconds)
    emit([r.model_dump() for r in results], as_json=as_json, table=lambda: render(results))
    # One execution asked for and not redriven: the caller's script should notice.
    if any(r.verdict == "failed" for r in results) or (execution and results[0].verdict == "cannot"):
        raise SystemExit(1)
