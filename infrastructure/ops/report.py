"""``aios report [--since T]``: what the platform did for accounts payable, and what it cost.

Computed from the workflow's executions (``ListExecutions``, ``GetExecutionHistory``) and the
lineage table (one scan of the rows recorded since ``T``), not from CloudWatch, so it works
the same on the local mode:

- invoices: business keys with lineage rows of the workflow (a second delivery that ended
  "Already handled" writes none, so duplicates are not invoices);
- outcome: the ``outcome`` of the latest closing row, "Close the books" (paid, rejected,
  expired, compensated, invalid, failed) or "Execution failed" (failed, timed_out, aborted:
  a step failed after its retries; a redrive or replay that finishes writes a later one),
  else the execution's status;
- automated: paid on the automatic route (``decision = auto-approved``) with no human
  decision; automation coverage = automated / invoices that ended;
- human touches: "Human decision" rows (each an approver's click that decided);
- cycle time: from the receipt (the item's first lineage row, written by intake) to the end
  of its last execution;
- transitions: ``*StateEntered`` events of the history (what Standard workflows are billed by);
- cost per 1,000 invoices at list price (us-east-1, ``PRICES``): state transitions, Lambda
  requests and GB-seconds (memory from the platform description; a callback task's wait is
  not Lambda time, it is billed ``CALLBACK_TASK_SECONDS``), Express intake requests, EventBridge
  events, DynamoDB writes (lineage rows and their index, the claim, webhook idempotency) and
  HTTP API requests. The SageMaker endpoint is billed per instance-hour whatever the volume,
  so it is left out.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import click
from pydantic import BaseModel, ConfigDict

from aios.payables import FAILED_STATE
from infrastructure.ops.lineage import plain
from infrastructure.ops.target import Target, emit, parse_iso, parse_time, render_table, target_options
from infrastructure.platform.spec import Platform

WORKFLOW = "accounts-payable"
DECIDE_STATE = "Decide: automatic or human"
CLOSE_STATE = "Close the books"
#: The rows that record how an execution ended: its own closing step, or the failure rule's.
CLOSING_STATES = (CLOSE_STATE, FAILED_STATE)
DECISION_STATE = "Human decision"
CALLBACK_TASK_SECONDS = 1.0
#: USD list prices, us-east-1, December 2026 (the pricing pages below).
PRICES = {
    # https://aws.amazon.com/step-functions/pricing/
    "standard_transition": 0.025 / 1000,
    "express_request": 1.00 / 1_000_000,
    # https://aws.amazon.com/lambda/pricing/ (Arm)
    "lambda_request": 0.20 / 1_000_000,
    "lambda_gb_second": 0.0000133334,
    # https://aws.amazon.com/eventbridge/pricing/ (custom events)
    "event": 1.00 / 1_000_000,
    # https://aws.amazon.com/dynamodb/pricing/on-demand/ (write request units)
    "dynamodb_write": 0.625 / 1_000_000,
    # https://aws.amazon.com/api-gateway/pricing/ (HTTP APIs)
    "http_request": 1.00 / 1_000_000,
}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class ExecutionFacts(_Model):
    """What one execution's history says, for the report."""

    arn: str
    status: str
    started: datetime
    stopped: datetime | None
    transitions: int
    lambda_requests: int
    lambda_gb_seconds: float
    put_events: int


class Invoice(_Model):
    business_key: str
    outcome: str
    route: str | None
    human_touches: int
    automated: bool
    cycle_seconds: float | None
    transitions: int
    cost_usd: float
    #: When its last execution ended (``None`` while it runs): the x of ``--plot``.
    ended_at: datetime | None = None


class Report(_Model):
    since: datetime | None
    invoices: int
    ended: int
    automated: int
    automation_coverage: float | None
    human_touches: int
    cycle_time_p50_seconds: float | None
    cycle_time_p95_seconds: float | None
    outcomes: dict[str, int]
    transitions_per_invoice: float | None
    cost_per_1000_invoices_usd: float | None
    duplicates: int
    items: tuple[Invoice, ...]


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (``p`` in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _function_name(arn_or_name: str) -> str:
    """``arn:aws:lambda:...:function:aios-dev-erp-connector:3`` -> ``aios-dev-erp-connector``."""
    if ":function:" in arn_or_name:
        return arn_or_name.split(":function:", 1)[1].split(":", 1)[0]
    return arn_or_name


def execution_facts(
    execution: Mapping[str, Any], events: Iterable[Mapping[str, Any]], memory_mb: Mapping[str, int]
) -> ExecutionFacts:
    """Transitions, Lambda work and events of one execution, from its history.

    ``memory_mb``: physical function name -> configured memory (from the description).
    """
    transitions = lambda_requests = put_events = 0
    gb_seconds = 0.0
    scheduled: dict[int, tuple[str, bool, datetime]] = {}
    for event in events:
        kind = str(event["type"])
        if kind.endswith("StateEntered"):
            transitions += 1
        elif kind == "TaskScheduled":
            details = event["taskScheduledEventDetails"]
            if details.get("resourceType") == "lambda":
                lambda_requests += 1
                function = _function_name(
                    str(json.loads(details.get("parameters") or "{}").get("FunctionName", ""))
                )
                callback = str(details.get("resource", "")).endswith("waitForTaskToken")
                scheduled[int(event["id"])] = (function, callback, event["timestamp"])
            elif details.get("resourceType") == "events":
                put_events += 1
        elif kind in ("TaskSucceeded", "TaskFailed", "TaskTimedOut"):
            started = _scheduled_of(event, scheduled)
            if started is not None:
                function, callback, at = started
                seconds = CALLBACK_TASK_SECONDS if callback else (event["timestamp"] - at).total_seconds()
                gb_seconds += memory_mb.get(function, 128) / 1024 * max(seconds, 0.001)
    return ExecutionFacts(
        arn=str(execution["executionArn"]),
        status=str(execution["status"]),
        started=execution["startDate"],
        stopped=execution.get("stopDate"),
        transitions=transitions,
        lambda_requests=lambda_requests,
        lambda_gb_seconds=gb_seconds,
        put_events=put_events,
    )


def _scheduled_of(
    event: Mapping[str, Any], scheduled: dict[int, tuple[str, bool, datetime]]
) -> tuple[str, bool, datetime] | None:
    """The TaskScheduled a task's end belongs to: the latest scheduled before it (events of one
    state are sequential; ``previousEventId`` chains through TaskStarted)."""
    earlier = [event_id for event_id in scheduled if event_id < int(event["id"])]
    return scheduled.pop(max(earlier)) if earlier else None


def compute(
    executions: Iterable[ExecutionFacts],
    rows: Iterable[Mapping[str, Any]],
    *,
    workflow: str = WORKFLOW,
    since: datetime | None = None,
) -> Report:
    """The report over ``executions`` of ``workflow`` and the lineage ``rows`` (plain values)."""
    by_execution = {e.arn: e for e in executions}
    every = [dict(r) for r in rows]
    keys_of: dict[str, str] = {}
    for row in every:
        if row.get("workflow") == workflow and row.get("pk") in by_execution:
            keys_of[str(row["pk"])] = str(row["business_key"])
    invoices: list[Invoice] = []
    for business_key in sorted(set(keys_of.values())):
        mine = sorted(
            (by_execution[arn] for arn, key in keys_of.items() if key == business_key),
            key=lambda e: e.started,
        )
        key_rows = sorted(
            (r for r in every if r.get("business_key") == business_key), key=lambda r: str(r["recorded_at"])
        )
        invoices.append(_invoice(business_key, mine, key_rows, workflow))
    ended = [i for i in invoices if i.outcome not in ("RUNNING", "in progress")]
    automated = sum(1 for i in ended if i.automated)
    cycles = [i.cycle_seconds for i in ended if i.cycle_seconds is not None]
    return Report(
        since=since,
        invoices=len(invoices),
        ended=len(ended),
        automated=automated,
        automation_coverage=automated / len(ended) if ended else None,
        human_touches=sum(i.human_touches for i in invoices),
        cycle_time_p50_seconds=percentile(cycles, 50),
        cycle_time_p95_seconds=percentile(cycles, 95),
        outcomes=dict(Counter(i.outcome for i in invoices)),
        transitions_per_invoice=sum(i.transitions for i in invoices) / len(invoices) if invoices else None,
        cost_per_1000_invoices_usd=1000 * sum(i.cost_usd for i in invoices) / len(invoices)
        if invoices
        else None,
        duplicates=len(set(by_execution) - set(keys_of)),
        items=tuple(invoices),
    )


def _invoice(
    business_key: str, mine: list[ExecutionFacts], rows: list[dict[str, Any]], workflow: str
) -> Invoice:
    last = mine[-1]
    closing = [
        r
        for r in rows
        if r.get("workflow") == workflow and r.get("state") in CLOSING_STATES and r.get("outcome")
    ]
    if closing and not (closing[-1]["state"] == FAILED_STATE and last.status == "RUNNING"):
        outcome = str(closing[-1]["outcome"])
    else:  # nothing closed yet, or a redrive runs on from a failure
        outcome = "in progress" if last.status == "RUNNING" else last.status.lower()
    decisions = [r for r in rows if r.get("state") == DECIDE_STATE and r.get("decision")]
    route = None
    if decisions:
        route = "auto" if decisions[-1]["decision"] == "auto-approved" else "human"
    touches = sum(1 for r in rows if r.get("state") == DECISION_STATE)
    received = parse_iso(str(rows[0]["recorded_at"])) if rows else last.started
    cycle = (last.stopped - received).total_seconds() if last.stopped and outcome != "in progress" else None
    intake_rows = sum(1 for r in rows if r.get("workflow") != workflow)
    transitions = sum(e.transitions for e in mine)
    cost = (
        transitions * PRICES["standard_transition"]
        + sum(e.lambda_requests for e in mine) * PRICES["lambda_request"]
        + sum(e.lambda_gb_seconds for e in mine) * PRICES["lambda_gb_second"]
        + intake_rows * PRICES["express_request"]
        # the webhook's PutEvents, intake's "Invoice Received", and the workflow's own events
        + (1 + intake_rows + sum(e.put_events for e in mine)) * PRICES["event"]
        # lineage rows and their index entry, the claim, the webhook's idempotency record (2 writes)
        + (2 * len(rows) + len(mine) + 2) * PRICES["dynamodb_write"]
        + (1 + touches) * PRICES["http_request"]
    )
    return Invoice(
        business_key=business_key,
        outcome=outcome,
        route=route,
        human_touches=touches,
        automated=outcome == "paid" and route == "auto" and touches == 0,
        cycle_seconds=cycle,
        transitions=transitions,
        cost_usd=cost,
        ended_at=last.stopped if outcome != "in progress" else None,
    )


#: The demo's words for the outcomes ``Close the books`` records (``infrastructure.demo``).
SUMMARY_OUTCOMES = {
    "rejected": "rejected",
    "expired": "auto-rejected",
    "invalid": "invalid",
    "compensated": "compensated",
    "failed": "failed",
}


def summary_counts(report: Report) -> dict[str, int]:
    """The report in the terms of ``make demo``'s summary line, to compare the two: invoices,
    automated (paid, no human), approved (paid by a human), paid, and each other outcome."""
    paid = report.outcomes.get("paid", 0)
    counts = {"invoices": report.invoices, "automated": report.automated, "approved": paid - report.automated}
    counts["paid"] = paid
    for outcome, word in SUMMARY_OUTCOMES.items():
        counts[word] = report.outcomes.get(outcome, 0)
    counts["other"] = report.invoices - paid - sum(counts[w] for w in SUMMARY_OUTCOMES.values())
    return counts


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def render(report: Report) -> str:
    coverage = "-" if report.automation_coverage is None else f"{report.automation_coverage:.1%}"
    per_invoice = "-" if report.transitions_per_invoice is None else f"{report.transitions_per_invoice:.1f}"
    cost = "-" if report.cost_per_1000_invoices_usd is None else f"${report.cost_per_1000_invoices_usd:.4f}"
    summary = [
        ["invoices", str(report.invoices)],
        ["ended", str(report.ended)],
        ["automated", f"{report.automated} ({coverage} of ended)"],
        ["human touches", str(report.human_touches)],
        ["cycle time p50", _seconds(report.cycle_time_p50_seconds)],
        ["cycle time p95", _seconds(report.cycle_time_p95_seconds)],
        *([f"outcome {name}", str(count)] for name, count in sorted(report.outcomes.items())),
        ["transitions / invoice", per_invoice],
        ["cost / 1,000 invoices", f"{cost} (list price, us-east-1; endpoint hours excluded)"],
        ["duplicate deliveries", str(report.duplicates)],
    ]
    header = "since " + (f"{report.since:%Y-%m-%d %H:%M:%S}Z" if report.since else "the beginning")
    return "\n".join([header, "", render_table(["", "VALUE"], summary)])


def scan_lineage(target: Target, since: datetime | None) -> list[dict[str, Any]]:
    options: dict[str, Any] = {"TableName": target.name("lineage")}
    if since is not None:
        options |= {
            "FilterExpression": "recorded_at >= :since",
            "ExpressionAttributeValues": {":since": {"S": since.isoformat().replace("+00:00", "Z")[:19]}},
        }
    pages = target.client("dynamodb").get_paginator("scan").paginate(**options)
    return [plain(item) for page in pages for item in page["Items"]]


def gather(target: Target, platform: Platform, workflow: str, since: datetime | None) -> list[ExecutionFacts]:
    sfn = target.client("stepfunctions")
    memory = {target.name(f.name): f.memory_mb for f in platform.functions}
    facts = []
    pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=target.state_machine_arn(workflow))
    for execution in (e for page in pages for e in page["executions"]):
        if since is not None and execution["startDate"] < since:
            continue
        history = sfn.get_paginator("get_execution_history").paginate(executionArn=execution["executionArn"])
        facts.append(execution_facts(execution, (e for page in history for e in page["events"]), memory))
    return facts


@click.command("report")
@click.option(
    "--since", default=None, help="From this time (ISO 8601, UTC) or age (90m, 24h, 7d); default: all."
)
@click.option(
    "--workflow", default=WORKFLOW, show_default=True, help="The invoice workflow of the description."
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Also draw automation ratio and cycle time over time into this PNG (needs matplotlib).",
)
@target_options
def report(  # noqa: PLR0917 - one parameter per option, as click passes them
    since: str | None,
    workflow: str,
    plot_path: str | None,
    stage: str | None,
    endpoint_url: str | None,
    as_json: bool,
) -> None:
    """Automation coverage, human touches, cycle time p50/p95, outcomes, transitions per
    invoice and cost per 1,000 invoices at list price, from executions and lineage."""
    from infrastructure.platform import PLATFORM  # noqa: PLC0415 - the description's function sizes

    start = parse_time(since) if since else None
    target = Target.of(stage, endpoint_url)
    result = compute(
        gather(target, PLATFORM, workflow, start), scan_lineage(target, start), workflow=workflow, since=start
    )
    if plot_path:
        from infrastructure.ops.plot import plot  # noqa: PLC0415 - matplotlib only when asked

        plot(result, plot_path)
    emit(result.model_dump(mode="json"), as_json=as_json, table=lambda: render(result))
    if plot_path:
        click.echo(f"plot: {plot_path}", err=True)
