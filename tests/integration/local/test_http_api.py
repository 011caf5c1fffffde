"""The HTTP API bridge: API Gateway HTTP API payload format 2.0 and proxy results."""

from __future__ import annotations

import base64
import json
import socket
import threading

from infrastructure.local import http_api
from infrastructure.local.faults import Faults
from infrastructure.local.lambda_runtime import Invocation, LambdaRuntime
from infrastructure.platform.spec import HttpRouteSpec

ROUTE = http_api.Route.of(HttpRouteSpec(method="POST", path="/webhooks/{source}", function="webhook-ingest"))


def test_http_api_event_is_payload_format_2() -> None:
    event = http_api.http_api_event(
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
    event = http_api.http_api_event(
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
    ok = http_api.proxy_reply(
        Invocation(json.dumps({"statusCode": 202, "headers": {"x-a": "1"}, "body": "{}"}).encode())
    )
    assert (ok.status, ok.body, ("x-a", "1") in ok.headers) == (202, b"{}", True)
    bare = http_api.proxy_reply(Invocation(json.dumps({"hello": 1}).encode()))
    assert (bare.status, json.loads(bare.body)) == (200, {"hello": 1})
    failed = http_api.proxy_reply(Invocation(b'{"errorType": "X"}', function_error="Unhandled"))
    assert (failed.status, json.loads(failed.body)) == (500, {"message": "Internal Server Error"})


def test_a_burst_of_senders_is_queued_not_dropped() -> None:
    # Given the API server busy (not accepting: its thread waits for the interpreter lock)
    runtime = LambdaRuntime({}, Faults(), aws_endpoint="http://127.0.0.1:9")
    server = http_api.HttpApiServer(("127.0.0.1", 0), routes=[], runtime=runtime)
    sockets: list[socket.socket] = []
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    try:
        # When 64 senders connect at once, each is queued by the kernel (a listen backlog of
        # socketserver's default 5 dropped the rest: their SYN was resent a second later)
        for _ in range(64):
            sockets.append(socket.create_connection(server.server_address, timeout=0.5))
        # Then once the server accepts, every one of them is answered
        serving.start()
        for connection in sockets:
            connection.sendall(b"GET /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        assert [connection.recv(64)[:12] for connection in sockets] == [b"HTTP/1.1 404"] * 64
    finally:
        for connection in sockets:
            connection.close()
        if serving.is_alive():
            server.shutdown()
        server.server_close()
