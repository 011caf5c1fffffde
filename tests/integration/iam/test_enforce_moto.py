"""The IAM enforcer on moto: a call inside the policy reaches AWS, one outside it fails as AWS fails it.

Denied calls raise the service's modeled AccessDenied error with AWS's message
(https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html) and
are never sent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from infrastructure.iam import enforce
from infrastructure.iam.enforce import Enforcer, FunctionPolicy
from infrastructure.local import stepfunctions as local_stepfunctions

ACCOUNT, REGION = "123456789012", "us-east-1"
TABLE, OTHER = "aios-local-lineage", "aios-local-approvals"
BUCKET = f"aios-local-documents-{ACCOUNT}-{REGION}"
BUS = "aios-local-aios"
MACHINE = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:aios-local-accounts-payable"

STATEMENTS: list[dict[str, Any]] = [
    {
        "Effect": "Allow",
        "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"],
        "Resource": [
            f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}",
            f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}/index/*",
        ],
    },
    {
        "Effect": "Allow",
        "Action": ["s3:GetObject*", "s3:PutObject"],
        "Resource": f"arn:aws:s3:::{BUCKET}/intake/*",
    },
    {
        "Effect": "Allow",
        "Action": "events:PutEvents",
        "Resource": f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{BUS}",
    },
    {
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:aios/webhooks/stripe-??????",
    },
    {"Effect": "Allow", "Action": "states:SendTaskSuccess", "Resource": MACHINE},
    {
        "Effect": "Deny",
        "Action": "dynamodb:PutItem",
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}},
    },
]


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    policy = FunctionPolicy(
        function="aios-local-webhook-ingest",
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/aios-local-webhook-ingest",
        account=ACCOUNT,
        region=REGION,
        statements=STATEMENTS,
    )
    path = tmp_path / "webhook-ingest.json"
    path.write_text(json.dumps(policy.to_json()))
    return path


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        for table in (TABLE, OTHER):
            dynamodb.create_table(
                TableName=table,
                BillingMode="PAY_PER_REQUEST",
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            )
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        boto3.client("events", region_name=REGION).create_event_bus(Name=BUS)
        boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name="aios/webhooks/stripe", SecretString="s"
        )
        boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name="aios/connectors/erp", SecretString="e"
        )
        yield


@pytest.fixture
def enforcer(aws: None, policy_file: Path) -> Iterator[Enforcer]:
    installed = enforce.install_from_file(policy_file)
    try:
        yield installed
    finally:
        enforce.uninstall()


def denied(error: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response: Any = error.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


def test_allowed_calls_reach_moto(enforcer: Enforcer) -> None:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "a"}})
    assert dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "a"}})["Item"]["pk"]["S"] == "a"
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=BUCKET, Key="intake/x.json", Body=b"{}")
    assert s3.get_object(Bucket=BUCKET, Key="intake/x.json")["Body"].read() == b"{}"
    events = boto3.client("events", region_name=REGION)
    assert (
        events.put_events(Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}", "EventBusName": BUS}])[
            "FailedEntryCount"
        ]
        == 0
    )
    secret = boto3.client("secretsmanager", region_name=REGION).get_secret_value(
        SecretId="aios/webhooks/stripe"
    )
    assert secret["SecretString"] == "s"
    assert enforcer.stats.denied == 0 and enforcer.stats.checked == 6


def test_a_table_outside_the_policy_is_access_denied(enforcer: Enforcer) -> None:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    with pytest.raises(dynamodb.exceptions.ClientError) as error:
        dynamodb.put_item(TableName=OTHER, Item={"pk": {"S": "a"}})
    code, status, message = denied(error)
    assert (code, status) == ("AccessDeniedException", 400)
    assert message == (
        "User: arn:aws:sts::123456789012:assumed-role/aios-local-webhook-ingest/aios-local-webhook-ingest "
        "is not authorized to perform: dynamodb:PutItem on resource: "
        f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{OTHER} because no identity-based policy allows "
        "the dynamodb:PutItem action"
    )
    # Not sent: the other table is still empty.
    enforce.uninstall()
    assert boto3.client("dynamodb", region_name=REGION).scan(TableName=OTHER)["Count"] == 0


def test_an_action_outside_the_policy_is_denied_on_an_allowed_resource(enforcer: Enforcer) -> None:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    with pytest.raises(ClientError) as error:
        dynamodb.delete_item(TableName=TABLE, Key={"pk": {"S": "a"}})
    assert "dynamodb:DeleteItem" in denied(error)[2]


def test_the_denial_is_the_services_modeled_exception(enforcer: Enforcer) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    with pytest.raises(ClientError) as error:
        s3.get_object(Bucket=BUCKET, Key="other/x.json")
    assert denied(error)[:2] == ("AccessDenied", 403)
    secrets = boto3.client("secretsmanager", region_name=REGION)
    with pytest.raises(ClientError) as error:
        secrets.get_secret_value(SecretId="aios/connectors/erp")
    assert denied(error)[:2] == ("AccessDeniedException", 400)


def test_explicit_deny_wins(enforcer: Enforcer) -> None:
    dynamodb = boto3.client("dynamodb", region_name="eu-west-1")
    with pytest.raises(ClientError) as error:
        dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "a"}})
    assert denied(error)[2].endswith("with an explicit deny in an identity-based policy")


def test_new_sessions_are_enforced_too(enforcer: Enforcer) -> None:
    session = boto3.Session(region_name=REGION)
    with pytest.raises(ClientError):
        session.client("dynamodb").get_item(TableName=OTHER, Key={"pk": {"S": "a"}})
    with pytest.raises(ClientError):
        session.resource("dynamodb").Table(OTHER).get_item(Key={"pk": "a"})


def test_an_operation_that_cannot_be_mapped_is_denied(enforcer: Enforcer) -> None:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    with pytest.raises(ClientError) as error:
        dynamodb.execute_statement(Statement='SELECT * FROM "aios-local-lineage"')
    assert "cannot map this call" in denied(error)[2]


def test_send_task_success_is_checked_on_the_tokens_state_machine(aws: None, policy_file: Path) -> None:
    owners = {"token-of-ap": MACHINE, "token-of-intake": MACHINE.replace("accounts-payable", "intake")}
    policy = FunctionPolicy.load(policy_file)
    enforce.install(Enforcer(policy, token_owner=lambda token, _region: owners.get(token)))
    try:
        sfn = boto3.client("stepfunctions", region_name=REGION)
        with pytest.raises(ClientError) as error:
            sfn.send_task_success(taskToken="token-of-intake", output="{}")
        assert f"on resource: {owners['token-of-intake']}" in denied(error)[2]
        with pytest.raises(ClientError) as error:  # allowed, so sent: moto knows no such token
            sfn.send_task_success(taskToken="token-of-ap", output="{}")
        assert denied(error)[0] == "InvalidToken"
    finally:
        enforce.uninstall()


def test_uninstall_stops_enforcing_new_clients(enforcer: Enforcer) -> None:
    enforce.uninstall()
    boto3.client("dynamodb", region_name=REGION).put_item(TableName=OTHER, Item={"pk": {"S": "a"}})


def test_a_task_tokens_state_machine_is_found_in_the_execution_history(aws: None) -> None:
    # Given an execution waiting on a task token it sent to a queue
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="tokens")["QueueUrl"]
    boto3.client("iam", region_name=REGION).create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")
    definition = {
        "StartAt": "Wait",
        "States": {
            "Wait": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue_url, "MessageBody": {"token.$": "$$.Task.Token"}},
                "End": True,
            }
        },
    }
    sfn = boto3.client("stepfunctions", region_name=REGION)
    # ... beside an Express workflow, whose executions AWS (and the local mode) will not list
    sfn.create_state_machine(
        name="intake",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn",
        type="EXPRESS",
    )
    arn = sfn.create_state_machine(
        name="waits", definition=json.dumps(definition), roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn"
    )["stateMachineArn"]
    sfn.start_execution(stateMachineArn=arn, input="{}")
    token = ""
    for _ in range(100):
        messages = sqs.receive_message(QueueUrl=queue_url).get("Messages", [])
        if messages:
            token = json.loads(messages[0]["Body"])["token"]
            break
        time.sleep(0.05)
    assert token

    # When the enforcer asks whose token it is (with the local mode refusing Express listings)
    local_stepfunctions.install()
    try:
        owner = enforce._TokenOwners().find(token, REGION)
    finally:
        local_stepfunctions.uninstall()

    # Then it is the waiting execution's state machine (and an unknown token has none)
    assert owner == arn
    assert enforce._TokenOwners().find("not-a-token", REGION) is None
