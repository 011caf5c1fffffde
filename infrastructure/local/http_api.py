"""The HTTP API of the local mode: API Gateway HTTP API (payload format 2.0) in front of the
platform's routes, plus the admin endpoints ``/_aios/faults`` and ``/_aios/lambda`` (the
worker pools' counters) and the sandbox providers under ``/_sandbox/`` (the ``sandbox``
package).

A threaded HTTP server: each request builds the payload v2 event for its route and invokes
the route's function in the Lambda runtime (``lambda_runtime``), whose workers run
concurrently, so one slow handler does not hold up another request. The proxy result maps
back to HTTP as API Gateway maps it; a throttled invoke answers 503, an unhandled error 500
``{"message": "Internal Server Error"}``, an unknown route 404 ``{"message": "Not Found"}``.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from infrastructure.local.faults import FAULTS_ADAPTER
from infrastructure.local.lambda_runtime import Invocation, LambdaRuntime, Throttled
from infrastructure.local.moto_server import fresh_uuid
from infrastructure.platform.spec import HttpRouteSpec

if TYPE_CHECKING:
    from infrastructure.local.sandbox import Sandbox

LOG = logging.getLogger("aios.local")

API_ID = "aioslocal"
ACCOUNT_ID = "123456789012"
ADMIN_FAULTS_PATH = "/_aios/faults"
#: GET: each function's worker pool (cold starts, invocations, throttles, idle and busy workers).
ADMIN_LAMBDA_PATH = "/_aios/lambda"
#: The sandbox providers (ERP, payments, Slack) the connectors' secrets point at locally.
SANDBOX_PREFIX = "/_sandbox"


@dataclass(frozen=True)
class Route:
    spec: HttpRouteSpec
    pattern: re.Pattern[str]

    @classmethod
    def of(cls, spec: HttpRouteSpec) -> Route:
        regex = ""
        for part in re.split(r"(\{[^}]+\})", spec.path):
            if part.startswith("{") and part.endswith("+}"):
                regex += f"(?P<{part[1:-2]}>.+)"
            elif part.startswith("{"):
                regex += f"(?P<{part[1:-1]}>[^/]+)"
            else:
                regex += re.escape(part)
        return cls(spec=spec, pattern=re.compile(f"^{regex}$"))

    @property
    def key(self) -> str:
        return f"{self.spec.method} {self.spec.path}"


def http_api_event(
    route: Route,
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    domain_name: str,
    path_parameters: Mapping[str, str],
) -> dict[str, Any]:
    """The API Gateway HTTP API payload format 2.0 event for one request."""
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": joined,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": domain_name,
            "domainPrefix": domain_name.split(".", maxsplit=1)[0],
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": joined.get("user-agent", ""),
            },
            "requestId": base64.b32encode(fresh_uuid().bytes[:10]).decode().rstrip("=")[:16],
            "routeKey": route.key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if raw_query:
        query: dict[str, str] = {}
        for pair in raw_query.split("&"):
            name, _, value = pair.partition("=")
            name, value = unquote(name.replace("+", " ")), unquote(value.replace("+", " "))
            query[name] = f"{query[name]},{value}" if name in query else value
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if body:
        try:
            event["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _json_reply(status: int, body: Any) -> HttpReply:
    return HttpReply(status, [("content-type", "application/json")], json.dumps(body).encode("utf-8"))


def proxy_reply(invocation: Invocation) -> HttpReply:
    """The HTTP response for a Lambda proxy result (payload format 2.0 rules)."""
    if invocation.function_error:
        return _json_reply(500, {"message": "Internal Server Error"})
    result = invocation.json()
    if not isinstance(result, dict) or "statusCode" not in result:
        # 2.0: a result without statusCode is the JSON body of a 200.
        return _json_reply(200, result)
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")
    headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((str(name), str(v)) for v in values)
    headers.extend(("set-cookie", str(c)) for c in result.get("cookies") or [])
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("content-type", "application/json"))
    return HttpReply(int(result["statusCode"]), headers, raw)


class HttpApiServer(ThreadingHTTPServer):
    """The platform's HTTP API on one port, plus the admin endpoints under ``/_aios/``."""

    daemon_threads = True
    #: The listen backlog. ``socketserver``'s default of 5 overflowed when more senders than
    #: that connected at once while the accepting thread waited for the interpreter lock: the
    #: kernel dropped the SYN and the client sent it again a second later (acks of 1 s).
    request_queue_size = socket.SOMAXCONN

    def __init__(
        self,
        address: tuple[str, int],
        *,
        routes: list[HttpRouteSpec],
        runtime: LambdaRuntime,
        sandbox: Sandbox | None = None,
    ) -> None:
        super().__init__(address, _ApiHandler)
        self.routes = [Route.of(r) for r in routes]
        self.runtime = runtime
        self.sandbox = sandbox  # the provider stand-ins under /_sandbox/ (the sandbox package)

    def handle_request_for(self, handler: _ApiHandler, method: str) -> HttpReply:
        raw_path, _, raw_query = handler.path.partition("?")
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length) if length else b""
        if raw_path == ADMIN_FAULTS_PATH:
            return self._admin_faults(method, body)
        if raw_path == ADMIN_LAMBDA_PATH:
            return self._admin_lambda(method)
        if self.sandbox is not None and (
            raw_path == SANDBOX_PREFIX or raw_path.startswith(SANDBOX_PREFIX + "/")
        ):
            status, headers, content = self.sandbox.handle(
                method, raw_path, raw_query, list(handler.headers.items()), body
            )
            return HttpReply(status, headers, content)
        for route in self.routes:
            match = route.pattern.match(raw_path)
            if match and route.spec.method == method:
                function = self.runtime.find(route.spec.function)
                assert function is not None, f"route {route.key} targets an undeployed function"
                host = handler.headers.get("host") or f"{API_ID}.execute-api.localhost"
                event = http_api_event(
                    route,
                    method=method,
                    raw_path=raw_path,
                    raw_query=raw_query,
                    headers=list(handler.headers.items()),
                    body=body,
                    source_ip=handler.client_address[0],
                    domain_name=host.split(":")[0],
                    path_parameters={k: unquote(v) for k, v in match.groupdict().items()},
                )
                try:
                    invocation = self.runtime.invoke(function, event)
                except Throttled:
                    return _json_reply(503, {"message": "Service Unavailable"})
                return proxy_reply(invocation)
        return _json_reply(404, {"message": "Not Found"})

    def _admin_lambda(self, method: str) -> HttpReply:
        if method != "GET":
            return _json_reply(405, {"message": "Method Not Allowed"})
        return _json_reply(200, self.runtime.snapshot())

    def _admin_faults(self, method: str, body: bytes) -> HttpReply:
        faults = self.runtime.faults
        if method == "DELETE":
            faults.replace({})
        elif method in {"POST", "PUT"}:
            try:
                faults.replace(FAULTS_ADAPTER.validate_json(body or b"{}"))
            except ValueError as error:
                return _json_reply(400, {"message": str(error)})
        elif method != "GET":
            return _json_reply(405, {"message": "Method Not Allowed"})
        return _json_reply(200, faults.snapshot())


class _ApiHandler(BaseHTTPRequestHandler):
    server: HttpApiServer
    protocol_version = "HTTP/1.1"

    def _handle(self, method: str) -> None:
        try:
            reply = self.server.handle_request_for(self, method)
        except Exception:  # API Gateway answers 500 and keeps serving
            LOG.exception("local HTTP API failed")
            reply = _json_reply(500, {"message": "Internal Server Error"})
        self.send_response(
            reply.status,
            HTTPStatus(reply.status).phrase if reply.status in HTTPStatus._value2member_map_ else "",
        )
        for name, value in reply.headers:
            if name.lower() not in {"content-length", "connection", "transfer-encoding"}:
                self.send_header(name, value)
        self.send_header("content-length", str(len(reply.body)))
        self.send_header("apigw-requestid", fresh_uuid().hex[:16])
        self.end_headers()
        self.wfile.write(reply.body)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("http %s", format % args)
