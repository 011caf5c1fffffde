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
"""

from __future__ import annotations

import io
import logging
import random
import socket
import uuid
from typing import Any

from infrastructure.local import pin  # noqa: F401 - the moto version guard, before moto internals

# isort: split
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from moto import backends as moto_backends
from moto.core.base_backend import BackendDict
from moto.core.botocore_stubber import MockRawResponse
from moto.core.models import botocore_stubber
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

    def run_wsgi(self) -> None:
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
        code = int(code_text)
        data = b"".join(chunks)
        self.send_response(code, message)
        sized = False
        for name, value in headers:
            lowered = name.lower()
            if lowered in {"connection", "transfer-encoding"}:
                continue
            sized = sized or lowered == "content-length"
            self.send_header(name, value)
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


# -- ids -----------------------------------------------------------------------------------------


def fresh_uuid() -> uuid.UUID:
    """A random (version 4) UUID without a system call, for names and request ids in this
    process: ``uuid4`` reads ``os.urandom``, which lets go of the GIL, and under the
    interpreter's threads getting it back waits a switch interval. Ids need to be unique,
    not secret."""
    return uuid.UUID(int=random.getrandbits(128), version=4)


# -- in process ----------------------------------------------------------------------------------


class InProcessOnly(Exception):
    """A request that this process's moto backends do not serve (never sent elsewhere)."""


def _in_process(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
    """``before-send``: the request answered by this process's moto backends, never sent."""
    response = botocore_stubber.process_request(request)
    if response is None:  # no backend claims the URL: refuse rather than reach the internet
        raise InProcessOnly(f"moto serves no backend at {request.url}")
    status, headers, body = response
    return AWSResponse(request.url, status, headers, MockRawResponse(body))  # type: ignore[arg-type]


def answer_in_process(client: Any) -> Any:
    """Have this process's moto answer ``client``'s requests (a client with AWS's own
    endpoints: moto matches requests by AWS hostnames). Checks made before a request is
    sent (the IAM ``before-call``) still run first."""
    client.meta.events.register("before-send", _in_process)
    return client


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


def install() -> None:
    BackendDict.__getitem__ = _backend_getitem  # type: ignore[method-assign]
    moto_backends.list_of_moto_modules = _moto_modules
    DomainDispatcherApplication.get_backend_for_host = _backend_for_host  # type: ignore[method-assign]


def uninstall() -> None:
    BackendDict.__getitem__ = _ORIGINAL_BACKEND_GETITEM  # type: ignore[method-assign]
    moto_backends.list_of_moto_modules = _ORIGINAL_MODULES
    DomainDispatcherApplication.get_backend_for_host = _ORIGINAL_BACKEND_FOR_HOST  # type: ignore[method-assign]
    _BACKEND_FOR_HOST.clear()


__all__ = [
    "InProcessOnly",
    "KeepAliveHandler",
    "LocalMotoServer",
    "answer_in_process",
    "fresh_uuid",
    "install",
    "uninstall",
]
