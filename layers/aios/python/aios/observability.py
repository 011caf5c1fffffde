"""Logger, Metrics and the tracing hook, created once per process and shared by every module.

The service name comes from ``POWERTOOLS_SERVICE_NAME``, which the function helper sets to
the function's name, so one import serves every function.

Tracing is Lambda's active tracing (CDK ``tracing=ACTIVE``), with no tracing SDK in the
process. Powertools' ``Tracer`` is built on the AWS X-Ray SDK, which entered maintenance on
2026-02-25 and reaches end of support on 2027-02-25
(https://docs.aws.amazon.com/xray/latest/devguide/xray-daemon-eos.html; Powertools:
https://github.com/aws-powertools/powertools-lambda-python/issues/7382), and importing and
patching it was about 230 ms of every cold start (bench/ingest.py). Active tracing alone
still records each invocation's segment (initialization, invocation, overhead) and joins
the trace that API Gateway, EventBridge and Step Functions propagate; what it does not
record are per-call subsegments for boto3/httpx. When those are needed, the supported path
is OpenTelemetry (ADOT), which AWS recommends in place of the X-Ray SDK, ideally through
Powertools' own OpenTelemetry provider once it ships (RFC
https://github.com/aws-powertools/powertools-lambda/discussions/90): swapping it in is a
change to this module only, because handlers use ``tracer`` through the one method below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics

from aios import snapstart
from aios.config import METRICS_NAMESPACE

_Handler = TypeVar("_Handler", bound=Callable[..., Any])


class ActiveTracing:
    """What handlers call on ``tracer``: the same decorator as Powertools' ``Tracer``, which
    here adds nothing to the segment Lambda records itself (see the module docstring)."""

    @overload
    def capture_lambda_handler(
        self, lambda_handler: _Handler, *, capture_response: bool = ..., capture_error: bool = ...
    ) -> _Handler: ...

    @overload
    def capture_lambda_handler(
        self, lambda_handler: None = None, *, capture_response: bool = ..., capture_error: bool = ...
    ) -> Callable[[_Handler], _Handler]: ...

    def capture_lambda_handler(
        self,
        lambda_handler: _Handler | None = None,
        *,
        capture_response: bool = True,
        capture_error: bool = True,
    ) -> _Handler | Callable[[_Handler], _Handler]:
        del capture_response, capture_error  # nothing is captured: no response, no error body
        if lambda_handler is None:
            return _unchanged
        return lambda_handler


def _unchanged(handler: _Handler) -> _Handler:
    return handler


logger = Logger()
tracer = ActiveTracing()
metrics = Metrics(namespace=METRICS_NAMESPACE)
# Every handler imports this module: its SnapStart restore hooks are registered with it
# (Lambda ignores hooks in modules the handler does not import).
snapstart.register_runtime_hooks()
