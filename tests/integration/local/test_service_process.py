"""DynamoDB in a moto process of its own (``infrastructure.local.service_process``): the one
``aws=`` endpoint still answers for it, the functions reach it directly, and it ends with
the local mode."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.dynamodb.models import dynamodb_backends

from infrastructure.local import moto_server
from infrastructure.local.harness import LocalProcess
from infrastructure.local.lambda_runtime import worker_environment
from infrastructure.local.service_process import SEPARATE_SERVICES, ServiceProcess
from tests.integration.local.conftest import fixture_function

TABLE = "aios-test-routed"


def _client(endpoint: str, service: str = "dynamodb") -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _create_table(client: Any) -> None:
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture(scope="module")
def routed() -> Iterator[tuple[str, ServiceProcess]]:
    """The local mode's moto server in this process, with DynamoDB served by its own process."""
    dynamodb = ServiceProcess.start("dynamodb")
    moto_server.install()
    moto_server.route("dynamodb", dynamodb.address)
    server = moto_server.LocalMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.get_host_and_port()[1]}", dynamodb
    finally:
        server.stop()
        moto_server.uninstall()
        dynamodb.stop()


def test_the_one_endpoint_answers_for_the_service_from_its_process(
    routed: tuple[str, ServiceProcess],
) -> None:
    endpoint, dynamodb = routed
    # When a table is created and written through the local mode's endpoint
    main = _client(endpoint)
    _create_table(main)
    main.put_item(TableName=TABLE, Item={"pk": {"S": "a"}, "n": {"N": "1"}})

    # Then the service's own process holds it, and this process's moto has no such table
    direct = _client(dynamodb.endpoint)
    assert direct.get_item(TableName=TABLE, Key={"pk": {"S": "a"}})["Item"]["n"] == {"N": "1"}
    assert TABLE not in dynamodb_backends["123456789012"]["us-east-1"].tables

    # And its errors come back as DynamoDB's, through the relay
    with pytest.raises(main.exceptions.ConditionalCheckFailedException):
        main.put_item(
            TableName=TABLE,
            Item={"pk": {"S": "a"}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    with pytest.raises(main.exceptions.ResourceNotFoundException):
        main.describe_table(TableName="missing")

    # An in-process client (the ASL interpreter's DynamoDB tasks) reaches it too
    in_process = moto_server.answer_in_process(_client("https://dynamodb.us-east-1.amazonaws.com"))
    assert in_process.get_item(TableName=TABLE, Key={"pk": {"S": "a"}})["Item"]["pk"] == {"S": "a"}
    # Other services are still this process's
    assert _client(endpoint, "sqs").create_queue(QueueName="stays-here")["QueueUrl"]


def test_moto_api_reset_resets_the_service_process(routed: tuple[str, ServiceProcess]) -> None:
    endpoint, dynamodb = routed
    direct = _client(dynamodb.endpoint)
    if TABLE not in direct.list_tables()["TableNames"]:
        _create_table(direct)
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    assert direct.list_tables()["TableNames"] == []


def test_a_chunked_request_for_the_service_is_relayed_whole(routed: tuple[str, ServiceProcess]) -> None:
    endpoint, _ = routed
    connection = http.client.HTTPConnection(endpoint.removeprefix("http://"), timeout=10)
    try:
        connection.request(
            "POST",
            "/",
            body=iter([b'{"Lim', b'it": 5}']),
            encode_chunked=True,
            headers={
                "content-type": "application/x-amz-json-1.0",
                "x-amz-target": "DynamoDB_20120810.ListTables",
                "authorization": "AWS4-HMAC-SHA256 Credential=testing/20261207/us-east-1/dynamodb/"
                "aws4_request, SignedHeaders=host, Signature=x",
            },
        )
        response = connection.getresponse()
        assert response.status == 200
        assert "TableNames" in json.loads(response.read())
    finally:
        connection.close()


def test_the_functions_reach_the_service_process_directly() -> None:
    environment = worker_environment(
        fixture_function("gamma", "probe"),
        aws_endpoint="http://127.0.0.1:4566",
        region="us-east-1",
        service_endpoints={SEPARATE_SERVICES["dynamodb"]: "http://127.0.0.1:4567"},
    )
    assert environment["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"
    assert environment["AWS_ENDPOINT_URL_DYNAMODB"] == "http://127.0.0.1:4567"
    # botocore's service-specific endpoint variable, as the function's SDK reads it
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:4567")
        patch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
        routed_client = boto3.Session(region_name="us-east-1").client(
            "dynamodb", aws_access_key_id="t", aws_secret_access_key="t"
        )
        other = boto3.Session(region_name="us-east-1").client(
            "sqs", aws_access_key_id="t", aws_secret_access_key="t"
        )
    assert routed_client.meta.endpoint_url == "http://127.0.0.1:4567"
    assert other.meta.endpoint_url == "http://127.0.0.1:4566"


def test_the_process_ends_when_the_local_mode_does() -> None:
    # Its stdin is the local mode's pipe: closed (the local mode stopped or died), it exits.
    dynamodb = ServiceProcess.start("dynamodb")
    assert dynamodb.process.poll() is None
    assert _client(dynamodb.endpoint).list_tables()["TableNames"] == []
    assert dynamodb.process.stdin is not None
    dynamodb.process.stdin.close()
    assert dynamodb.process.wait(timeout=10) == 0


def test_only_declared_services_run_apart() -> None:
    with pytest.raises(ValueError, match="does not run in a process of its own"):
        ServiceProcess.start("stepfunctions")


def test_a_process_that_cannot_start_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    real_popen = subprocess.Popen

    def failing(args: list[str], **kwargs: Any) -> Any:
        return real_popen([args[0], "-c", "import sys; sys.exit(3)"], **kwargs)

    monkeypatch.setattr(subprocess, "Popen", failing)
    with pytest.raises(RuntimeError, match=r"did not start \(exit status 3\)"):
        ServiceProcess.start("dynamodb")


def test_aios_local_up_stops_and_says_so_when_the_service_process_dies() -> None:
    # A local mode whose DynamoDB is gone would answer every webhook 503: it stops instead.
    local = LocalProcess.start(env={"AIOS_LOCAL_IAM": "off"})
    try:
        dynamodb = local.client("dynamodb")
        assert "aios-local-lineage" in dynamodb.list_tables()["TableNames"]  # relayed to its process
        service = next(
            int(entry.name)
            for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and _is_dynamodb_process_of(int(entry.name), local.process.pid)
        )
        os.kill(service, signal.SIGKILL)
        assert local.process.wait(timeout=30) == 1
    finally:
        local.stop()
    assert any("the dynamodb process exited (-9); stopping" in line for line in local.output)


def _is_dynamodb_process_of(pid: int, parent: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return int(stat[1]) == parent and b"service_process\x00dynamodb" in command
