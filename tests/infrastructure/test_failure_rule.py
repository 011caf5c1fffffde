"""A workflow's ``on_failure``: the rule that hands its unsuccessful executions to a function.

What AWS requires, and where it says so:
- Step Functions puts "Step Functions Execution Status Change" events (source ``aws.states``)
  on the account's *default* bus, for Standard workflows only; ``detail.status`` is FAILED,
  TIMED_OUT or ABORTED for an execution that ended unsuccessfully and ``detail`` carries what
  DescribeExecution answers (``stateMachineArn``, ``input``, ``error``, ``cause``):
  https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html,
  https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-states.html
- EventBridge invokes a Lambda target under the function's resource policy; scoped to the
  rule with ``SourceArn`` no other rule (or account) may use it:
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html
- A target's dead-letter queue must let this rule send to it:
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html

Every list is derived from the platform description (``PLATFORM``), never written out; the
session synth (``synthesized``) fails on any unacknowledged cdk-nag finding.
"""

from __future__ import annotations

from typing import Any

import pytest

from infrastructure.iam.policy import Request, allows
from infrastructure.platform import PLATFORM
from infrastructure.platform.spec import (
    FAILURE_MAX_EVENT_AGE_SECONDS,
    FAILURE_RETRY_ATTEMPTS,
    FAILURE_STATUSES,
    Platform,
    WorkflowSpec,
)
from tests.infrastructure.policy_contracts import ACCOUNT, PARTITION, REGION, DeployedPolicies
from tests.infrastructure.synth import Synthesized

RECORDED = [w for w in PLATFORM.workflows if w.on_failure]


def _resources(synthesized: Synthesized, kind: str) -> dict[str, dict[str, Any]]:
    found = synthesized.platform.find_resources(kind)
    return {logical_id: dict(resource) for logical_id, resource in found.items()}


def _logical_id(synthesized: Synthesized, kind: str, name_field: str, name: str) -> str:
    (logical_id,) = [
        logical_id
        for logical_id, resource in _resources(synthesized, kind).items()
        if resource["Properties"].get(name_field) == name
    ]
    return logical_id


def _rule(synthesized: Synthesized, workflow: WorkflowSpec) -> tuple[str, dict[str, Any]]:
    rule_id = _logical_id(synthesized, "AWS::Events::Rule", "Name", f"aios-dev-{workflow.name}-on-failure")
    return rule_id, _resources(synthesized, "AWS::Events::Rule")[rule_id]["Properties"]


def _alias_id(synthesized: Synthesized, function: str) -> str:
    function_id = _logical_id(synthesized, "AWS::Lambda::Function", "FunctionName", f"aios-dev-{function}")
    (alias_id,) = [
        logical_id
        for logical_id, alias in _resources(synthesized, "AWS::Lambda::Alias").items()
        if alias["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    return alias_id


def test_accounts_payable_records_its_failures_with_the_policy_function() -> None:
    assert PLATFORM.workflow("accounts-payable").on_failure == "invoice-policy"


@pytest.mark.parametrize("workflow", RECORDED, ids=lambda w: w.name)
def test_the_rule_matches_unsuccessful_executions_of_this_state_machine_on_the_default_bus(
    synthesized: Synthesized, workflow: WorkflowSpec
) -> None:
    _, rule = _rule(synthesized, workflow)
    machine_id = _logical_id(
        synthesized, "AWS::StepFunctions::StateMachine", "StateMachineName", f"aios-dev-{workflow.name}"
    )

    assert "EventBusName" not in rule  # the default bus, where AWS services put their events
    assert rule["State"] == "ENABLED"
    assert rule["EventPattern"] == {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"status": ["FAILED", "TIMED_OUT", "ABORTED"], "stateMachineArn": [{"Ref": machine_id}]},
    }
    assert tuple(rule["EventPattern"]["detail"]["status"]) == FAILURE_STATUSES


@pytest.mark.parametrize("workflow", RECORDED, ids=lambda w: w.name)
def test_the_target_is_the_functions_live_alias_retried_and_dead_lettered(
    synthesized: Synthesized, workflow: WorkflowSpec
) -> None:
    assert workflow.on_failure is not None
    _, rule = _rule(synthesized, workflow)
    (queue_id,) = _resources(synthesized, "AWS::SQS::Queue")

    (target,) = rule["Targets"]

    assert target["Arn"] == {"Ref": _alias_id(synthesized, workflow.on_failure)}
    assert "RoleArn" not in target  # a Lambda target is authorized by the function's policy
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    assert target["RetryPolicy"] == {
        "MaximumRetryAttempts": FAILURE_RETRY_ATTEMPTS,
        "MaximumEventAgeInSeconds": FAILURE_MAX_EVENT_AGE_SECONDS,
    }


@pytest.mark.parametrize("workflow", RECORDED, ids=lambda w: w.name)
def test_only_this_rule_may_invoke_the_function_and_send_its_dead_letters(
    synthesized: Synthesized, workflow: WorkflowSpec
) -> None:
    assert workflow.on_failure is not None
    rule_id, _ = _rule(synthesized, workflow)
    alias_id = _alias_id(synthesized, workflow.on_failure)
    rule_arn = {"Fn::GetAtt": [rule_id, "Arn"]}

    from_events = [
        p["Properties"]
        for p in _resources(synthesized, "AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "events.amazonaws.com"
        and p["Properties"]["FunctionName"] == {"Ref": alias_id}
    ]

    assert from_events == [
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Ref": alias_id},
            "Principal": "events.amazonaws.com",
            "SourceArn": rule_arn,
        }
    ]
    statements = [
        s
        for policy in _resources(synthesized, "AWS::SQS::QueuePolicy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert [
        s["Condition"]
        for s in statements
        if s.get("Condition", {}).get("ArnEquals") == {"aws:SourceArn": rule_arn}
    ] == [{"ArnEquals": {"aws:SourceArn": rule_arn}}]


def test_the_description_refuses_an_unknown_function_or_an_express_workflow() -> None:
    workflow = PLATFORM.workflow("accounts-payable")
    others = tuple(w for w in PLATFORM.workflows if w.name != workflow.name)

    def with_workflow(changed: WorkflowSpec) -> Platform:
        return Platform.model_validate({**PLATFORM.__dict__, "workflows": (*others, changed)})

    with pytest.raises(ValueError, match="on_failure names unknown no-such-function"):
        with_workflow(workflow.model_copy(update={"on_failure": "no-such-function"}))
    with pytest.raises(ValueError, match="EXPRESS: it emits no status changes"):
        with_workflow(workflow.model_copy(update={"type": "EXPRESS"}))
    assert with_workflow(workflow).workflow(workflow.name).on_failure == workflow.on_failure


@pytest.mark.parametrize("workflow", RECORDED, ids=lambda w: w.name)
def test_its_dead_letters_may_use_the_queues_key(synthesized: Synthesized, workflow: WorkflowSpec) -> None:
    """The dead-letter queue is KMS-encrypted: EventBridge needs GenerateDataKey and Decrypt on
    the key for this rule too, whose ARN on the default bus has no bus segment
    (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html)."""
    deployed = DeployedPolicies(synthesized.templates())
    rule = f"arn:{PARTITION}:events:{REGION}:{ACCOUNT}:rule/aios-dev-{workflow.name}-on-failure"
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        use = Request(
            action=action,
            resource=deployed.key_arn(),
            principal={"Service": "events.amazonaws.com"},
            context={"aws:SourceArn": rule, "aws:SourceAccount": ACCOUNT},
        )
        assert allows(deployed.key_policy(), use), action
