"""The Lambda service of the local mode: each function in worker processes, as Lambda runs it.

Written for exactly moto 5.2.5, where ``LambdaSimpleBackend.invoke`` without Docker echoes
the input back. The bridge replaces it (and ``LambdaBackend.invoke``) for the platform's
functions, so the ASL interpreter's Lambda tasks, EventBridge's Lambda targets and the
HTTP API all reach the real handlers.

How Lambda runs a function, and how this module does:

- **An execution environment per concurrent invocation.** Each function has a pool of
  worker processes (``lambda_worker``), each with exactly the function's environment (its
  CDK variables, Lambda's reserved ones, the local endpoint) and its own module state. A
  worker is started on demand (cold start: the IAM hook, then the handler's import, within
  ``INIT_TIMEOUT_SECONDS``) and reused while it is idle (warm). A pool grows up to the
  function's reserved concurrency, beyond which an invocation is throttled (429
  ``TooManyRequestsException``) as AWS throttles it; a function without reserved concurrency
  grows up to ``AIOS_LOCAL_LAMBDA_CONCURRENCY`` (default ``DEFAULT_CONCURRENCY``) and further
  invocations wait for a free worker: that limit is this machine's, not AWS's.
- **Cold starts one at a time per function** (a local deviation): on AWS each concurrent
  invocation that finds no idle environment gets a new one, on its own hardware. Here all
  of them share a few cores, so a burst of N cold starts makes each take N times longer (a
  webhook acknowledged after 20 s, handlers timing out). A pool therefore starts one worker
  at a time; an invocation that finds every worker busy while one is starting waits for the
  first free one, and the pool keeps growing while invocations keep waiting. At most
  ``os.cpu_count()`` workers initialise at once across all functions.
- **Invoked as Lambda invokes.** The event and a context with the remaining time; an
  exception comes back as ``X-Amz-Function-Error: Unhandled`` with ``{"errorType":
  type(exc).__name__, ...}``, which moto's interpreter turns into the ASL error name
  (``StateTaskServiceLambda._from_error``), so ``Retry``/``Catch`` see ``Connector.Unavailable``.
- **Timeouts.** A handler still running at its ``timeout_seconds`` is killed with its
  process and reported as ``Sandbox.Timedout`` ("Task timed out after N.00 seconds"); the
  next invocation cold-starts a new environment, as Lambda resets a timed-out sandbox.
- **Versions are immutable.** ``PublishVersion`` copies the function's code (``functions/``
  and the ``aios`` layer) and takes its configuration as moto holds it; invoking the version
  (or an alias on it) runs that copy in workers of its own, whatever the working tree says
  later, as a workflow version calls the function version it was deployed with.
- **No shared state.** Nothing of a function runs in this process: no ``os.environ``
  swapping, no module copies, no global lock. Workers reach moto over HTTP.

Faults (``faults.Faults``) are drawn here per invocation, before a worker is asked.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from infrastructure.local import pin  # noqa: F401 - the moto version guard, before moto internals
from infrastructure.local.faults import Faults
from infrastructure.local.lambda_worker import HANDLER_ENV, IAM_POLICY_FILE_ENV
from infrastructure.local.moto_server import fresh_uuid
from infrastructure.local.timescale import TimeScale
from infrastructure.platform.spec import REPO_ROOT, FunctionSpec

# isort: split
from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaBackend
from moto.awslambda_simple.models import LambdaSimpleBackend

LOG = logging.getLogger("aios.local")

#: Upper bound of a pool for a function without reserved concurrency (documented in the README).
CONCURRENCY_ENV = "AIOS_LOCAL_LAMBDA_CONCURRENCY"
DEFAULT_CONCURRENCY = 8
#: ``1``: one worker per function started in the background at start-up (documented in the README).
PREWARM_ENV = "AIOS_LOCAL_LAMBDA_PREWARM"
#: Lambda gives an on-demand init 10 s; imports on a shared developer machine are slower.
INIT_TIMEOUT_SECONDS = 30.0
#: How long past its deadline a handler may take to hand its answer over the pipe.
_GRACE_SECONDS = 0.25
#: Workers initialising at once, across all functions: imports are CPU-bound.
_COLD_STARTS = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))


@dataclass
class LocalFunction:
    """A platform function as deployed locally."""

    spec: FunctionSpec
    physical_name: str
    arn: str
    #: The environment CDK gives the function (``deploy.function_environment``).
    environment: dict[str, str]
    #: The IAM policy the worker enforces on the function's AWS calls (``AIOS_LOCAL_IAM_POLICY_FILE``).
    iam_policy_file: Path | None = None
    #: A published version (``PublishVersion``) runs the code and configuration it was
    #: published with, from its own copy (``code_root``); ``$LATEST`` runs the working tree.
    version: str = "$LATEST"
    code_root: Path = REPO_ROOT


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


def injected_error(name: str, message: str) -> Exception:
    """An exception whose class name is ``name`` (``Connector.Unavailable``), as Lambda reports it."""
    error_class: type[Exception] = type(name, (Exception,), {})
    return error_class(message)


def error_invocation(
    error_type: str, message: str, request_id: str, stack: list[str] | None = None
) -> Invocation:
    body = {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": request_id,
        "stackTrace": stack or [],
    }
    return Invocation(payload=json.dumps(body).encode("utf-8"), function_error="Unhandled")


def timed_out(function: LocalFunction, request_id: str) -> Invocation:
    """Lambda's report of an invocation that ran past its timeout."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return error_invocation(
        "Sandbox.Timedout",
        f"{stamp} {request_id} Task timed out after {function.spec.timeout_seconds:.2f} seconds",
        request_id,
    )


def worker_environment(
    function: LocalFunction,
    *,
    aws_endpoint: str,
    region: str,
    service_endpoints: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Exactly what the function's process sees: Lambda's reserved variables, the local
    endpoint and credentials (``service_endpoints``: ``AWS_ENDPOINT_URL_<service>`` of the
    services that run in processes of their own), and the function's own variables (nothing
    of this process)."""
    name = function.physical_name
    environment = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        # /var/task and /opt/python on Lambda: the code and the aios layer (of this version;
        # the repository after them for the worker module itself).
        "PYTHONPATH": os.pathsep.join(
            dict.fromkeys(
                [
                    str(function.code_root),
                    str(function.code_root / "layers" / "aios" / "python"),
                    str(REPO_ROOT),
                ]
            )
        ),
        "PYTHONUNBUFFERED": "1",
        "LAMBDA_TASK_ROOT": str(function.code_root / "functions" / function.spec.code),
        "_HANDLER": function.spec.handler,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.14",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": function.version,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"{datetime.now(UTC):%Y/%m/%d}/[{function.version}]{uuid.uuid4().hex}",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        # Local only: the embedded AWS, any credentials, no profile files, no X-Ray daemon.
        "AWS_ENDPOINT_URL": aws_endpoint,
        **(service_endpoints or {}),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "POWERTOOLS_TRACE_DISABLED": "true",
        HANDLER_ENV: f"{function.spec.module}:{function.spec.handler_attribute}",
        **function.environment,
    }
    if function.iam_policy_file is not None:
        environment[IAM_POLICY_FILE_ENV] = str(function.iam_policy_file)
    return environment


class WorkerGone(Exception):
    """The worker process exited (or could not start) before it answered."""


class Worker:
    """One execution environment: a ``lambda_worker`` process and the thread reading its answers."""

    def __init__(self, function: LocalFunction, environment: Mapping[str, str]) -> None:
        self.function = function
        self.process = subprocess.Popen(
            [sys.executable, "-m", "infrastructure.local.lambda_worker"],
            cwd=function.code_root,
            env=dict(environment),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # the handler's logs join this process's output
        )
        self._answers: queue.Queue[dict[str, Any] | None] = queue.Queue()
        assert self.process.stdout is not None
        threading.Thread(
            target=self._read,
            args=(self.process.stdout,),
            name=f"aios-lambda-{function.spec.name}",
            daemon=True,
        ).start()

    def _read(self, stream: IO[bytes]) -> None:
        for line in stream:
            try:
                self._answers.put(json.loads(line))
            except ValueError:
                LOG.error("worker of %s wrote a non-protocol line", self.function.spec.name)
        self._answers.put(None)  # end of stream: the process is gone

    def _answer(self, timeout: float) -> dict[str, Any]:
        try:
            answer = self._answers.get(timeout=max(0.0, timeout))
        except queue.Empty:
            raise TimeoutError from None
        if answer is None:
            raise WorkerGone(f"exit status {self.process.wait()}")
        return answer

    def initialise(self) -> dict[str, Any] | None:
        """Wait for the cold start; the runtime's error body if the init failed."""
        try:
            answer = self._answer(INIT_TIMEOUT_SECONDS)
        except TimeoutError:
            self.kill()
            return {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"Init timed out after {INIT_TIMEOUT_SECONDS:.0f} s",
            }
        except WorkerGone as gone:
            return {"errorType": "Runtime.ExitError", "errorMessage": f"Runtime exited during init: {gone}"}
        if "init_error" in answer:
            self.process.wait(timeout=5)
            error: dict[str, Any] = answer["init_error"]
            return error
        return None

    def invoke(self, event: Any, request_id: str, deadline: float) -> Invocation:
        """One invocation; raises ``TimeoutError`` past ``deadline`` (epoch seconds), ``WorkerGone``."""
        request = {
            "request_id": request_id,
            "deadline_ms": int(deadline * 1000),
            "event": event,
            "function_arn": self.function.arn,
        }
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(request).encode("utf-8") + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as error:
            raise WorkerGone(str(error)) from None
        answer = self._answer(deadline + _GRACE_SECONDS - time.time())
        payload = str(answer["payload"]).encode("utf-8")
        return Invocation(payload, function_error="Unhandled" if answer.get("error") else None)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def close_input(self) -> None:
        """End of input: the worker exits (a busy one once its invocation is over)."""
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
        except OSError:
            pass

    def stop(self, timeout: float = 2.0) -> None:
        """Close stdin; kill the worker if it has not exited within ``timeout``."""
        self.close_input()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class PoolStats:
    cold_starts: int = 0
    invocations: int = 0
    throttles: int = 0
    timeouts: int = 0
    peak_concurrency: int = 0


@dataclass
class WorkerPool:
    """The execution environments of one function."""

    function: LocalFunction
    environment: dict[str, str]
    limit: int
    #: Reserved concurrency: beyond ``limit`` Lambda throttles; otherwise we wait (a local limit).
    throttle_beyond_limit: bool
    stats: PoolStats = field(default_factory=PoolStats)
    _idle: list[Worker] = field(default_factory=list)
    _busy: int = 0
    _starting: bool = False
    _closed: bool = False
    _condition: threading.Condition = field(default_factory=threading.Condition)

    def acquire(self) -> Worker | None:
        """An idle worker, or ``None`` when the caller is to start one (its slot is taken;
        it calls ``started`` once the worker is initialised or has failed to)."""
        worker: Worker | None = None
        with self._condition:
            while True:
                if self._closed:
                    raise WorkerGone("the local Lambda service is stopping")
                if self._idle:
                    worker = self._idle.pop()
                    break
                below_limit = self._busy + len(self._idle) < self.limit
                if below_limit and not self._starting:
                    self._starting = True
                    break
                if not below_limit and self.throttle_beyond_limit:
                    self.stats.throttles += 1
                    raise Throttled(
                        f"Rate Exceeded: {self.function.spec.name} at its reserved concurrency ({self.limit})"
                    )
                self._condition.wait()
            self._busy += 1
            self.stats.invocations += 1
            self.stats.peak_concurrency = max(self.stats.peak_concurrency, self._busy)
            return worker

    def started(self) -> None:
        """The cold start in progress is over: a waiting invocation may start the next one."""
        with self._condition:
            self._starting = False
            self._condition.notify_all()

    def release(self, worker: Worker | None) -> None:
        """Give back a slot; a worker that is still usable goes back to the idle list."""
        with self._condition:
            self._busy -= 1
            reusable = worker is not None and worker.process.poll() is None and not self._closed
            if reusable and worker is not None:
                self._idle.append(worker)
            self._condition.notify()
        if worker is not None and not reusable:
            worker.stop()

    def snapshot(self) -> dict[str, int]:
        """The pool's counters and its workers now (``GET /_aios/lambda``)."""
        with self._condition:
            return {
                **dataclasses.asdict(self.stats),
                "idle": len(self._idle),
                "busy": self._busy,
                "limit": self.limit,
            }

    def close(self) -> list[Worker]:
        """No more invocations; the idle workers, told to exit (the caller waits for them)."""
        with self._condition:
            self._closed = True
            idle, self._idle = self._idle, []
            self._condition.notify_all()
        for worker in idle:
            worker.close_input()
        return idle


def concurrency_from_environ(environ: Mapping[str, str]) -> int:
    text = environ.get(CONCURRENCY_ENV)
    value = int(text) if text else DEFAULT_CONCURRENCY
    if value < 1:
        raise ValueError(f"{CONCURRENCY_ENV} must be at least 1, got {text}")
    return value


class LambdaRuntime:
    """The local twin of the Lambda service: one ``WorkerPool`` per platform function."""

    def __init__(
        self,
        functions: Mapping[str, LocalFunction],
        faults: Faults,
        *,
        aws_endpoint: str,
        region: str = "us-east-1",
        default_concurrency: int = DEFAULT_CONCURRENCY,
        service_endpoints: Mapping[str, str] | None = None,
    ) -> None:
        self.functions = dict(functions)
        self._service_endpoints = dict(service_endpoints or {})
        self._by_physical = {f.physical_name: f for f in functions.values()}
        self.faults = faults
        self._aws_endpoint, self._region, self._default_concurrency = (
            aws_endpoint,
            region,
            default_concurrency,
        )
        self.pools = {name: self._pool(function) for name, function in self.functions.items()}
        #: ``<name>:<version>`` -> the published version (``publish``).
        self.versions: dict[str, LocalFunction] = {}
        self._versions_root: Path | None = None
        self._versions_lock = threading.Lock()

    def _pool(self, function: LocalFunction) -> WorkerPool:
        return WorkerPool(
            function=function,
            environment=worker_environment(
                function,
                aws_endpoint=self._aws_endpoint,
                region=self._region,
                service_endpoints=self._service_endpoints,
            ),
            limit=function.spec.reserved_concurrency or self._default_concurrency,
            throttle_beyond_limit=function.spec.reserved_concurrency is not None,
        )

    def find(self, name_or_arn: str, version: str | None = None) -> LocalFunction | None:
        """The function, or the published ``version`` of it (``None``/``$LATEST``: the function)."""
        name = name_or_arn.rsplit(":function:", maxsplit=1)[-1].split(":", maxsplit=1)[0]
        function = self._by_physical.get(name) or self.functions.get(name)
        if function is None or version in (None, "$LATEST"):
            return function
        return self.versions.get(f"{function.spec.name}:{version}")

    def publish(
        self, name_or_arn: str, version: str, environment: Mapping[str, str] | None = None
    ) -> LocalFunction:
        """What ``PublishVersion`` makes: the function's code as it is now (copied, so a later
        edit of the working tree is not this version's) and its configuration, immutable.
        Each version has its own workers; reserved concurrency is per version here (on AWS it
        is the function's, across versions: a local deviation)."""
        function = self.find(name_or_arn)
        if function is None:
            raise KeyError(name_or_arn)
        with self._versions_lock:
            if self._versions_root is None:
                self._versions_root = Path(tempfile.mkdtemp(prefix="aios-local-versions-"))
            root = self._versions_root / function.spec.name / version
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(REPO_ROOT / "functions", root / "functions", ignore=ignore, dirs_exist_ok=True)
            layer = Path("layers") / "aios" / "python" / "aios"
            shutil.copytree(REPO_ROOT / layer, root / layer, ignore=ignore, dirs_exist_ok=True)
            published = dataclasses.replace(
                function,
                arn=f"{function.arn}:{version}",
                version=version,
                code_root=root,
                # The configuration moto holds over the local-only variables the runtime was given.
                environment={**function.environment, **(environment or {})},
            )
            key = f"{function.spec.name}:{version}"
            self.versions[key] = published
            self.pools[key] = self._pool(published)
        return published

    def _pool_of(self, function: LocalFunction) -> WorkerPool:
        if function.version == "$LATEST":
            return self.pools[function.spec.name]
        return self.pools[f"{function.spec.name}:{function.version}"]

    def invoke(self, function: LocalFunction, event: Any) -> Invocation:
        """One synchronous invocation; handler errors come back as Lambda reports them."""
        request_id = str(fresh_uuid())
        fault = self.faults.draw(function.spec.name)
        if fault is not None and fault.kind == "throttle":
            raise Throttled(f"Rate exceeded (fault injected into {function.spec.name})")
        if fault is not None and fault.kind == "timeout":
            # The handler would have run past its timeout: wait for it (scaled), report it.
            TimeScale.sleep(function.spec.timeout_seconds)
            return timed_out(function, request_id)
        if fault is not None:
            error = injected_error(fault.error, fault.message)
            return error_invocation(type(error).__name__, str(error), request_id)
        pool = self._pool_of(function)
        worker = pool.acquire()
        try:
            if worker is None:
                try:
                    with _COLD_STARTS:
                        worker = Worker(function, pool.environment)
                        pool.stats.cold_starts += 1
                        init_error = worker.initialise()
                finally:
                    pool.started()
                if init_error is not None:
                    worker.kill()
                    return error_invocation(
                        str(init_error["errorType"]), str(init_error["errorMessage"]), request_id
                    )
            # The timeout starts when the handler does (the init has its own limit).
            deadline = time.time() + function.spec.timeout_seconds
            try:
                return worker.invoke(event, request_id, deadline)
            except TimeoutError:
                pool.stats.timeouts += 1
                worker.kill()
                return timed_out(function, request_id)
            except WorkerGone as gone:
                worker.kill()
                return error_invocation(
                    "Runtime.ExitError",
                    f"RequestId: {request_id} Error: Runtime exited with error: {gone}",
                    request_id,
                )
        finally:
            pool.release(worker)

    def prewarm(self) -> threading.Thread:
        """One warm worker per function, started in the background (provisioned concurrency
        of 1, in AWS's terms): a test's first invocation of a function does not pay the cold start."""

        def warm_all() -> None:
            for name, pool in self.pools.items():
                try:
                    worker = pool.acquire()
                except (WorkerGone, Throttled):
                    return
                if worker is None:
                    try:
                        with _COLD_STARTS:
                            worker = Worker(pool.function, pool.environment)
                            pool.stats.cold_starts += 1
                            if worker.initialise() is not None:
                                LOG.error("prewarming %s failed: its first invocation will say why", name)
                                worker.kill()
                    finally:
                        pool.started()
                pool.release(worker)

        thread = threading.Thread(target=warm_all, name="aios-lambda-prewarm", daemon=True)
        thread.start()
        return thread

    def snapshot(self) -> dict[str, dict[str, int]]:
        """Each function's pool counters (``GET /_aios/lambda``): cold starts, invocations..."""
        return {name: pool.snapshot() for name, pool in self.pools.items()}

    def stop(self, timeout: float = 3.0) -> None:
        """Every idle worker told to exit at once, then waited for together (killed past ``timeout``)."""
        workers = [worker for pool in self.pools.values() for worker in pool.close()]
        deadline = time.monotonic() + timeout
        for worker in workers:
            worker.stop(timeout=max(0.0, deadline - time.monotonic()))
        if self._versions_root is not None:
            shutil.rmtree(self._versions_root, ignore_errors=True)


# -- the moto patch -----------------------------------------------------------------------------

_runtime: LambdaRuntime | None = None
_ORIGINAL_SIMPLE_INVOKE = LambdaSimpleBackend.invoke
_ORIGINAL_INVOKE = LambdaBackend.invoke
_async = ThreadPoolExecutor(max_workers=8, thread_name_prefix="aios-local-async-invoke")


def _invoke_async(runtime: LambdaRuntime, function: LocalFunction, event: Any) -> None:
    """An asynchronous invoke: Lambda retries a failed one twice (then the function's DLQ,
    which the platform has none of locally; the failure is logged)."""
    invocation = Invocation(b"")
    for attempt in range(3):
        try:
            invocation = runtime.invoke(function, event)
        except Throttled:
            invocation = Invocation(b"", function_error="Throttled")
        if not invocation.function_error:
            return
        TimeScale.sleep(60 * (attempt + 1))
    LOG.error("async invoke of %s failed after retries: %s", function.spec.name, invocation.payload)


def _patched_invoke(  # noqa: PLR0917 - moto's signature
    self: LambdaBackend,
    function_name: str,
    qualifier: str | None,
    body: Any,
    headers: Any,
    response_headers: Any,
) -> bytes | str | None:
    """``LambdaSimpleBackend.invoke``: a platform function runs in its worker."""
    runtime = _runtime
    function = runtime.find(function_name) if runtime else None
    if runtime is None or function is None:
        return _ORIGINAL_SIMPLE_INVOKE(self, function_name, qualifier, body, headers, response_headers)  # type: ignore[arg-type]
    # 404 for a function, version or alias moto does not know; an alias resolves to its version.
    version = str(self.get_function(function_name, qualifier).version)
    function = runtime.find(function_name, version) or function
    raw = body.decode("utf-8") if isinstance(body, bytes) else (body or "{}")
    event = json.loads(raw) if raw else {}
    if headers.get("X-Amz-Invocation-Type") == "Event":
        _async.submit(_invoke_async, runtime, function, event)
        return b""
    invocation = runtime.invoke(function, event)
    if invocation.function_error:
        response_headers["x-amz-function-error"] = invocation.function_error
    response_headers["x-amz-executed-version"] = function.version
    return invocation.payload


_ORIGINAL_PUBLISH_VERSION = LambdaBackend.publish_version


def _patched_publish_version(self: LambdaBackend, function_name: str, description: str = "") -> Any:
    """``PublishVersion``: a platform function's new version gets its own copy of the code and
    the configuration moto holds now (moto returns the last version when nothing changed)."""
    published = _ORIGINAL_PUBLISH_VERSION(self, function_name, description)
    runtime = _runtime
    if runtime is not None and published is not None and runtime.find(function_name) is not None:
        version = str(published.version)
        if runtime.find(function_name, version) is None:
            runtime.publish(function_name, version, environment=dict(published.environment_vars or {}))
    return published


def install(runtime: LambdaRuntime) -> None:
    global _runtime  # noqa: PLW0603 - the patched moto methods are module-level
    _runtime = runtime
    LambdaSimpleBackend.invoke = _patched_invoke  # type: ignore[method-assign]
    LambdaBackend.invoke = _patched_invoke  # type: ignore[method-assign]
    LambdaBackend.publish_version = _patched_publish_version  # type: ignore[method-assign]


def uninstall() -> None:
    global _runtime  # noqa: PLW0603
    if _runtime is not None:
        _runtime.stop()
    _runtime = None
    LambdaSimpleBackend.invoke = _ORIGINAL_SIMPLE_INVOKE  # type: ignore[method-assign]
    LambdaBackend.invoke = _ORIGINAL_INVOKE  # type: ignore[method-assign]
    LambdaBackend.publish_version = _ORIGINAL_PUBLISH_VERSION  # type: ignore[method-assign]
