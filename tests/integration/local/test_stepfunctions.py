"""The Step Functions bridge: where moto's interpreter differed from AWS, now as AWS does it."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from infrastructure.local import execution_logs
from tests.integration.local.conftest import ROLE, Aws

AWS_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")  # 2019-03-26T20:14:13.192Z
PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}


def _machine(
    aws: Aws, name: str, definition: dict[str, Any], kind: str = "STANDARD", logs: bool = False
) -> str:
    extra: dict[str, Any] = {}
    if logs:
        group = f"/aws/vendedlogs/states/{name}"
        aws.client("logs").create_log_group(logGroupName=group)
        extra["loggingConfiguration"] = {
            "level": "ALL",
            "includeExecutionData": False,
            "destinations": [
                {
                    "cloudWatchLogsLogGroup": {
                        "logGroupArn": f"arn:aws:logs:us-east-1:123456789012:log-group:{group}:*"
                    }
                }
            ],
        }
    arn: str = aws.client("stepfunctions").create_state_machine(
        name=name, roleArn=ROLE, definition=json.dumps(definition), type=kind, **extra
    )["stateMachineArn"]
    return arn


def _finished(aws: Aws, execution_arn: str, timeout: float = 20) -> dict[str, Any]:
    sfn = aws.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.1)


def test_context_object_times_are_in_aws_format(aws: Aws) -> None:
    machine = _machine(
        aws,
        "times",
        {
            "StartAt": "Stamp",
            "States": {
                "Stamp": {
                    "Type": "Pass",
                    "Parameters": {
                        "entered.$": "$$.State.EnteredTime",
                        "started.$": "$$.Execution.StartTime",
                    },
                    "End": True,
                }
            },
        },
    )
    arn = aws.client("stepfunctions").start_execution(stateMachineArn=machine)["executionArn"]
    output = json.loads(_finished(aws, arn)["output"])
    assert AWS_TIME.match(output["entered"]), output
    assert AWS_TIME.match(output["started"]), output


def _callback_machine(aws: Aws, name: str) -> str:
    """A task that waits for its token with a heartbeat, the token handed to a function that
    answers it during its own invoke; a rejection is caught into ``$.rejection``."""
    return _machine(
        aws,
        name,
        {
            "StartAt": "Ask",
            "States": {
                "Ask": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                    "Parameters": {
                        "FunctionName": "aios-test-callback",
                        "Payload": {"token.$": "$$.Task.Token", "reject.$": "$.reject"},
                    },
                    "HeartbeatSeconds": 3,
                    "TimeoutSeconds": 20,
                    "Catch": [
                        {"ErrorEquals": ["Approval.Rejected"], "ResultPath": "$.rejection", "Next": "No"}
                    ],
                    "End": True,
                },
                "No": {"Type": "Pass", "End": True},
            },
        },
    )


def test_a_callback_sent_before_the_invoke_returns_is_not_lost(aws: Aws) -> None:
    # Given a task whose function sends SendTaskSuccess before its own invoke returns
    machine = _callback_machine(aws, "early-success")

    # When it runs
    arn = aws.client("stepfunctions").start_execution(stateMachineArn=machine, input='{"reject": ""}')[
        "executionArn"
    ]

    # Then the answer is the task's result (moto used to time the heartbeat out and drop it)
    described = _finished(aws, arn)
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"]) == {"decision": "approved"}


def test_send_task_failure_cause_reaches_the_execution(aws: Aws) -> None:
    # Given a function that rejects its task with a cause (who and which approval)
    machine = _callback_machine(aws, "early-failure")
    cause = json.dumps({"approver": "U0APPROVER", "approval_id": "apr-1"})

    # When it runs
    sfn = aws.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"reject": cause}))["executionArn"]

    # Then the cause is in the history's TaskFailed event and in the Catch's result
    described = _finished(aws, arn)
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"])["rejection"] == {"Error": "Approval.Rejected", "Cause": cause}
    failed = [e for e in sfn.get_execution_history(executionArn=arn)["events"] if e["type"] == "TaskFailed"]
    assert [e["taskFailedEventDetails"]["cause"] for e in failed] == [cause]


def test_express_executions_are_refused_by_the_execution_apis_as_on_aws(aws: Aws) -> None:
    # Given an Express state machine and one of its executions
    sfn = aws.client("stepfunctions")
    machine = _machine(aws, "express-refused", PASS, kind="EXPRESS")
    arn = sfn.start_execution(stateMachineArn=machine)["executionArn"]

    # Then its ARN is an Express one, and the execution APIs answer as AWS does
    assert arn.split(":")[5] == "express"
    with pytest.raises(ClientError) as listed:
        sfn.list_executions(stateMachineArn=machine)
    assert listed.value.response["Error"] == {
        "Code": "StateMachineTypeNotSupported",
        "Message": "This operation is not supported by this type of state machine",
    }
    for call in (sfn.describe_execution, sfn.get_execution_history, sfn.stop_execution):
        with pytest.raises(ClientError) as refused:
            call(executionArn=arn)
        assert refused.value.response["Error"] == {
            "Code": "InvalidArn",
            "Message": "Invalid Arn: 'Resource type not valid in this context: express'",
        }
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_express_executions_are_in_the_workflow_logs(aws: Aws) -> None:
    # Given an Express state machine that logs at level ALL without execution data
    sfn, logs = aws.client("stepfunctions"), aws.client("logs")
    machine = _machine(
        aws,
        "express-logged",
        {"StartAt": "Stamp", "States": {"Stamp": {"Type": "Pass", "End": True}}},
        kind="EXPRESS",
        logs=True,
    )
    arn = sfn.start_execution(stateMachineArn=machine, input='{"secret": "not in the logs"}')["executionArn"]

    # When it has run, its log records tell its history, as CloudWatch Logs holds them on AWS
    group = execution_logs.log_group_of(sfn, machine)
    assert group == "/aws/vendedlogs/states/express-logged"
    deadline = time.monotonic() + 10
    while (
        not (found := execution_logs.records(logs, group, arn)) or found[-1]["type"] != "ExecutionSucceeded"
    ):
        assert time.monotonic() < deadline, found
        time.sleep(0.1)
    assert [r["type"] for r in found] == [
        "ExecutionStarted",
        "PassStateEntered",
        "PassStateExited",
        "ExecutionSucceeded",
    ]
    assert all(r["event_timestamp"].isdigit() and r["execution_arn"] == arn for r in found)
    assert "not in the logs" not in json.dumps(found)  # includeExecutionData: false
    (listed,) = execution_logs.executions(execution_logs.records(logs, group))
    assert (listed["executionArn"], listed["status"]) == (arn, "SUCCEEDED")
    history = execution_logs.history(found)
    assert history[1]["stateEnteredEventDetails"]["name"] == "Stamp"
