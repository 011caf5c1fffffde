"""Scheduled functions (``FunctionSpec.schedule``) and the approvals gauge, as CDK renders them.

A scheduled function gets a rule on the default bus with its schedule expression (the only
bus that runs schedules: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-rule-schedule.html)
targeting its ``live`` alias, and a resource policy on that alias for events.amazonaws.com from
that rule alone (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-lambda-permissions).
The gauge reads the approvals table only, and the SLO alarm watches what it emits.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from aios.approvals import gauge, store
from infrastructure.constructs.functions import LIVE_ALIAS
from infrastructure.iam.policy import Request, allows
from infrastructure.platform import PLATFORM
from infrastructure.platform.spec import FunctionSpec
from tests.infrastructure.policy_contracts import ACCOUNT, PARTITION, REGION, DeployedPolicies
from tests.infrastructure.synth import Synthesized

SCHEDULED = [f for f in PLATFORM.functions if f.schedule]


def _resources(synthesized: Synthesized, kind: str) -> dict[str, Any]:
    return dict(synthesized.platform.find_resources(kind))


def _function_ids(synthesized: Synthesized) -> dict[str, str]:
    return {
        resource["Properties"]["FunctionName"]: logical_id
        for logical_id, resource in _resources(synthesized, "AWS::Lambda::Function").items()
        if "FunctionName" in resource["Properties"]
    }


def test_the_gauge_is_scheduled_every_minute() -> None:
    assert [(f.name, f.schedule) for f in SCHEDULED] == [(gauge.SERVICE, "rate(1 minute)")]


@pytest.mark.parametrize(
    "expression",
    ["rate(1 minutes)", "rate(2 minute)", "rate(0 minutes)", "rate(5 seconds)", "cron(* * *)", "daily"],
)
def test_a_malformed_schedule_is_refused(expression: str) -> None:
    with pytest.raises(ValidationError):
        FunctionSpec(name="probe-fn", description="probe", code="approvals_gauge", schedule=expression)


@pytest.mark.parametrize(
    "expression", ["rate(1 minute)", "rate(15 minutes)", "rate(2 days)", "cron(0 12 * * ? *)"]
)
def test_a_schedule_expression_is_accepted(expression: str) -> None:
    assert FunctionSpec(
        name="probe-fn", description="probe", code="approvals_gauge", schedule=expression
    ).schedule


def test_each_scheduled_function_has_a_rule_on_the_default_bus_targeting_its_alias(
    synthesized: Synthesized,
) -> None:
    rules = _resources(synthesized, "AWS::Events::Rule")
    aliases = _resources(synthesized, "AWS::Lambda::Alias")
    functions = _function_ids(synthesized)
    permissions = _resources(synthesized, "AWS::Lambda::Permission")
    queues = _resources(synthesized, "AWS::SQS::Queue")
    assert SCHEDULED
    for spec in SCHEDULED:
        [(rule_id, rule)] = [
            (i, r)
            for i, r in rules.items()
            if r["Properties"].get("Name") == f"aios-dev-{spec.name}-schedule"
        ]
        properties = rule["Properties"]
        assert properties["ScheduleExpression"] == spec.schedule
        assert "EventBusName" not in properties and "EventPattern" not in properties
        (target,) = properties["Targets"]
        [alias_id] = [
            i
            for i, a in aliases.items()
            if a["Properties"]["FunctionName"] == {"Ref": functions[f"aios-dev-{spec.name}"]}
        ]
        assert aliases[alias_id]["Properties"]["Name"] == LIVE_ALIAS
        assert target["Arn"] == {"Ref": alias_id}
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [next(iter(queues)), "Arn"]}}
        assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
        # Invoke permission: on the alias, for EventBridge, from this rule only.
        granted = [
            p["Properties"]
            for p in permissions.values()
            if p["Properties"]["Principal"] == "events.amazonaws.com"
            and p["Properties"]["FunctionName"] == {"Ref": alias_id}
        ]
        assert granted == [
            {
                "Action": "lambda:InvokeFunction",
                "FunctionName": {"Ref": alias_id},
                "Principal": "events.amazonaws.com",
                "SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]},
            }
        ]


def _table_arn(table: str) -> str:
    return f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/aios-dev-{table}"


def test_the_gauge_may_read_the_approvals_table_and_nothing_else(synthesized: Synthesized) -> None:
    statements = DeployedPolicies(synthesized.templates()).role_policy(f"aios-dev-{gauge.SERVICE}")
    approvals = _table_arn("approvals")
    index = f"{approvals}/index/{store.PENDING_INDEX}"
    assert allows(statements, Request(action="dynamodb:Query", resource=index))
    for action in (
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
    ):
        assert not allows(statements, Request(action=action, resource=approvals)), action
    for table in {t.id for t in PLATFORM.tables} - {"approvals"}:
        for action in ("dynamodb:Query", "dynamodb:Scan", "dynamodb:GetItem"):
            assert not allows(statements, Request(action=action, resource=_table_arn(table))), (table, action)
    assert not any(
        str(s.get("Action")).startswith(("states:", "events:", "s3:", "secretsmanager:")) for s in statements
    )


def test_the_pending_index_is_sparse_and_keys_only(synthesized: Synthesized) -> None:
    [table] = [
        t["Properties"]
        for t in synthesized.data.find_resources("AWS::DynamoDB::Table").values()
        if t["Properties"].get("TableName") == "aios-dev-approvals"
    ]
    [index] = [i for i in table["GlobalSecondaryIndexes"] if i["IndexName"] == store.PENDING_INDEX]
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert index["KeySchema"] == [
        {"AttributeName": store.PENDING_KEY, "KeyType": "HASH"},
        {"AttributeName": store.REQUESTED_AT, "KeyType": "RANGE"},
    ]


def _alarm_metric(alarm: dict[str, Any]) -> tuple[str, str, dict[str, str]]:
    properties = alarm["Properties"]
    if "MetricName" in properties:
        stat = properties
    else:
        [query] = [m for m in properties["Metrics"] if "MetricStat" in m]
        stat = query["MetricStat"]["Metric"]
    dimensions = {d["Name"]: d["Value"] for d in stat.get("Dimensions", [])}
    return stat["Namespace"], stat["MetricName"], dimensions


def test_the_beyond_the_ladder_alarm_watches_what_the_gauge_emits(synthesized: Synthesized) -> None:
    [alarm] = [
        a
        for a in _resources(synthesized, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("AlarmName") == "aios-dev-slo-approval-beyond-ladder"
    ]
    from aios.config import METRICS_NAMESPACE  # noqa: PLC0415 - the gauge's Metrics namespace

    assert _alarm_metric(alarm) == (METRICS_NAMESPACE, gauge.OLDEST_AGE_METRIC, gauge.DIMENSIONS)
    # The gauge's service dimension is its function's name (POWERTOOLS_SERVICE_NAME).
    functions = _resources(synthesized, "AWS::Lambda::Function")
    [environment] = [
        f["Properties"]["Environment"]["Variables"]
        for f in functions.values()
        if f["Properties"].get("FunctionName") == f"aios-dev-{gauge.SERVICE}"
    ]
    assert environment["POWERTOOLS_SERVICE_NAME"] == gauge.DIMENSIONS["service"]


# -- the local mode's periods (infrastructure/local/schedules.py) -----------------------------


@pytest.mark.parametrize(
    ("expression", "scale", "override", "seconds"),
    [
        ("rate(1 minute)", 1.0, None, 60),
        ("rate(5 minutes)", 0.5, None, 150),
        ("rate(2 hours)", 1.0, None, 7200),
        ("rate(1 day)", 0.01, None, 864),
        # Scaled below the floor: never more often than every 5 s without the override.
        ("rate(1 minute)", 0.01, None, 5),
        ("cron(0 12 * * ? *)", 1.0, None, 60),
        ("rate(1 hour)", 0.01, 1.5, 1.5),
    ],
)
def test_local_period(expression: str, scale: float, override: float | None, seconds: float) -> None:
    from infrastructure.local.schedules import period_seconds  # noqa: PLC0415 - imports moto

    assert period_seconds(expression, time_scale=scale, override=override) == pytest.approx(seconds)


def test_local_override_must_be_positive() -> None:
    from infrastructure.local.schedules import parse_override  # noqa: PLC0415

    assert parse_override(None) is None and parse_override("2") == 2.0
    with pytest.raises(ValueError, match="AIOS_LOCAL_SCHEDULE_SECONDS"):
        parse_override("0")


def test_a_scheduled_rule_may_dead_letter_to_the_encrypted_queue(synthesized: Synthesized) -> None:
    """A default-bus rule's ARN has no bus segment (``rule/<name>``): the queue policy and the
    key policy must admit it as they admit the platform bus's rules
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html,
    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html)."""
    deployed = DeployedPolicies(synthesized.templates())
    events = {"Service": "events.amazonaws.com"}
    queue = f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:aios-dev-dead-letters"
    for spec in SCHEDULED:
        rule = f"arn:{PARTITION}:events:{REGION}:{ACCOUNT}:rule/aios-dev-{spec.name}-schedule"
        send = Request(
            action="sqs:SendMessage",
            resource=queue,
            principal=events,
            context={"aws:SourceArn": rule, "aws:SecureTransport": "true"},
        )
        assert allows(deployed.queue_policy("aios-dev-dead-letters"), send)
        for action in ("kms:GenerateDataKey", "kms:Decrypt"):
            use = Request(
                action=action,
                resource=deployed.key_arn(),
                principal=events,
                context={"aws:SourceArn": rule, "aws:SourceAccount": ACCOUNT},
            )
            assert allows(deployed.key_policy(), use), action
    # ... and only those: another default-bus rule of the account is refused the key.
    other = f"arn:{PARTITION}:events:{REGION}:{ACCOUNT}:rule/someone-elses-rule"
    assert not allows(
        deployed.key_policy(),
        Request(
            action="kms:GenerateDataKey",
            resource=deployed.key_arn(),
            principal=events,
            context={"aws:SourceArn": other, "aws:SourceAccount": ACCOUNT},
        ),
    )
