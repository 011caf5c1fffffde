"""``aios lineage BUSINESS_KEY``: an item's whole story, from one query.

The lineage table's ``by-business-key`` index holds one row per workflow step of the item,
in the order the steps were entered (sort key ``recorded_at``): its receipt, every step with
the connector and model versions it used, the human decision, the outcome. What lineage
cannot hold (an execution's final error and cause) comes from ``DescribeExecution`` of each
Standard execution the rows name; Express executions have no describable history on AWS.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import click
from pydantic import BaseModel, ConfigDict

from aios.lineage import RESULT_FIELDS
from infrastructure.ops.actions import OPERATOR_FIELDS
from infrastructure.ops.target import Target, emit, render_table, target_options

INDEX = "by-business-key"
#: Lineage fields that say what produced a step's output, and what an operator did.
FACTS = (*RESULT_FIELDS, *OPERATOR_FIELDS)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Step(_Model):
    recorded_at: str
    workflow: str
    state: str
    execution: str
    facts: dict[str, str]
    input_digest: str | None = None
    output_digest: str | None = None


class ExecutionEnd(_Model):
    execution: str
    status: str
    error: str | None = None
    cause: str | None = None


class Story(_Model):
    business_key: str
    steps: tuple[Step, ...]
    executions: tuple[ExecutionEnd, ...] = ()

    @property
    def outcome(self) -> str | None:
        """The last outcome recorded (``Close the books`` writes the invoice's)."""
        return next((s.facts["outcome"] for s in reversed(self.steps) if "outcome" in s.facts), None)


def plain(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item (attribute values) as plain values."""
    return {name: _value(value) for name, value in item.items()}


def _value(value: Mapping[str, Any]) -> Any:
    ((kind, inner),) = value.items()
    if kind == "L":
        return [_value(v) for v in inner]
    if kind == "M":
        return plain(inner)
    if kind == "N":
        return float(inner) if "." in inner else int(inner)
    return inner


def is_express(execution_arn: str) -> bool:
    return ":express:" in execution_arn


def story(business_key: str, items: Iterable[Mapping[str, Any]], ends: Iterable[ExecutionEnd] = ()) -> Story:
    rows = sorted(
        (plain(item) for item in items), key=lambda row: (row.get("recorded_at", ""), row.get("sk", ""))
    )
    steps = tuple(
        Step(
            recorded_at=str(row.get("recorded_at", "")),
            workflow=str(row.get("workflow", "")),
            state=str(row.get("state", "")),
            execution=str(row.get("pk", "")),
            facts={name: str(row[name]) for name in FACTS if row.get(name) is not None},
            input_digest=row.get("input_digest"),
            output_digest=row.get("output_digest"),
        )
        for row in rows
    )
    return Story(business_key=business_key, steps=steps, executions=tuple(ends))


def render(found: Story) -> str:
    if not found.steps:
        return f"no lineage for {found.business_key}"
    table = render_table(
        ["RECORDED", "WORKFLOW", "STATE", "FACTS"],
        [
            [
                step.recorded_at[:23],
                step.workflow,
                step.state,
                " ".join(f"{name}={value}" for name, value in step.facts.items()),
            ]
            for step in found.steps
        ],
    )
    lines = [
        f"lineage of {found.business_key}: {len(found.steps)} steps, outcome {found.outcome or '-'}",
        "",
        table,
    ]
    if found.executions:
        lines += [
            "",
            render_table(
                ["EXECUTION", "STATUS", "ERROR", "CAUSE"],
                [[e.execution, e.status, e.error or "", _short(e.cause or "")] for e in found.executions],
            ),
        ]
    return "\n".join(lines)


def _short(text: str, width: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def query(target: Target, business_key: str) -> list[dict[str, Any]]:
    """The one query: every row of ``business_key`` on the by-business-key index."""
    pages = (
        target.client("dynamodb")
        .get_paginator("query")
        .paginate(
            TableName=target.name("lineage"),
            IndexName=INDEX,
            KeyConditionExpression="business_key = :key",
            ExpressionAttributeValues={":key": {"S": business_key}},
        )
    )
    return [item for page in pages for item in page["Items"]]


def execution_ends(target: Target, execution_arns: Iterable[str]) -> list[ExecutionEnd]:
    from botocore.exceptions import ClientError  # noqa: PLC0415 - boto3 is imported lazily

    sfn = target.client("stepfunctions")
    ends = []
    for arn in dict.fromkeys(execution_arns):
        if is_express(arn) or not arn.startswith("arn:"):
            continue
        try:
            described = sfn.describe_execution(executionArn=arn)
        except ClientError as error:
            # An operator's row written for an execution whose start then failed.
            if error.response["Error"]["Code"] != "ExecutionDoesNotExist":
                raise
            ends.append(ExecutionEnd(execution=arn, status="NEVER STARTED"))
            continue
        ends.append(
            ExecutionEnd(
                execution=arn,
                status=described["status"],
                error=described.get("error"),
                cause=described.get("cause"),
            )
        )
    return ends


@click.command("lineage")
@click.argument("business_key")
@click.option("--no-executions", is_flag=True, help="Lineage rows only: no DescribeExecution calls.")
@target_options
def lineage(
    business_key: str, no_executions: bool, stage: str | None, endpoint_url: str | None, as_json: bool
) -> None:
    """The whole story of BUSINESS_KEY (erp:INV-1001): receipt, every step, versions, the
    human decision, the outcome, and each execution's final status, error and cause."""
    target = Target.of(stage, endpoint_url)
    items = query(target, business_key)
    ends = [] if no_executions else execution_ends(target, (str(plain(i).get("pk", "")) for i in items))
    found = story(business_key, items, ends)
    emit(
        {**found.model_dump(), "outcome": found.outcome},
        as_json=as_json,
        table=lambda: render(found),
    )
    if not found.steps:
        raise SystemExit(1)
