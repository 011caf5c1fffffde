"""One Lambda execution environment of the local mode: a process that runs one function.

``lambda_runtime.WorkerPool`` starts ``python -m infrastructure.local.lambda_worker`` with
exactly the environment Lambda would give the function (its CDK variables, the runtime's
reserved ones, and the local endpoint), and talks to it over stdin/stdout with one JSON line
per message. Like a Lambda sandbox, the process initialises once (cold start: the IAM hook,
then the handler's import), then serves invocations one at a time (warm) until its parent
closes stdin or kills it (a timeout, as Lambda resets a sandbox after one).

Protocol (one line each way per message):

- worker -> parent, once: ``{"ready": true}`` or ``{"init_error": {"errorType", "errorMessage"}}``;
- parent -> worker: ``{"request_id", "deadline_ms", "event", "function_arn"}``;
- worker -> parent: ``{"payload": "<JSON>", "error": false}``, or ``"error": true`` with the
  payload ``{"errorMessage", "errorType", "requestId", "stackTrace"}`` (errorType is the
  exception class's ``__name__``, as the Lambda Python runtime reports it).

The handler's own prints and logs go to stderr: stdout carries the protocol only. This
module imports nothing of moto and nothing of the local mode, only the standard library
before the handler.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass
from typing import IO, Any

#: Set by the IAM part of the local mode: the function's synthesized policy, enforced on its calls.
IAM_POLICY_FILE_ENV = "AIOS_LOCAL_IAM_POLICY_FILE"
#: The importable handler module and attribute (``functions.webhook_ingest.handler:handler``).
HANDLER_ENV = "AIOS_LOCAL_HANDLER"


@dataclass
class LambdaContext:
    """The Lambda context object, as the Python runtime builds it (the parts our code reads)."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline_ms: int
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - int(time.time() * 1000))


def error_body(error: BaseException, request_id: str = "") -> dict[str, Any]:
    """What the Lambda Python runtime reports for an unhandled exception."""
    return {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_tb(error.__traceback__),
    }


def _send(channel: IO[bytes], message: dict[str, Any]) -> None:
    channel.write(json.dumps(message).encode("utf-8") + b"\n")
    channel.flush()


def _initialise() -> Any:
    """The cold start: the IAM hook (before any client exists), then the handler's import."""
    policy_file = os.environ.get(IAM_POLICY_FILE_ENV)
    if policy_file:
        from infrastructure.iam.enforce import install_from_file  # noqa: PLC0415 - only when asked

        install_from_file(policy_file)
    module_name, _, attribute = os.environ[HANDLER_ENV].partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def _invoke(handler: Any, request: dict[str, Any]) -> dict[str, Any]:
    environ = os.environ
    context = LambdaContext(
        function_name=environ["AWS_LAMBDA_FUNCTION_NAME"],
        function_version=environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        invoked_function_arn=str(request["function_arn"]),
        memory_limit_in_mb=int(environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")),
        aws_request_id=str(request["request_id"]),
        log_group_name=environ.get("AWS_LAMBDA_LOG_GROUP_NAME", ""),
        log_stream_name=environ.get("AWS_LAMBDA_LOG_STREAM_NAME", ""),
        deadline_ms=int(request["deadline_ms"]),
    )
    try:
        result = handler(request["event"], context)
    except Exception as error:  # reported as the runtime reports it, never raised
        return {"payload": json.dumps(error_body(error, context.aws_request_id)), "error": True}
    try:
        return {"payload": json.dumps(result), "error": False}
    except (TypeError, ValueError) as error:
        body = error_body(error, context.aws_request_id)
        body["errorType"] = "Runtime.MarshalError"
        body["errorMessage"] = f"Unable to marshal response: {error}"
        return {"payload": json.dumps(body), "error": True}


def main() -> None:
    # stdout is the protocol: keep a private copy of it, and send fd 1 (the handler's
    # prints, Powertools' log lines) to stderr.
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    requests = sys.stdin.buffer
    try:
        handler = _initialise()
    except Exception as error:
        body = error_body(error)
        if isinstance(error, ImportError):
            body["errorType"] = "Runtime.ImportModuleError"
        _send(channel, {"init_error": body})
        return
    _send(channel, {"ready": True})
    for line in requests:
        if line.strip():
            _send(channel, _invoke(handler, json.loads(line)))
    # End of input: the environment is discarded, as Lambda freezes and drops a sandbox,
    # without running interpreter teardown (seconds on a busy machine, for nothing).
    channel.close()
    os._exit(0)


if __name__ == "__main__":
    main()
