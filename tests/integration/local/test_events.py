"""The EventBridge bridge: Step Functions targets, RetryPolicy and DLQ, disabled rules."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.integration.local.conftest import ROLE, Aws


def _pass_machine(aws: Aws, name: str, definition: dict[str, Any] | None = None) -> str:
    arn: str = aws.client("stepfunctions").create_state_machine(
        name=name,
        roleArn=ROLE,
        definition=json.dumps(definition or {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
    )["stateMachineArn"]
    return arn


def test_undeliverable_event_goes_to_the_dead_letter_queue(aws: Aws) -> None:
    # Given a rule whose Step Functions target does not exist, with a DLQ
    events, sqs = aws.client("events"), aws.client("sqs")
    queue = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.create_event_bus(Name="b")
    events.put_rule(Name="r", EventBusName="b", EventPattern=json.dumps({"source": ["t"]}))
    missing = "arn:aws:states:us-east-1:123456789012:stateMachine:missing"
    events.put_targets(
        Rule="r",
        EventBusName="b",
        Targets=[
            {
                "Id": "1",
                "Arn": missing,
                "DeadLetterConfig": {"Arn": queue_arn},
                "RetryPolicy": {"MaximumRetryAttempts": 2},
            }
        ],
    )

    # When a matching event is put
    events.put_events(Entries=[{"EventBusName": "b", "Source": "t", "DetailType": "d", "Detail": '{"n": 1}'}])

    # Then it lands in the DLQ with the attributes EventBridge sets
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while not messages and time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue, MessageAttributeNames=["All"], WaitTimeSeconds=1).get(
            "Messages", []
        )
    (message,) = messages
    assert json.loads(message["Body"])["detail"] == {"n": 1}
    assert message["MessageAttributes"]["TARGET_ARN"]["StringValue"] == missing
    assert message["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "StateMachineDoesNotExist"


def test_rule_starts_state_machine_and_wait_is_time_scaled(aws: Aws) -> None:
    sfn, events = aws.client("stepfunctions"), aws.client("events")
    machine = _pass_machine(
        aws, "waits", {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 300, "End": True}}}
    )
    events.create_event_bus(Name="w")
    events.put_rule(Name="r", EventBusName="w", EventPattern=json.dumps({"source": ["w"]}))
    events.put_targets(Rule="r", EventBusName="w", Targets=[{"Id": "1", "Arn": machine}])
    events.put_events(
        Entries=[{"EventBusName": "w", "Source": "w", "DetailType": "d", "Detail": '{"k": "v"}'}]
    )
    deadline = time.monotonic() + 10
    status = None
    while time.monotonic() < deadline and status != "SUCCEEDED":
        runs = sfn.list_executions(stateMachineArn=machine)["executions"]
        status = runs[0]["status"] if runs else None
        time.sleep(0.1)
    assert status == "SUCCEEDED"  # 300 s at scale 0.001
    execution = sfn.describe_execution(executionArn=runs[0]["executionArn"])
    delivered = json.loads(execution["input"])
    assert delivered["detail"] == {"k": "v"}
    assert delivered["source"] == "w"
    assert delivered["time"].endswith("Z")


def test_a_disabled_rule_delivers_nothing(aws: Aws) -> None:
    # Given two rules on one bus for the same events, one of them disabled
    sfn, events = aws.client("stepfunctions"), aws.client("events")
    enabled, disabled = _pass_machine(aws, "on-target"), _pass_machine(aws, "off-target")
    events.create_event_bus(Name="d")
    for name, machine, state in (("on", enabled, "ENABLED"), ("off", disabled, "DISABLED")):
        events.put_rule(Name=name, EventBusName="d", EventPattern=json.dumps({"source": ["d"]}), State=state)
        events.put_targets(Rule=name, EventBusName="d", Targets=[{"Id": "1", "Arn": machine}])

    # When a matching event is put
    events.put_events(Entries=[{"EventBusName": "d", "Source": "d", "DetailType": "x", "Detail": "{}"}])

    # Then only the enabled rule's target runs (the delivery threads have had their chance)
    deadline = time.monotonic() + 10
    while not sfn.list_executions(stateMachineArn=enabled)["executions"] and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    assert len(sfn.list_executions(stateMachineArn=enabled)["executions"]) == 1
    assert sfn.list_executions(stateMachineArn=disabled)["executions"] == []
