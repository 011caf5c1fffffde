"""The moto bridges, one at a time, on an in-process moto server."""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from infrastructure.local import bridges
from infrastructure.platform.model import HttpRouteSpec

ROUTE = bridges.Route.of(HttpRouteSpec(method="POST", path="/webhooks/{source}", function="webhook-ingest"))


def test_http_api_event_is_payload_format_2() -> None:
    event = bridges.http_api_event(
        ROUTE,
        method="POST",
        raw_path="/webhooks/stripe",
        raw_query="a=1&a=2&b=x%20y",
        headers=[
            ("Content-Type", "application/json"),
            ("X-Dup", "1"),
            ("x-dup", "2"),
            ("Cookie", "c=1; d=2"),
        ],
        body=b'{"ok": true}',
        source_ip="127.0.0.1",
        domain_name="localhost",
        path_parameters={"source": "stripe"},
    )
    assert event["version"] == "2.0"
    assert event["routeKey"] == event["requestContext"]["routeKey"] == "POST /webhooks/{source}"
    assert event["headers"] == {"content-type": "application/json", "x-dup": "1,2"}
    assert event["cookies"] == ["c=1", "d=2"]
    assert event["queryStringParameters"] == {"a": "1,2", "b": "x y"}
    assert event["pathParameters"] == {"source": "stripe"}
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["stage"] == "$default"
    assert (event["body"], event["isBase64Encoded"]) == ('{"ok": true}', False)


def test_binary_body_is_base64() -> None:
    event = bridges.http_api_event(
        ROUTE,
        method="POST",
        raw_path="/webhooks/x",
        raw_query="",
        headers=[],
        body=b"\xff\xfe",
        source_ip="127.0.0.1",
        domain_name="localhost",
        path_parameters={"source": "x"},
    )
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\xfe"


def test_route_patterns() -> None:
    assert ROUTE.pattern.match("/webhooks/stripe")
    assert not ROUTE.pattern.match("/webhooks/a/b")


def test_proxy_results_map_to_http() -> None:
    ok = bridges.proxy_reply(
        bridges.Invocation(json.dumps({"statusCode": 202, "headers": {"x-a": "1"}, "body": "{}"}).encode())
    )
    assert (ok.status, ok.body, ("x-a", "1") in ok.headers) == (202, b"{}", True)
    bare = bridges.proxy_reply(bridges.Invocation(json.dumps({"hello": 1}).encode()))
    assert (bare.status, json.loads(bare.body)) == (200, {"hello": 1})
    failed = bridges.proxy_reply(bridges.Invocation(b'{"errorType": "X"}', function_error="Unhandled"))
    assert (failed.status, json.loads(failed.body)) == (500, {"message": "Internal Server Error"})


def test_faults_count_down() -> None:
    faults = bridges.Faults.parse('{"f": {"error": "Connector.Unavailable", "times": 2}}')
    assert [faults.draw("f") is not None for _ in range(3)] == [True, True, False]
    assert faults.draw("other") is None
    error = bridges.injected_error("Connector.Unavailable", "boom")
    assert type(error).__name__ == "Connector.Unavailable"


@pytest.fixture(scope="module")
def aws() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
    saved = {k: os.environ.get(k) for k in ("MOTO_PORT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(
        {"MOTO_PORT": url.rsplit(":", 1)[1], "AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t"}
    )
    config = json.dumps({"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})
    urllib.request.urlopen(
        urllib.request.Request(f"{url}/moto-api/config", data=config.encode(), method="POST")
    )
    bridges.install(bridges.LocalLambda({}, bridges.Faults()), aws_endpoint=url, time_scale=0.001)
    try:
        yield url
    finally:
        bridges.uninstall()
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _client(aws: str, service: str) -> Any:
    return boto3.client(service, endpoint_url=aws, region_name="us-east-1")  # type: ignore[call-overload]


ROLE = "arn:aws:iam::123456789012:role/r"


def test_undeliverable_event_goes_to_the_dead_letter_queue(aws: str) -> None:
    # Given a rule whose Step Functions target does not exist, with a DLQ
    events, sqs = _client(aws, "events"), _client(aws, "sqs")
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


def test_rule_starts_state_machine_and_wait_is_time_scaled(aws: str) -> None:
    sfn, events = _client(aws, "stepfunctions"), _client(aws, "events")
    machine = sfn.create_state_machine(
        name="waits",
        roleArn=ROLE,
        definition=json.dumps(
            {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 300, "End": True}}}
        ),
    )["stateMachineArn"]
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
