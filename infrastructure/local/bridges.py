"""The moto bridges of the local mode, written for exactly moto 5.2.5.

moto plays AWS for ``aios local up``; these small patches fill the gaps it has offline (see
``/work/shared/LOCAL_AWS.md``). Each one says what it replaces and why. They only work in
the process that hosts moto (``ThreadedMotoServer``), which ``aios local up`` is.

1. **In-process Lambda** (``LambdaSimpleBackend.invoke``): without Docker moto echoes the
   input back. The bridge runs the platform function's real handler instead, with the
   environment CDK would give it, and reports a raised exception the way AWS Lambda does:
   ``X-Amz-Function-Error: Unhandled`` and ``{"errorType": type(exc).__name__, ...}``. moto's
   ASL interpreter reads ``errorType`` from that payload (``StateTaskServiceLambda._from_error``),
   so ``Retry``/``Catch`` see ``Connector.Unavailable`` exactly as on AWS.
2. **EventBridge to Step Functions and Lambda** (``Rule.send_to_targets``): moto raises
   ``NotImplementedError`` for those target types. The bridge delivers them itself, on a
   worker thread (EventBridge delivers asynchronously), retrying as the target's
   ``RetryPolicy`` says and sending what still fails to the target's ``DeadLetterConfig``
   queue, with the attributes AWS sets (``ERROR_CODE``, ``ERROR_MESSAGE``, ``RULE_ARN``,
   ``TARGET_ARN``): nothing accepted is lost.
3. **Time scale** (``RetrierDecl`` sleep and ``WaitFunction._wait_interval``): Wait states
   and Retry intervals are multiplied by ``AIOS_LOCAL_TIME_SCALE`` inside the interpreter,
   so the definitions stay byte-identical to the deployed ones at every scale. Task
   ``TimeoutSeconds``/``HeartbeatSeconds`` are not scaled: the work they bound (a real
   handler, a real DynamoDB call) is not faster locally, so scaling them would only produce
   timeouts that AWS would not.
4. **Execution names** (``StepFunctionsParserBackend.start_execution``): moto names an
   execution started without a name ``"None"``, so a second one fails with
   ``ExecutionAlreadyExists``; AWS generates a UUID, and so does the bridge.
5. **HTTP API** (``HttpApiServer``): a threaded HTTP server that builds the API Gateway HTTP
   API payload v2 event for each platform route and maps the Lambda proxy result back.
6. **SageMaker runtime** (``SageMakerRuntimeResponse.invoke_endpoint``): moto answers with
   canned data; the bridge serves the endpoint with the model's own inference code, in
   process, on the CPU (details in the section at the end of this module).

Handler isolation: every function gets its own copy of the ``aios`` and ``functions``
modules (a "sandbox" swapped into ``sys.modules`` for the duration of an invocation), and
its environment applied to ``os.environ`` for that duration. Caches built at cold start
(``aios.config.settings()``, clients, Powertools' service name) are therefore per function,
as they are per sandbox on AWS. Both are process-wide, so invocations are serialised by one
lock; local mode trades parallelism for fidelity. An invocation that calls AWS goes through
the moto server on other threads, so nothing waits on the lock while holding it.
"""

from __future__ import annotations

import base64
import copy
import importlib
import json
import logging
import os
import random
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote

import boto3
import moto
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from infrastructure.platform.model import FunctionSpec, HttpRouteSpec
from infrastructure.platform.models import serving as model_serving

if TYPE_CHECKING:
    from infrastructure.local.sandbox import Sandbox

MOTO_VERSION = "5.2.5"
if moto.__version__ != MOTO_VERSION:  # pragma: no cover - a pin guard
    raise ImportError(
        f"infrastructure.local.bridges patches moto {MOTO_VERSION} internals, found moto "
        f"{moto.__version__}: re-check every bridge in this module before changing the pin"
    )

# moto internals the bridges patch (imported after the version check on purpose).
from moto.awslambda.exceptions import LambdaClientError  # noqa: E402
from moto.awslambda.models import LambdaBackend  # noqa: E402
from moto.awslambda_simple.models import LambdaSimpleBackend  # noqa: E402
from moto.core.common_types import TYPE_RESPONSE  # noqa: E402
from moto.events.models import EventPattern, Rule  # noqa: E402
from moto.events.utils import EventTemplateParser  # noqa: E402
from moto.sagemakerruntime.responses import SageMakerRuntimeResponse  # noqa: E402
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl  # noqa: E402
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (  # noqa: E402
    WaitFunction,
)
from moto.stepfunctions.parser.models import StepFunctionsParserBackend  # noqa: E402
from moto.utilities.arns import parse_arn  # noqa: E402

LOG = logging.getLogger("aios.local")

#: Environment variables of the local mode's settings (documented in infrastructure/local/README.md).
FAULTS_ENV = "AIOS_LOCAL_FAULTS"
TIME_SCALE_ENV = "AIOS_LOCAL_TIME_SCALE"

# -- faults ------------------------------------------------------------------------------------


class Fault(BaseModel):
    """What to do instead of (or before) running a function's handler.

    ``error``: raise an exception whose ``__name__`` is ``error`` (reported as errorType);
    ``timeout``: the invocation times out (errorType ``Sandbox.Timedout``, as Lambda reports);
    ``throttle``: the Invoke call itself fails with 429 ``TooManyRequestsException``
    (Step Functions reports ``Lambda.TooManyRequestsException``).
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["error", "timeout", "throttle"] = "error"
    error: str = "Connector.Unavailable"
    message: str = "fault injected by aios local mode"
    probability: float = Field(default=1.0, ge=0.0, le=1.0)
    #: How many invocations fail; ``None``: every one (with ``probability``).
    times: int | None = Field(default=None, ge=0)


FAULTS_ADAPTER: TypeAdapter[dict[str, Fault]] = TypeAdapter(dict[str, Fault])


class Faults:
    """The faults in force, by function name (the description's name, e.g. ``webhook-ingest``)."""

    def __init__(self, faults: Mapping[str, Fault] | None = None) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, Fault] = dict(faults or {})
        self.injected: dict[str, int] = {}

    @classmethod
    def parse(cls, text: str | None) -> Faults:
        """From ``AIOS_LOCAL_FAULTS``: inline JSON, or ``@path`` / a path to a JSON file."""
        if not text or not text.strip():
            return cls()
        raw = text.strip()
        if not raw.startswith("{"):
            from pathlib import Path  # noqa: PLC0415

            raw = Path(raw.removeprefix("@")).read_text(encoding="utf-8")
        return cls(FAULTS_ADAPTER.validate_json(raw))

    def replace(self, faults: Mapping[str, Fault]) -> None:
        with self._lock:
            self._faults = dict(faults)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "faults": {name: fault.model_dump() for name, fault in self._faults.items()},
                "injected": dict(self.injected),
            }

    def draw(self, function: str) -> Fault | None:
        """The fault to apply to this invocation of ``function``, if one fires."""
        with self._lock:
            fault = self._faults.get(function)
            if fault is None or (fault.times is not None and fault.times <= 0):
                return None
            if random.random() >= fault.probability:
                return None
            if fault.times is not None:
                self._faults[function] = fault.model_copy(update={"times": fault.times - 1})
            self.injected[function] = self.injected.get(function, 0) + 1
            return fault


def injected_error(name: str, message: str) -> Exception:
    """An exception whose class name is ``name`` (``Connector.Unavailable``), as Lambda reports it."""
    error_class: type[Exception] = type(name, (Exception,), {})
    return error_class(message)


# -- time scale ------------------------------------------------------------------------------------


class TimeScale:
    """``AIOS_LOCAL_TIME_SCALE`` (default 1): the factor applied to Wait states, Retry
    intervals and EventBridge target retry delays."""

    value: float = 1.0

    @classmethod
    def parse(cls, text: str | None) -> float:
        if not text:
            return 1.0
        value = float(text)
        if not 0 < value <= 1:
            raise ValueError(f"{TIME_SCALE_ENV} must be in (0, 1], got {text}")
        return value

    @classmethod
    def sleep(cls, seconds: float) -> None:
        time.sleep(max(0.0, seconds) * cls.value)


class _ScaledTime:
    """Stands in for the ``time`` module inside moto's retrier: only ``sleep`` is scaled."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        TimeScale.sleep(seconds)


def _scaled_wait_interval(self: WaitFunction, env: Any, wait_seconds: int) -> None:
    """``WaitFunction._wait_interval`` with the wait scaled; a stopped execution interrupts it
    (moto's version re-waits on rounding, which loops for fractional waits)."""
    deadline = time.monotonic() + max(0, wait_seconds) * TimeScale.value
    while env.is_running():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        env.program_state_event.wait(remaining)


# -- in-process Lambda -----------------------------------------------------------------------------


@dataclass
class LocalFunction:
    """A platform function as deployed locally."""

    spec: FunctionSpec
    physical_name: str
    arn: str
    environment: dict[str, str]
    modules: dict[str, ModuleType] = field(default_factory=dict)
    handler: Callable[[Any, Any], Any] | None = None


@dataclass(frozen=True)
class LambdaContext:
    """The parts of the Lambda context object our handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self.started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


@dataclass(frozen=True)
class Invocation:
    """What an Invoke call returns: the payload and, for a failed handler, ``Unhandled``."""

    payload: bytes
    function_error: str | None = None

    def json(self) -> Any:
        return json.loads(self.payload) if self.payload else None


class Throttled(LambdaClientError):
    """429 TooManyRequestsException, as Lambda answers a throttled Invoke."""

    code = 429

    def __init__(self, message: str) -> None:
        super().__init__("TooManyRequestsException", message)


def _sandboxed(name: str) -> bool:
    return name in {"aios", "functions"} or name.startswith(("aios.", "functions."))


class LocalLambda:
    """Runs platform functions in this process: the local twin of the Lambda service."""

    def __init__(self, functions: Mapping[str, LocalFunction], faults: Faults) -> None:
        self.functions = dict(functions)
        self._by_physical = {f.physical_name: f for f in functions.values()}
        self.faults = faults
        self._lock = threading.RLock()

    def find(self, name_or_arn: str) -> LocalFunction | None:
        name = name_or_arn.rsplit(":function:", maxsplit=1)[-1].split(":", maxsplit=1)[0]
        return self._by_physical.get(name) or self.functions.get(name)

    @contextmanager
    def _sandbox(self, function: LocalFunction) -> Iterator[None]:
        """This function's modules in ``sys.modules`` and its environment in ``os.environ``."""
        shared = {k: sys.modules.pop(k) for k in list(sys.modules) if _sandboxed(k)}
        sys.modules.update(function.modules)
        saved_env = {k: os.environ.get(k) for k in function.environment}
        os.environ.update(function.environment)
        try:
            yield
        finally:
            function.modules = {k: sys.modules.pop(k) for k in list(sys.modules) if _sandboxed(k)}
            sys.modules.update(shared)
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def invoke(self, function: LocalFunction, event: Any) -> Invocation:
        """One synchronous invocation; handler errors come back as Lambda reports them."""
        fault = self.faults.draw(function.spec.name)
        if fault is not None and fault.kind == "throttle":
            raise Throttled(f"Rate exceeded (fault injected into {function.spec.name})")
        context = LambdaContext(
            function_name=function.physical_name,
            invoked_function_arn=function.arn,
            memory_limit_in_mb=function.spec.memory_mb,
            timeout_seconds=function.spec.timeout_seconds,
        )
        if fault is not None and fault.kind == "timeout":
            # The handler would have run past its timeout: wait for it (scaled), report it.
            TimeScale.sleep(function.spec.timeout_seconds)
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
            return _error_invocation(
                "Sandbox.Timedout",
                f"{stamp} {context.aws_request_id} Task timed out after "
                f"{function.spec.timeout_seconds:.2f} seconds",
                context,
            )
        with self._lock, self._sandbox(function):
            try:
                if fault is not None:
                    raise injected_error(fault.error, fault.message)
                if function.handler is None:
                    module = importlib.import_module(function.spec.module)
                    function.handler = getattr(module, function.spec.handler_attribute)
                result = function.handler(event, context)
            except Exception as error:  # reported to the caller as Lambda does, not raised
                return _error_invocation(
                    type(error).__name__,
                    str(error),
                    context,
                    traceback.format_tb(error.__traceback__),
                )
        return Invocation(payload=json.dumps(result).encode("utf-8"))


def _error_invocation(
    error_type: str, message: str, context: LambdaContext, stack: list[str] | None = None
) -> Invocation:
    body = {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": context.aws_request_id,
        "stackTrace": stack or [],
    }
    return Invocation(payload=json.dumps(body).encode("utf-8"), function_error="Unhandled")


# The runtime the patched moto methods use; set by ``install``.
_runtime: LocalLambda | None = None
_ORIGINAL_INVOKE = LambdaSimpleBackend.invoke
_ORIGINAL_SEND_TO_TARGETS = Rule.send_to_targets


def _patched_invoke(  # noqa: PLR0917 - moto's signature
    self: LambdaBackend,
    function_name: str,
    qualifier: str | None,
    body: Any,
    headers: Any,
    response_headers: Any,
) -> bytes | str | None:
    """``LambdaSimpleBackend.invoke``: a platform function runs its handler in this process."""
    runtime = _runtime
    function = runtime.find(function_name) if runtime else None
    if runtime is None or function is None:
        return _ORIGINAL_INVOKE(self, function_name, qualifier, body, headers, response_headers)  # type: ignore[arg-type]
    self.get_function(function_name, qualifier)  # 404 for a function moto does not know
    raw = body.decode("utf-8") if isinstance(body, bytes) else (body or "{}")
    event = json.loads(raw) if raw else {}
    if headers.get("X-Amz-Invocation-Type") == "Event":
        _deliveries.submit(_invoke_async, runtime, function, event, None)
        return b""
    invocation = runtime.invoke(function, event)
    if invocation.function_error:
        response_headers["x-amz-function-error"] = invocation.function_error
    response_headers["x-amz-executed-version"] = "$LATEST"
    return invocation.payload


# -- EventBridge to Step Functions and Lambda --------------------------------------------------------

_deliveries = ThreadPoolExecutor(max_workers=8, thread_name_prefix="aios-local-delivery")
_aws_endpoint: str | None = None
_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()
#: Target retry: 1 s doubling to 60 s (scaled), as long as RetryPolicy allows.
_RETRY_BASE_SECONDS, _RETRY_MAX_SECONDS = 1.0, 60.0
#: Client errors EventBridge does not retry (the target is missing or refuses the call).
_NOT_RETRIED = {
    "ResourceNotFoundException",
    "StateMachineDoesNotExist",
    "StateMachineDeleting",
    "InvalidArn",
    "InvalidExecutionInput",
    "AccessDeniedException",
    "ValidationException",
}


def client(service: str) -> Any:
    """A boto3 client of the embedded AWS (no client-side retries: the bridges retry)."""
    with _clients_lock:
        if service not in _clients:
            _clients[service] = boto3.client(
                service,  # type: ignore[call-overload]
                endpoint_url=_aws_endpoint,
                region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
                config=Config(retries={"total_max_attempts": 1}),
            )
        return _clients[service]


class DeliveryFailed(Exception):
    def __init__(self, code: str, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.code = code
        self.retry = retry


def _invoke_async(runtime: LocalLambda, function: LocalFunction, event: Any, _: object) -> None:
    """An asynchronous invoke: Lambda retries a failed one twice (then the function's DLQ,
    which the platform has none of locally; the failure is logged)."""
    for attempt in range(3):
        try:
            invocation = runtime.invoke(function, event)
        except Throttled:
            invocation = Invocation(b"", function_error="Throttled")
        if not invocation.function_error:
            return
        TimeScale.sleep(60 * (attempt + 1))
    LOG.error("async invoke of %s failed after retries: %s", function.spec.name, invocation.payload)


def _deliver(target: Mapping[str, Any], event: Mapping[str, Any]) -> None:
    """One attempt to hand ``event`` to a Step Functions or Lambda target."""
    arn = str(target["Arn"])
    service = parse_arn(arn).service
    payload = json.dumps(event)
    try:
        if service == "states":
            # EventBridge names the execution itself (moto would name it "None").
            client("stepfunctions").start_execution(
                stateMachineArn=arn, name=str(uuid.uuid4()), input=payload
            )
        elif service == "lambda":
            client("lambda").invoke(FunctionName=arn, InvocationType="Event", Payload=payload.encode())
        else:  # pragma: no cover - filtered by the caller
            raise DeliveryFailed("NotSupported", f"target {arn} is not supported", retry=False)
    except ClientError as error:
        code = error.response["Error"]["Code"]
        status = error.response["ResponseMetadata"].get("HTTPStatusCode", 500)
        retry = code not in _NOT_RETRIED and (status >= 500 or status == 429 or "Throttl" in code)
        raise DeliveryFailed(code, str(error), retry=retry) from None
    except BotoCoreError as error:
        raise DeliveryFailed("ConnectionError", str(error), retry=True) from None


def deliver_with_retries(rule_arn: str, target: Mapping[str, Any], event: Mapping[str, Any]) -> None:
    """Deliver as EventBridge does: retry per ``RetryPolicy`` (delays scaled), then the DLQ."""
    policy = target.get("RetryPolicy") or {}
    max_attempts = int(policy.get("MaximumRetryAttempts", 185))
    max_age = float(policy.get("MaximumEventAgeInSeconds", 86400)) * TimeScale.value
    started = time.monotonic()
    attempt = 0
    while True:
        try:
            _deliver(target, event)
            return
        except DeliveryFailed as failure:
            exhausted = attempt >= max_attempts or time.monotonic() - started >= max_age
            if not failure.retry or exhausted:
                _dead_letter(rule_arn, target, event, failure, attempt, exhausted=exhausted)
                return
        TimeScale.sleep(min(_RETRY_BASE_SECONDS * 2**attempt, _RETRY_MAX_SECONDS))
        attempt += 1


def _dead_letter(
    rule_arn: str,
    target: Mapping[str, Any],
    event: Mapping[str, Any],
    failure: DeliveryFailed,
    retries: int,
    *,
    exhausted: bool,
) -> None:
    dlq_arn = (target.get("DeadLetterConfig") or {}).get("Arn")
    if not dlq_arn:
        LOG.error("event %s to %s lost: no dead-letter queue (%s)", event.get("id"), target["Arn"], failure)
        return
    sqs = client("sqs")
    queue_url = sqs.get_queue_url(QueueName=parse_arn(dlq_arn).resource_id)["QueueUrl"]

    def attribute(value: str) -> dict[str, str]:
        return {"DataType": "String", "StringValue": value}

    attributes = {
        "RULE_ARN": attribute(rule_arn),
        "TARGET_ARN": attribute(str(target["Arn"])),
        "ERROR_CODE": attribute(failure.code),
        "ERROR_MESSAGE": attribute(str(failure)[:1000]),
    }
    if exhausted:
        attributes["EXHAUSTED_RETRY_CONDITION"] = attribute("MaximumRetryAttempts")
    attributes["RETRY_ATTEMPTS"] = {"DataType": "Number", "StringValue": str(retries)}
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(event), MessageAttributes=attributes)


def _target_input(target: Mapping[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """The input a target receives: the event, ``Input``, ``InputPath`` or ``InputTransformer``."""
    if "Input" in target:
        value: Any = json.loads(target["Input"])
        return value if isinstance(value, dict) else {"value": value}
    if "InputTransformer" in target:
        transformer = target["InputTransformer"]
        value = EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=event,  # type: ignore[arg-type]
        )
        return value if isinstance(value, dict) else {"value": value}
    return event


def _as_aws_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """moto's internal event message as AWS delivers it (ISO time, no moto-only keys)."""
    message = {k: v for k, v in event.items() if k != "ingestion-time"}
    stamp = message.get("time")
    if isinstance(stamp, int | float):
        message["time"] = datetime.fromtimestamp(float(stamp), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return message


def _patched_send_to_targets(self: Rule, original_event: Any, transform_input: bool = True) -> None:
    """``Rule.send_to_targets``: Step Functions and Lambda targets are delivered by the bridge,
    every other target type by moto as before."""
    if not self.event_pattern.matches_event(original_event):
        return
    ours = [t for t in self.targets if parse_arn(t["Arn"]).service in {"states", "lambda"}]
    others = [t for t in self.targets if t not in ours]
    if others:
        rest = copy.copy(self)
        rest.targets = others
        _ORIGINAL_SEND_TO_TARGETS(rest, original_event, transform_input)
    event = _as_aws_event(original_event)
    for target in ours:
        target_input = _target_input(target, event) if transform_input else event
        _deliveries.submit(deliver_with_retries, self.arn, target, target_input)


def matches(pattern_json: str, event: Mapping[str, Any]) -> bool:
    """Whether an event matches a pattern, by moto's own matcher (``test_event_pattern`` is a stub)."""
    return bool(EventPattern.load(pattern_json).matches_event(dict(event)))  # type: ignore[arg-type]


_ORIGINAL_START_EXECUTION = StepFunctionsParserBackend.start_execution


def _patched_start_execution(
    self: Any, state_machine_arn: str, name: str | None = None, *args: Any, **kwargs: Any
) -> Any:
    """``StartExecution`` without a name gets a UUID, as on AWS."""
    return _ORIGINAL_START_EXECUTION(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)


# -- installing the patches ---------------------------------------------------------------------------


def install(runtime: LocalLambda, *, aws_endpoint: str, time_scale: float = 1.0) -> None:
    """Patch moto in this process. Idempotent; ``uninstall`` restores moto."""
    global _runtime, _aws_endpoint  # noqa: PLW0603 - the patched moto methods are module-level
    _runtime = runtime
    _aws_endpoint = aws_endpoint
    _clients.clear()
    TimeScale.value = time_scale
    LambdaSimpleBackend.invoke = _patched_invoke  # type: ignore[method-assign]
    LambdaBackend.invoke = _patched_invoke  # type: ignore[method-assign]
    Rule.send_to_targets = _patched_send_to_targets  # type: ignore[method-assign]
    retrier_decl.time = _ScaledTime()  # type: ignore[attr-defined,assignment]
    WaitFunction._wait_interval = _scaled_wait_interval  # type: ignore[method-assign]
    StepFunctionsParserBackend.start_execution = _patched_start_execution  # type: ignore[method-assign]


_ORIGINAL_BACKEND_INVOKE = LambdaBackend.invoke
_ORIGINAL_WAIT_INTERVAL = WaitFunction._wait_interval


def uninstall() -> None:
    global _runtime  # noqa: PLW0603
    _runtime = None
    LambdaSimpleBackend.invoke = _ORIGINAL_INVOKE  # type: ignore[method-assign]
    LambdaBackend.invoke = _ORIGINAL_BACKEND_INVOKE  # type: ignore[method-assign]
    Rule.send_to_targets = _ORIGINAL_SEND_TO_TARGETS  # type: ignore[method-assign]
    retrier_decl.time = time  # type: ignore[attr-defined]
    WaitFunction._wait_interval = _ORIGINAL_WAIT_INTERVAL  # type: ignore[method-assign]
    StepFunctionsParserBackend.start_execution = _ORIGINAL_START_EXECUTION  # type: ignore[method-assign]
    TimeScale.value = 1.0


# -- the HTTP API -------------------------------------------------------------------------------------

API_ID = "aioslocal"
ACCOUNT_ID = "123456789012"
ADMIN_FAULTS_PATH = "/_aios/faults"
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
            "requestId": base64.b32encode(uuid.uuid4().bytes[:10]).decode().rstrip("=")[:16],
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
    """The platform's HTTP API on one port, plus the admin endpoint ``/_aios/faults``."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        *,
        routes: list[HttpRouteSpec],
        runtime: LocalLambda,
        sandbox: Sandbox | None = None,
    ) -> None:
        super().__init__(address, _ApiHandler)
        self.routes = [Route.of(r) for r in routes]
        self.runtime = runtime
        self.sandbox = sandbox  # the provider stand-ins under /_sandbox/ (sandbox.py)

    def handle_request_for(self, handler: _ApiHandler, method: str) -> HttpReply:
        raw_path, _, raw_query = handler.path.partition("?")
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length) if length else b""
        if raw_path == ADMIN_FAULTS_PATH:
            return self._admin_faults(method, body)
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
        self.send_header("apigw-requestid", uuid.uuid4().hex[:16])
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


# -- SageMaker runtime ---------------------------------------------------------------------------
# 6. **SageMaker runtime** ``InvokeEndpoint`` served by our own inference code.
#
# Written for exactly moto 5.2.5, where ``SageMakerRuntimeResponse.invoke_endpoint``
# (``moto/sagemakerruntime/responses.py``) answers every call with canned data from
# ``SageMakerRuntimeBackend.invoke_endpoint`` (``models.py``; a result queue or the literal
# ``"body"``). The bridge replaces that response method, so it works both under ``mock_aws()``
# and in a ``ThreadedMotoServer`` of the same process.
#
# The endpoint is served in-process on the CPU by ``models/invoice-anomaly/code/inference.py``
# (the copy in ``artifacts/model/``, i.e. what ``model.tar.gz`` deploys), the way the SageMaker
# PyTorch container runs it: ``model_fn`` once, then ``input_fn -> predict_fn -> output_fn``
# per call. The answer looks like AWS's:
#
# - 200 with the body, ``Content-Type`` and ``x-Amzn-Invoked-Production-Variant`` (the
#   endpoint's variant when moto knows the endpoint, the ``TargetVariant`` asked for, else
#   ``AllTraffic``);
# - a rejected request (``InferenceClientError``: 400, 406, 413, 415) becomes the 424
#   ``ModelError`` AWS returns for a container's non-200 answer, with ``OriginalStatusCode``
#   and ``OriginalMessage``; any other exception in the inference code becomes a ``ModelError``
#   with ``OriginalStatusCode`` 500, as the inference toolkit turns it into a 500.
NPY_MAGIC = b"\x93NUMPY"
DEFAULT_VARIANT = "AllTraffic"
_TARGET_VARIANT_HEADER = "X-Amzn-SageMaker-Target-Variant"


serving = model_serving()


@dataclass
class EndpointInvocation:
    endpoint: str
    status: int
    variant: str


@dataclass
class ServedModel:
    """The model behind every local endpoint; loaded on the first call (torch is slow to import)."""

    model_dir: Path
    invocations: list[EndpointInvocation] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _inference: ModuleType | None = None
    _model: Any = None

    @property
    def inference(self) -> ModuleType:
        self._load()
        assert self._inference is not None
        return self._inference

    def _load(self) -> None:
        with self._lock:
            if self._inference is None:
                if not (self.model_dir / "code" / "inference.py").is_file():
                    raise FileNotFoundError(
                        f"{self.model_dir} has no model: run `make model` "
                        "(models/invoice-anomaly/build.py) first"
                    )
                inference = serving.load_inference_module(self.model_dir)
                self._model = inference.model_fn(str(self.model_dir))
                self._inference = inference

    def answer(self, body: bytes, *, content_type: str | None, accept: str | None) -> tuple[int, bytes, str]:
        """(status, body, content type) of one invocation, as the container answers it."""
        inference = self.inference
        try:
            output: bytes = inference.output_fn(
                inference.predict_fn(inference.input_fn(body, content_type), self._model), accept
            )
        except inference.InferenceClientError as error:
            return int(error.status_code), str(error.message).encode(), "text/plain"
        except Exception as error:
            return 500, f"{type(error).__name__}: {error}".encode(), "text/plain"
        media = "application/x-npy" if output.startswith(NPY_MAGIC) else "application/json"
        return 200, output, media


_served: ServedModel | None = None
_original: Callable[[SageMakerRuntimeResponse], TYPE_RESPONSE] | None = None


def _variant(response: SageMakerRuntimeResponse, endpoint_name: str) -> str:
    target = response.headers.get(_TARGET_VARIANT_HEADER)
    if target:
        return str(target)
    from moto.sagemaker.models import sagemaker_backends  # noqa: PLC0415 - moto's registry

    endpoint = sagemaker_backends[response.current_account][response.region].endpoints.get(endpoint_name)
    variants = getattr(endpoint, "production_variants", None) or []
    return str(variants[0]["VariantName"]) if variants else DEFAULT_VARIANT


def _model_error(endpoint_name: str, status: int, message: str) -> TYPE_RESPONSE:
    """What SageMaker returns when the container answers ``status`` != 200."""
    kind = "client" if status < 500 else "server"
    body = {
        "__type": "ModelError",
        "message": (
            f'Received {kind} error ({status}) from primary with message "{message}". '
            f"See the local log of endpoint {endpoint_name}."
        ),
        "OriginalStatusCode": status,
        "OriginalMessage": message,
        "LogStreamArn": f"arn:aws:logs:local:000000000000:log-group:/aws/sagemaker/Endpoints/{endpoint_name}",
    }
    # moto takes the status from the "status" header (``BaseResponse._transform_response``).
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": "ModelError", "status": "424"}
    return 424, headers, json.dumps(body)


def _invoke_endpoint(self: SageMakerRuntimeResponse) -> TYPE_RESPONSE:
    """Replacement of ``SageMakerRuntimeResponse.invoke_endpoint``."""
    assert _served is not None
    endpoint_name = str(self._get_params().get("EndpointName") or self.path.split("/")[2])
    body = self.raw_body if isinstance(self.raw_body, bytes) else str(self.raw_body or "").encode()
    variant = _variant(self, endpoint_name)
    status, output, media = _served.answer(
        body, content_type=self.headers.get("Content-Type"), accept=self.headers.get("Accept")
    )
    _served.invocations.append(EndpointInvocation(endpoint=endpoint_name, status=status, variant=variant))
    if status != 200:
        return _model_error(endpoint_name, status, output.decode("utf-8", "replace"))
    headers = {"Content-Type": media, "x-Amzn-Invoked-Production-Variant": variant}
    return 200, headers, output


def install_sagemaker_bridge(model_dir: Path = serving.MODEL_DIR) -> None:
    """Serve every sagemaker-runtime ``InvokeEndpoint`` with the model in ``model_dir``
    (``artifacts/model/``, written by ``build.py``). Idempotent; a second call switches the
    model directory."""
    global _served, _original  # noqa: PLW0603 - one patch per process, like moto's backends
    if _served is None or _served.model_dir != Path(model_dir):
        _served = ServedModel(Path(model_dir))
    if _original is None:
        _original = SageMakerRuntimeResponse.invoke_endpoint
        SageMakerRuntimeResponse.invoke_endpoint = _invoke_endpoint  # type: ignore[method-assign]


def uninstall_sagemaker_bridge() -> None:
    """Give moto its canned answers back."""
    global _served, _original
    if _original is not None:
        SageMakerRuntimeResponse.invoke_endpoint = _original  # type: ignore[method-assign,assignment]
    _served, _original = None, None


def served_model() -> ServedModel:
    """The model the bridge serves (its ``invocations`` record every call)."""
    if _served is None:
        raise RuntimeError("the SageMaker bridge is not installed: call install_sagemaker_bridge()")
    return _served
