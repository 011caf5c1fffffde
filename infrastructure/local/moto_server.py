"""moto's HTTP server for the local mode, without the per-request costs AWS does not have.

Written for exactly moto 5.2.5 (``ThreadedMotoServer``, werkzeug's development server). The
answers are moto's own; what changes is how requests reach them:

- **Keep-alive** (``KeepAliveHandler``): werkzeug's server closes every connection after one
  response ("keep-alive connections aren't handled well by Python's http.server"), so each
  AWS call from a function's worker paid a TCP connection, a new server thread and a 10 ms
  drain of the socket. A request with a ``Content-Length`` body (what botocore sends) is
  read whole, answered with a ``Content-Length`` response, and the connection stays open
  for the client's next call, as AWS endpoints keep it. Anything else (chunked bodies,
  ``Expect: 100-continue``, HTTP/1.0) goes to werkzeug's handler, which closes.
- **In process** (``answer_in_process``): the clients this process makes for itself (the ASL
  interpreter's service calls, EventBridge's deliveries) are answered by its backends
  directly, through moto's own in-process dispatch (``BotocoreStubber.process_request``,
  what ``mock_aws`` uses), instead of over HTTP to the server in this very process.
- **Dispatch** (``DomainDispatcherApplication``): moto routes each request under one lock,
  and inside it lists its package directory (``list_of_moto_modules``: ~150 ``isdir``
  calls) and matches the host against every service's URL patterns, twice per request.
  Both answers are fixed for a process (the package does not change; a host always names
  the same backend): computed once, the lock is held for a dictionary lookup.
- **Backend lookups** (``BackendDict.__getitem__``): every access to a service's backends
  (several per request, one per execution history event) took moto's global
  ``backend_lock`` and scanned the list of all backend dictionaries. An account already
  present is returned without the lock (what ``AccountSpecificBackend.__getitem__`` already
  does for regions); a new one is created under the lock as before.
- **JSON-protocol requests without Flask** (``KeepAliveHandler``, ``dispatch``): a request
  with an ``X-Amz-Target`` (DynamoDB, EventBridge, Step Functions, SQS, CloudWatch Logs,
  Secrets Manager: every call on the webhook and workflow paths) is answered by moto's own
  in-process dispatch (what ``mock_aws`` runs: the service's ``dispatch``, here with moto's
  request made from this server's WSGI environ), addressed to the service's AWS endpoint
  named in the request's SigV4 credential scope. werkzeug's environ building and Flask's
  routing, request context and CORS were about 40% of this process's time on the webhook
  path (py-spy). A request that no backend claims that way goes through Flask as before, and
  so does every other request.
- **An action's name** (``method_names_from_class``): moto lists a response class's methods
  with ``inspect.getmembers`` on every request to see whether the action is one of them;
  the classes do not change, so the list is made once per class.
- **Headers** (``http.client.parse_headers``): the standard library parses each request's and
  response's header block with the ``email`` package's feed parser (12% of this process's
  time on the webhook path). Header blocks of plain ``Name: value`` lines are split
  directly into the same ``HTTPMessage``; any other block (a folded line, a line without a
  colon) still goes to the feed parser.
"""

from __future__ import annotations

import functools
import gc
import http.client
import io
import json
import logging
import random
import re
import socket
import sys
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from infrastructure.local import pin  # noqa: F401 - the moto version guard, before moto internals

# isort: split
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ClientError
from moto import backend_index
from moto import backends as moto_backends
from moto.core import DEFAULT_ACCOUNT_ID  # type: ignore[attr-defined]
from moto.core import responses as moto_responses
from moto.core.base_backend import BackendDict
from moto.core.botocore_stubber import MockRawResponse
from moto.core.common_types import TYPE_RESPONSE
from moto.core.exceptions import HTTPException  # type: ignore[attr-defined]
from moto.core.request import (
    PRESERVED_HEADER_NAMES_ENVIRON_KEY,
    environ_key_for_header,
    normalize_request,
    should_preserve_original_header_name,
)
from moto.core.request import Request as MotoRequest
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

LOG = logging.getLogger("aios.local")

_NO_BODY_STATUSES = {204, 304}


class KeepAliveHandler(MotoRequestHandler):
    """werkzeug's request handler for moto, keeping HTTP/1.1 connections open."""

    _headers_buffer: list[bytes]

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """No access log line per request (werkzeug formats one even when its logger is
        quiet); errors are still logged."""

    def run_wsgi(self) -> None:
        service = signing_service(self.headers.get("Authorization", ""))
        if service in _ROUTES:
            self._forward(service)
            return
        if self.command == "POST" and self.path.startswith(_MOTO_API_RESET):
            reset_routed_services()
        length = self.headers.get("Content-Length")
        if (
            self.request_version != "HTTP/1.1"
            or length is None
            or not length.isdigit()
            or self.headers.get("Transfer-Encoding")
            or self.headers.get("Expect")
        ):
            self.close_connection = True
            super().run_wsgi()  # werkzeug's own, which answers and closes
            return
        # The whole body first: whatever the application reads, the next request on this
        # connection starts where this one's body ends.
        body = self.rfile.read(int(length))
        if self.headers.get("X-Amz-Target") and self._answer_directly(body):
            return
        environ = self.make_environ()
        environ["wsgi.input"] = io.BytesIO(body)
        started: list[Any] = []
        chunks: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started[:] = [status, headers]
            return chunks.append

        try:
            result = self.server.app(environ, start_response)
            try:
                chunks.extend(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except Exception:  # werkzeug's handler answers 500 too; this connection then closes
            LOG.exception("moto failed on %s %s", self.command, self.path)
            self.close_connection = True
            started[:] = ["500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain")]]
            chunks = [b"Internal Server Error"]
        status, headers = started
        code_text, _, message = str(status).partition(" ")
        self._respond(int(code_text), message, headers, b"".join(chunks))

    def _forward(self, service: str) -> None:
        """A request for a service that runs in a process of its own, relayed to it."""
        status, headers, content = forward(
            service, self.command, self.path, list(self.headers.items()), self._whole_body()
        )
        self._respond(status, "", headers, content)

    def _whole_body(self) -> bytes:
        """The request's body, by its ``Content-Length`` or its chunks (relayed with a length)."""
        if "chunked" in str(self.headers.get("Transfer-Encoding", "")).lower():
            chunks: list[bytes] = []
            while size := int(self.rfile.readline(65537).split(b";", 1)[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the chunk's CRLF
            while self.rfile.readline(65537) not in {b"\r\n", b"\n", b""}:
                pass  # trailers
            return b"".join(chunks)
        length = str(self.headers.get("Content-Length", "0"))
        return self.rfile.read(int(length)) if length.isdigit() else b""

    def _answer_directly(self, body: bytes) -> bool:
        """A JSON-protocol request answered by moto's in-process dispatch; ``False`` when no
        backend serves it that way (the caller then goes through Flask)."""
        scope = credential_scope(self.headers.get("Authorization", ""))
        if scope is None:
            return False
        region, service = scope
        host = f"{service}.{region}.amazonaws.com"
        try:
            answer = _dispatch(f"https://{host}{self.path}", lambda: self._moto_request(host, body))
        except Exception:  # as Flask would: a 500, and this connection closes
            LOG.exception("moto failed on %s %s", self.command, self.path)
            self.close_connection = True
            answer = (500, {"Content-Type": "text/plain"}, b"Internal Server Error")
        if answer is None:
            return False
        status, headers, content = answer
        data = content.encode("utf-8") if isinstance(content, str) else bytes(content or b"")
        self._respond(int(status), "", list(headers.items()), data)
        return True

    def _moto_request(self, host: str, body: bytes) -> MotoRequest:
        """The request moto's dispatch takes, made from this one's WSGI environ as werkzeug
        makes it (``normalize_request`` would build an ``AWSPreparedRequest`` into an environ
        again through werkzeug's ``EnvironBuilder``: 10-15% of a busy process's time)."""
        path, _, query = self.path.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path, encoding="latin-1"),
            "QUERY_STRING": query,
            "RAW_URI": self.path,
            "REQUEST_URI": self.path,
            "SERVER_NAME": host,
            "SERVER_PORT": "443",
            "SERVER_PROTOCOL": self.request_version,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "CONTENT_LENGTH": str(len(body)),
            PRESERVED_HEADER_NAMES_ENVIRON_KEY: {},
        }
        for name, value in self.headers.items():
            key = environ_key_for_header(name)
            if key in {"CONTENT_LENGTH", "HTTP_TRANSFER_ENCODING"}:
                continue
            if should_preserve_original_header_name(name):
                environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY][key] = name
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        return MotoRequest(environ)

    def _respond(self, code: int, message: str, headers: list[tuple[str, Any]], data: bytes) -> None:
        self.send_response(code, message or None)
        sized = False
        for name, value in headers:
            lowered = name.lower()
            if lowered in {"connection", "transfer-encoding"}:
                continue
            sized = sized or lowered == "content-length"
            self.send_header(name, str(value))
        if not sized:
            self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        # Head and body in one write: two small writes on a kept-alive connection meet
        # Nagle's algorithm and the client's delayed ACK (40 ms per response).
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD" and code not in _NO_BODY_STATUSES and code >= 200:
            self._headers_buffer.append(data)
        self.flush_headers()


class LocalMotoServer(ThreadedMotoServer):
    """``ThreadedMotoServer`` serving through ``KeepAliveHandler``."""

    def _server_entry(self) -> None:
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=KeepAliveHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


# -- the heap ------------------------------------------------------------------------------------


def settle_heap() -> None:
    """Once started: everything made so far (moto's and botocore's service models, the
    deployed resources, the IAM policies) is moved out of the cyclic collector's reach
    (``gc.freeze``). A full collection traverses every object it tracks; with that heap in
    it, each took 100-400 ms in the local mode's process under a webhook load, a pause of
    every request in flight. What is made later (executions, items) is still collected."""
    gc.collect()
    gc.freeze()


# -- ids -----------------------------------------------------------------------------------------


def fresh_uuid() -> uuid.UUID:
    """A random (version 4) UUID without a system call, for names and request ids in this
    process: ``uuid4`` reads ``os.urandom``, which lets go of the GIL, and under the
    interpreter's threads getting it back waits a switch interval. Ids need to be unique,
    not secret."""
    return uuid.UUID(int=random.getrandbits(128), version=4)


# -- in process ----------------------------------------------------------------------------------

#: ``Credential=<key>/<date>/<region>/<service>/aws4_request`` of a SigV4 ``Authorization``.
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")


def credential_scope(authorization: str) -> tuple[str, str] | None:
    """(region, signing service) of a SigV4-signed request; ``None`` for an unsigned one."""
    match = _CREDENTIAL_SCOPE.search(authorization)
    return (match[1], match[2]) if match else None


def signing_service(authorization: str) -> str | None:
    scope = credential_scope(authorization)
    return scope[1] if scope else None


def _service_method(clean_url: str) -> Callable[..., TYPE_RESPONSE] | None:
    """The backend method moto's stubber would call for ``clean_url`` (scheme, host, path),
    resolved as ``BotocoreStubber.process_request`` resolves it, once per URL."""
    found = _METHODS.get(clean_url, _UNRESOLVED)
    if found is not _UNRESOLVED:
        return found  # type: ignore[no-any-return]
    method: Callable[..., TYPE_RESPONSE] | None = None
    for service, pattern in backend_index.backend_url_patterns:
        if not pattern.match(clean_url):
            continue
        backend_dict: Any = moto_backends.get_backend(service)  # type: ignore[call-overload]
        if isinstance(backend_dict, BackendDict):
            regions = backend_dict[DEFAULT_ACCOUNT_ID]
            backend = regions["us-east-1"] if "us-east-1" in regions else regions["aws"]
        else:
            backend = backend_dict["global"]
        method = next((m for url, m in backend.urls.items() if re.compile(url).match(clean_url)), None)
        if method is not None:
            break
    if len(_METHODS) < _METHODS_LIMIT:
        _METHODS[clean_url] = method
    return method


_UNRESOLVED = object()
_METHODS: dict[str, Any] = {}
#: REST services put names in paths (``/2015-03-31/functions/<name>/invocations``): bounded.
_METHODS_LIMIT = 4096


def dispatch(request: AWSPreparedRequest) -> TYPE_RESPONSE | None:
    """``BotocoreStubber.process_request`` (what ``mock_aws`` answers a botocore request with)
    with the service and method resolved once per URL instead of scanning every service's
    URL patterns per request. ``None`` when no backend serves the URL."""
    return _dispatch(request.url, lambda: normalize_request(request))


def _dispatch(url: str, make_request: Callable[[], MotoRequest]) -> TYPE_RESPONSE | None:
    """``url``'s backend method called with the request ``make_request`` builds (only once
    the URL is known to be served)."""
    scheme, _, rest = url.partition("://")
    host, _, path = rest.partition("/")
    clean_url = f"{scheme}://{host}/{path.split('?', 1)[0]}"
    method = _service_method(clean_url)
    if method is None:
        return None
    normalized = make_request()
    try:
        return method(normalized, normalized.raw_url, normalized.headers)
    except HTTPException as error:
        return error.code or 500, dict(error.get_headers()), error.get_body()


@functools.cache
def _json_protocol(service: str) -> tuple[str, str, str]:
    """(endpoint prefix, ``X-Amz-Target`` prefix, content type) of a JSON-protocol service,
    from botocore's model of it."""
    import botocore.session  # noqa: PLC0415

    metadata = botocore.session.get_session().get_service_model(service).metadata
    if metadata["protocol"] != "json":
        raise ValueError(f"{service} is not a JSON-protocol service")
    return (
        str(metadata.get("signingName") or metadata["endpointPrefix"]),
        str(metadata["targetPrefix"]),
        f"application/x-amz-json-{metadata['jsonVersion']}",
    )


def json_call(service: str, operation: str, params: Mapping[str, Any], *, region: str) -> dict[str, Any]:
    """One call of a JSON-protocol API (``stepfunctions``, ``StartExecution``) answered by this
    process's moto as a botocore call would be (the same request, the same dispatch), without
    building and signing it with botocore, which cost as much as moto's own work. An error
    answer raises botocore's ``ClientError``, with the code and status AWS's JSON protocol
    gives (``__type``, the HTTP status)."""
    prefix, target, content_type = _json_protocol(service)
    request = AWSPreparedRequest(
        method="POST",
        url=f"https://{prefix}.{region}.amazonaws.com/",
        headers={  # type: ignore[arg-type] # any mapping: moto reads .items()
            "Content-Type": content_type,
            "X-Amz-Target": f"{target}.{operation}",
            # The account and region moto reads from a signed request; nothing checks the signature.
            "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20000101/{region}/{prefix}/aws4_request, "
            "SignedHeaders=host, Signature=0",
        },
        body=json.dumps(params).encode("utf-8"),
        stream_output=False,
    )
    answer = dispatch(request)
    if answer is None:
        raise InProcessOnly(f"moto serves no {service} backend here")
    status, _, content = answer
    body = json.loads(content or "{}")
    if int(status) >= 400:
        code = str(body.get("__type", "")).rpartition("#")[2] or str(status)
        raise ClientError(
            {
                "Error": {"Code": code, "Message": str(body.get("message") or body.get("Message") or "")},
                "ResponseMetadata": {"HTTPStatusCode": int(status)},  # type: ignore[typeddict-item]
            },
            operation,
        )
    result: dict[str, Any] = body
    return result


class InProcessOnly(Exception):
    """A request that this process's moto backends do not serve (never sent elsewhere)."""


def _in_process(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
    """``before-send``: the request answered by this process's moto backends (or relayed to
    the process of its service, if that runs in one), never sent to its URL."""
    service = signing_service(str(request.headers.get("Authorization", "")))
    if service in _ROUTES:
        path = "/" + request.url.partition("://")[2].partition("/")[2]
        body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode("utf-8")
        status, relayed, content = forward(service, request.method, path, list(request.headers.items()), body)
        return AWSResponse(request.url, status, dict(relayed), MockRawResponse(content))  # type: ignore[arg-type]
    response = dispatch(request)
    if response is None and ".amazonaws.com/" in request.url:
        response = 404, {}, "Not yet implemented"  # moto's stubber's answer for an AWS URL it lacks
    if response is None:  # no backend claims the URL: refuse rather than reach the internet
        raise InProcessOnly(f"moto serves no backend at {request.url}")
    status, headers, answer = response
    return AWSResponse(request.url, status, headers, MockRawResponse(answer))  # type: ignore[arg-type]


def answer_in_process(client: Any) -> Any:
    """Have this process's moto answer ``client``'s requests (a client with AWS's own
    endpoints: moto matches requests by AWS hostnames). Checks made before a request is
    sent (the IAM ``before-call``) still run first."""
    client.meta.events.register("before-send", _in_process)
    return client


# -- headers -------------------------------------------------------------------------------------

_ORIGINAL_PARSE_HEADERS = http.client.parse_headers
#: A header name as the ``email`` feed parser accepts one (printable ASCII but the colon).
_FIELD_NAME = re.compile(r"[\041-\071\073-\176]+")


def parse_headers(fp: Any, _class: type[http.client.HTTPMessage] = http.client.HTTPMessage) -> Any:
    """``http.client.parse_headers``: the same ``HTTPMessage``, split line by line when every
    line is a plain ``Name: value`` field (the ``email`` package's compat32 parse gives the
    same name and value for those); otherwise the ``email`` feed parser's answer."""
    lines = http.client._read_headers(fp)  # type: ignore[attr-defined]
    message = _class()
    for raw in lines[:-1]:  # the last line ends the block
        text = raw.decode("iso-8859-1")
        name, colon, value = text.partition(":")
        if not colon or not _FIELD_NAME.fullmatch(name):
            return _email_parse_headers(lines, _class)
        message[name] = value.lstrip(" \t").rstrip("\r\n")
    return message


def _email_parse_headers(lines: list[bytes], _class: type[http.client.HTTPMessage]) -> Any:
    import email.parser  # noqa: PLC0415 - what the standard library does

    return email.parser.Parser(_class=_class).parsestr(b"".join(lines).decode("iso-8859-1"))


# -- services in processes of their own ------------------------------------------------------------

#: Signing service name -> ``host:port`` of the moto process that serves it (``service_process``).
_ROUTES: dict[str, str] = {}
_MOTO_API_RESET = "/moto-api/reset"
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-connection"}
)
#: Idle kept-alive connections to each service process, shared by every thread (the
#: interpreter runs each Task on a thread of its own: a connection per thread would mean a
#: new connection, and a new server thread over there, per call).
_idle: dict[str, list[http.client.HTTPConnection]] = {}
_idle_lock = threading.Lock()


def route(service: str, address: str) -> None:
    """Serve ``service`` (its signing name, ``dynamodb``) from the moto process at ``address``."""
    _ROUTES[service] = address


def routed_services() -> dict[str, str]:
    return dict(_ROUTES)


def _connection(address: str, *, fresh: bool = False) -> http.client.HTTPConnection:
    """An idle kept-alive connection to a service process, or a new one."""
    if not fresh:
        with _idle_lock:
            idle = _idle.get(address)
            if idle:
                return idle.pop()
    host, _, port = address.rpartition(":")
    return http.client.HTTPConnection(host, int(port), timeout=_FORWARD_TIMEOUT)


def _release(address: str, connection: http.client.HTTPConnection) -> None:
    with _idle_lock:
        _idle.setdefault(address, []).append(connection)


#: A service process answers on loopback; a call slower than this is a hung process.
_FORWARD_TIMEOUT = 120.0


def forward(
    service: str, method: str, path: str, headers: list[tuple[str, str]], body: bytes
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Relay one request to ``service``'s process; its status, headers and body. A connection
    the process closed meanwhile (it answers ``Connection: close`` to some requests) is
    reopened once; a request that was sent is never sent twice."""
    address = _ROUTES[service]
    sendable = [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length"]
    for attempt in range(2):
        connection = _connection(address, fresh=attempt > 0)
        try:
            connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in sendable:
                connection.putheader(name, value)
            connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
        except (ConnectionError, http.client.HTTPException, OSError):
            connection.close()
            if attempt:
                raise
            continue  # nothing was sent: a stale kept-alive connection
        try:
            response = connection.getresponse()
            content = response.read()
        except BaseException:
            connection.close()
            raise
        if response.will_close:
            connection.close()
        else:
            _release(address, connection)
        kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
        return response.status, kept, content
    raise AssertionError("unreachable")  # pragma: no cover


def reset_routed_services() -> None:
    """``POST /moto-api/reset`` resets every service process too (moto's state is per process)."""
    for address in set(_ROUTES.values()):
        connection = _connection(address, fresh=True)
        try:
            connection.request("POST", _MOTO_API_RESET, body=b"")
            connection.getresponse().read()
        finally:
            connection.close()


# -- dispatch ------------------------------------------------------------------------------------

_ORIGINAL_MODULES = moto_backends.list_of_moto_modules
_ORIGINAL_BACKEND_FOR_HOST = DomainDispatcherApplication.get_backend_for_host
_MOTO_MODULES: frozenset[str] | None = None
_BACKEND_FOR_HOST: dict[str, object] = {}


def _moto_modules() -> frozenset[str]:
    global _MOTO_MODULES  # noqa: PLW0603 - a per-process constant, computed on first use
    if _MOTO_MODULES is None:
        _MOTO_MODULES = frozenset(_ORIGINAL_MODULES())
    return _MOTO_MODULES


def _backend_for_host(self: DomainDispatcherApplication, host: str | None) -> object:
    if host is None:
        return None
    if host not in _BACKEND_FOR_HOST:
        _BACKEND_FOR_HOST[host] = _ORIGINAL_BACKEND_FOR_HOST(self, host)
    return _BACKEND_FOR_HOST[host]


_ORIGINAL_BACKEND_GETITEM = BackendDict.__getitem__


def _backend_getitem(self: BackendDict[Any], account_id: str) -> Any:
    try:
        # Present only once created (and registered) under the lock; moto's reset clears both.
        return dict.__getitem__(self, account_id)
    except KeyError:
        return _ORIGINAL_BACKEND_GETITEM(self, account_id)


_ORIGINAL_METHOD_NAMES = moto_responses.method_names_from_class  # type: ignore[attr-defined]
_method_names = functools.lru_cache(maxsize=None)(_ORIGINAL_METHOD_NAMES)


def install() -> None:
    moto_responses.method_names_from_class = _method_names  # type: ignore[attr-defined]
    http.client.parse_headers = parse_headers  # type: ignore[assignment]
    BackendDict.__getitem__ = _backend_getitem  # type: ignore[method-assign]
    moto_backends.list_of_moto_modules = _moto_modules
    DomainDispatcherApplication.get_backend_for_host = _backend_for_host  # type: ignore[method-assign]


def uninstall() -> None:
    moto_responses.method_names_from_class = _ORIGINAL_METHOD_NAMES  # type: ignore[attr-defined]
    _ROUTES.clear()
    with _idle_lock:
        for connection in (c for idle in _idle.values() for c in idle):
            connection.close()
        _idle.clear()
    http.client.parse_headers = _ORIGINAL_PARSE_HEADERS
    BackendDict.__getitem__ = _ORIGINAL_BACKEND_GETITEM  # type: ignore[method-assign]
    moto_backends.list_of_moto_modules = _ORIGINAL_MODULES
    DomainDispatcherApplication.get_backend_for_host = _ORIGINAL_BACKEND_FOR_HOST  # type: ignore[method-assign]
    _BACKEND_FOR_HOST.clear()


__all__ = [
    "InProcessOnly",
    "KeepAliveHandler",
    "LocalMotoServer",
    "answer_in_process",
    "credential_scope",
    "dispatch",
    "forward",
    "fresh_uuid",
    "install",
    "json_call",
    "parse_headers",
    "route",
    "routed_services",
    "settle_heap",
    "signing_service",
    "uninstall",
]
