"""State machines' service integrations checked against their roles, on moto's ASL interpreter.

A Task state calls AWS as the state machine's role
(https://docs.aws.amazon.com/step-functions/latest/dg/procedure-create-iam-role.html):
a DynamoDB ``putItem`` on a table the role may write succeeds, one on another table fails
the task, and calls from outside any execution are not checked.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infrastructure.iam import states
from infrastructure.iam.enforce import FunctionPolicy

ACCOUNT, REGION = "123456789012", "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/sfn"
ALLOWED, OTHER = "aios-local-lineage", "aios-local-approvals"


def machine(table: str) -> str:
    return json.dumps(
        {
            "StartAt": "Put",
            "States": {
                "Put": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::dynamodb:putItem",
                    "Parameters": {"TableName": table, "Item": {"pk": {"S": "x"}}},
                    "End": True,
                }
            },
        }
    )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        for table in (ALLOWED, OTHER):
            dynamodb.create_table(
                TableName=table,
                BillingMode="PAY_PER_REQUEST",
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            )
        boto3.client("iam", region_name=REGION).create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")
        sfn = boto3.client("stepfunctions", region_name=REGION)
        arns = {
            name: sfn.create_state_machine(name=name, definition=machine(table), roleArn=ROLE)[
                "stateMachineArn"
            ]
            for name, table in (("writes-allowed", ALLOWED), ("writes-other", OTHER))
        }
        policy = {
            "Effect": "Allow",
            "Action": "dynamodb:PutItem",
            "Resource": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{ALLOWED}",
        }
        states.install(
            {
                arn: FunctionPolicy(
                    function=name, role_arn=ROLE, account=ACCOUNT, region=REGION, statements=[policy]
                )
                for name, arn in arns.items()
            }
        )
        try:
            yield arns
        finally:
            states.uninstall()


def finish(execution_arn: str) -> dict[str, Any]:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    for _ in range(100):
        described: dict[str, Any] = dict(sfn.describe_execution(executionArn=execution_arn))
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.05)
    raise AssertionError("execution still running")


def test_a_task_inside_the_role_succeeds_and_one_outside_fails(aws: dict[str, str]) -> None:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    allowed = finish(sfn.start_execution(stateMachineArn=aws["writes-allowed"], input="{}")["executionArn"])
    assert allowed["status"] == "SUCCEEDED", allowed
    denied = finish(sfn.start_execution(stateMachineArn=aws["writes-other"], input="{}")["executionArn"])
    assert denied["status"] == "FAILED", denied
    history = sfn.get_execution_history(executionArn=denied["executionArn"])["events"]
    failure = json.dumps([e for e in history if "Failed" in e["type"]], default=str)
    assert "AccessDenied" in failure and f"table/{OTHER}" in failure
    # Only the allowed write happened; calls outside an execution are not a role's and pass.
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    assert dynamodb.scan(TableName=ALLOWED)["Count"] == 1
    assert dynamodb.scan(TableName=OTHER)["Count"] == 0
