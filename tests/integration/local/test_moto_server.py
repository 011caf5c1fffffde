"""The local mode's moto server (``infrastructure.local.moto_server``) and DynamoDB bridge
(``infrastructure.local.dynamodb``): the same answers as moto's, without its per-request
costs, and conditional writes that are atomic as DynamoDB makes them."""

from __future__ import annotations

import http.client
import io
import json
import sys
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

from infrastructure.local import dynamodb as dynamodb_bridge
from infrastructure.local import moto_server

TARGET = {"content-type": "application/x-amz-json-1.0", "x-amz-target": "DynamoDB_20120810.ListTables"}
AUTH = "AWS4-HMAC-SHA256 Credential=testing/20261202/us-east-1/dynamodb/aws4_request, Signature=x"


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    moto_server.install()
    local = moto_server.LocalMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    local.start()
    try:
        yield local.get_host_and_port()
    finally:
        local.stop()
        moto_server.uninstall()


def _list_tables(connection: http.client.HTTPConnection, **headers: str) -> http.client.HTTPResponse:
    connection.request("POST", "/", body=b"{}", headers={**TARGET, "authorization": AUTH, **headers})
    response = connection.getresponse()
    response.read()
    return response


def test_one_connection_serves_many_requests(server: tuple[str, int]) -> None:
    # Given one HTTP/1.1 connection to the local moto server
    connection = http.client.HTTPConnection(*server, timeout=10)
    try:
        first = _list_tables(connection)
        sock = connection.sock
        second = _list_tables(connection)

        # Then both are answered on it: the server keeps it open, as AWS endpoints do
        assert (first.status, second.status) == (200, 200)
        assert first.getheader("connection") is None
        assert sock is not None and connection.sock is sock
        assert int(first.getheader("content-length") or -1) == len(b'{"TableNames": []}')
    finally:
        connection.close()


def test_a_request_without_a_length_is_served_and_closed(server: tuple[str, int]) -> None:
    # A chunked body goes to werkzeug's own handler, which answers and closes the connection.
    connection = http.client.HTTPConnection(*server, timeout=10)
    try:
        connection.request(
            "POST", "/", body=iter([b"{}"]), headers={**TARGET, "authorization": AUTH}, encode_chunked=True
        )
        response = connection.getresponse()
        assert response.status == 200
        assert json.loads(response.read()) == {"TableNames": []}
        assert response.getheader("connection") == "close"
    finally:
        connection.close()


def test_an_in_process_client_never_leaves_the_process() -> None:
    # A client answered in process whose endpoint no moto backend serves fails, sending nothing.
    client = moto_server.answer_in_process(
        boto3.client(
            "dynamodb",
            endpoint_url="http://aws.invalid",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
    )
    with pytest.raises(moto_server.InProcessOnly):
        client.list_tables()


def _race(client: Any, table: str, rounds: int, contenders: int) -> list[int]:
    """Per round: ``contenders`` threads at once try pending -> their own id; winners per round."""
    winners = []
    for round_ in range(rounds):
        key = {"pk": {"S": f"item-{round_}"}}
        client.put_item(TableName=table, Item={**key, "status": {"S": "pending"}})
        barrier = threading.Barrier(contenders)
        won: list[int] = []

        def contend(
            me: int,
            key: dict[str, Any] = key,
            barrier: threading.Barrier = barrier,
            won: list[int] = won,
        ) -> None:
            barrier.wait()
            try:
                client.update_item(
                    TableName=table,
                    Key=key,
                    UpdateExpression="SET #s = :me",
                    ConditionExpression="#s = :pending",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={":me": {"S": str(me)}, ":pending": {"S": "pending"}},
                )
                won.append(me)
            except client.exceptions.ConditionalCheckFailedException:
                pass

        threads = [threading.Thread(target=contend, args=(me,)) for me in range(contenders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stored = client.get_item(TableName=table, Key=key)["Item"]["status"]["S"]
        # More than one winner, or a winner whose write another overwrote, is a lost decision.
        winners.append(len(won) if [stored] == [str(me) for me in won] else -len(won))
    return winners


def test_a_conditional_write_has_one_winner() -> None:
    # DynamoDB evaluates and applies a conditional write atomically per item (the approval
    # click and the expiry step rely on it): of concurrent writes conditional on the same
    # state, exactly one succeeds.
    # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # interleave the threads as much as the interpreter allows
    dynamodb_bridge.install()
    try:
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            client.create_table(
                TableName="t",
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            winners = _race(client, "t", rounds=30, contenders=8)
    finally:
        dynamodb_bridge.uninstall()
        sys.setswitchinterval(switch)
    assert winners == [1] * 30


def _post(server: tuple[str, int], target: str, body: dict[str, Any], *, chunked: bool) -> tuple[int, Any]:
    """One DynamoDB call, with a ``Content-Length`` (answered without Flask) or chunked (Flask)."""
    connection = http.client.HTTPConnection(*server, timeout=10)
    data = json.dumps(body).encode()
    try:
        connection.request(
            "POST",
            "/",
            body=iter([data]) if chunked else data,
            encode_chunked=chunked,
            headers={**TARGET, "x-amz-target": f"DynamoDB_20120810.{target}", "authorization": AUTH},
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def test_a_json_request_is_answered_without_flask_as_flask_answers_it(
    server: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    direct: list[str] = []
    original = moto_server._dispatch

    def counting(url: str, make_request: Any) -> Any:
        direct.append(url)
        return original(url, make_request)

    monkeypatch.setattr(moto_server, "_dispatch", counting)
    table = {
        "TableName": "parity",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }
    assert _post(server, "CreateTable", table, chunked=False)[0] == 200
    put = {"TableName": "parity", "Item": {"pk": {"S": "x"}, "n": {"N": "7"}}}
    assert _post(server, "PutItem", put, chunked=False)[0] == 200
    calls = [
        ("GetItem", {"TableName": "parity", "Key": {"pk": {"S": "x"}}}),
        ("GetItem", {"TableName": "missing", "Key": {"pk": {"S": "x"}}}),
        ("PutItem", {**put, "ConditionExpression": "attribute_not_exists(pk)"}),
        ("UpdateItem", {"TableName": "parity", "Key": {"pk": {"S": "x"}}, "UpdateExpression": "SET"}),
    ]
    for target, body in calls:
        before = len(direct)
        fast = _post(server, target, body, chunked=False)
        assert len(direct) == before + 1  # this one went the direct way
        flask = _post(server, target, body, chunked=True)
        assert len(direct) == before + 1  # that one did not
        # Then both ways give the same status and body, errors included
        assert fast == flask, target
    assert [status for status, _ in (_post(server, t, b, chunked=False) for t, b in calls)] == [
        200,
        400,
        400,
        400,
    ]
    assert direct[0] == "https://dynamodb.us-east-1.amazonaws.com/"


def test_a_json_request_no_backend_claims_goes_through_flask(server: tuple[str, int]) -> None:
    # SageMaker signs as "sagemaker" but moto serves it at api.sagemaker.<region>: not found
    # the direct way, it is answered by Flask's routing as before.
    connection = http.client.HTTPConnection(*server, timeout=10)
    try:
        connection.request(
            "POST",
            "/",
            body=b"{}",
            headers={
                "content-type": "application/x-amz-json-1.1",
                "x-amz-target": "SageMaker.ListModels",
                "authorization": AUTH.replace("/dynamodb/", "/sagemaker/"),
            },
        )
        response = connection.getresponse()
        assert (response.status, json.loads(response.read())) == (200, {"Models": []})
    finally:
        connection.close()


_FIELD = st.sampled_from(["Host", "Content-Type", "X-Amz-Target", "authorization", "X-A", "Set-Cookie"])
_LINES = st.one_of(
    st.tuples(_FIELD, st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=30)).map(
        lambda f: f"{f[0]}:{f[1]}"
    ),
    st.tuples(_FIELD, st.sampled_from(["", " ", "\t", "  "]), st.text(max_size=10)).map(
        lambda f: f"{f[0]}:{f[1]}{f[2]}".replace("\r", "").replace("\n", "")
    ),
    st.sampled_from(
        [" folded continuation", "\tfolded", "no colon here", "Bad Name: x", ": empty name", "X:"]
    ),
)


@given(lines=st.lists(_LINES, max_size=8), ending=st.sampled_from(["\r\n", "\n"]))
def test_headers_parse_as_the_standard_library_parses_them(lines: list[str], ending: str) -> None:
    block = "".join(line + ending for line in lines).encode("latin-1", "replace") + ending.encode() + b"body"
    fast_stream, stdlib_stream = io.BytesIO(block), io.BytesIO(block)
    fast = moto_server.parse_headers(fast_stream)
    stdlib = moto_server._ORIGINAL_PARSE_HEADERS(stdlib_stream)
    assert fast.items() == stdlib.items()
    assert fast.get("content-type") == stdlib.get("content-type")
    assert fast_stream.read() == stdlib_stream.read() == b"body"


def test_a_json_call_is_answered_in_process_as_botocore_would_be_answered() -> None:
    with mock_aws():
        machine = moto_server.json_call(
            "stepfunctions",
            "CreateStateMachine",
            {
                "name": "direct",
                "roleArn": "arn:aws:iam::123456789012:role/r",
                "definition": json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
            },
            region="us-east-1",
        )["stateMachineArn"]
        started = moto_server.json_call(
            "stepfunctions", "StartExecution", {"stateMachineArn": machine, "name": "e1"}, region="us-east-1"
        )
        # The same resources a botocore client sees
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        assert sfn.describe_execution(executionArn=started["executionArn"])["name"] == "e1"
        # An error answer raises botocore's ClientError with the JSON protocol's code and status
        with pytest.raises(ClientError) as refused:
            moto_server.json_call(
                "stepfunctions",
                "StartExecution",
                {"stateMachineArn": machine + "-missing"},
                region="us-east-1",
            )
        assert refused.value.response["Error"]["Code"] == "StateMachineDoesNotExist"
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        with pytest.raises(ValueError, match="not a JSON-protocol service"):
            moto_server.json_call("s3", "ListBuckets", {}, region="us-east-1")
