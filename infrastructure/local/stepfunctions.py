"""Step Functions of the local mode: where moto's interpreter differs from AWS, made to agree.

Written for exactly moto 5.2.5 (``moto/stepfunctions/parser/``, a port of LocalStack's
interpreter). Each patch says what AWS does and what moto did instead:

1. **Execution names** (``start_execution``): AWS names an execution started without a name
   with a UUID; moto named it ``"None"``, so the second one failed ``ExecutionAlreadyExists``.
2. **A callback that arrives before the task waits for it** (``CallbackEndpoint``): AWS
   accepts ``SendTaskSuccess``/``SendTaskFailure`` for a ``.waitForTaskToken`` task as soon as
   the token exists, even while the invoke that carries the token has not returned. moto
   records the outcome, but a task with ``HeartbeatSeconds`` then waits on a heartbeat
   endpoint created *after* the invoke returned, which never hears of it: the task failed
   ``States.HeartbeatTimeout`` and the answer was dropped. The bridge tells a new heartbeat
   endpoint about an outcome that is already there.
3. **``SendTaskFailure``'s cause** (``StepFunctionResponse.send_task_failure``): moto read
   ``error`` only; the cause now reaches the ``TaskFailed`` event and the Catch's ``Cause``
   (https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskFailure.html).
4. **Context object times** (``$$.State.EnteredTime``, ``$$.Execution.StartTime``): AWS
   writes ``2019-03-26T20:14:13.192Z`` (milliseconds, ``Z``:
   https://docs.aws.amazon.com/step-functions/latest/dg/input-output-contextobject.html);
   moto wrote ``isoformat()`` (microseconds, ``+00:00``).
5. **Express executions are not inspectable** through the API on AWS: their ARNs are
   ``arn:aws:states:<region>:<account>:express:<machine>:<name>:<id>``; ``ListExecutions``
   answers 400 ``StateMachineTypeNotSupported`` "This operation is not supported by this
   type of state machine", and ``DescribeExecution``/``GetExecutionHistory``/``StopExecution``
   answer 400 ``InvalidArn`` "Invalid Arn: 'Resource type not valid in this context:
   express'" (as recorded against AWS in LocalStack's
   ``tests/aws/services/stepfunctions/v2/test_sfn_api_express.snapshot.json``; the API
   reference says "This API action is not supported by EXPRESS state machines":
   https://docs.aws.amazon.com/step-functions/latest/apireference/API_ListExecutions.html).
   moto answered all of them. The way to see an Express execution, on AWS and here, is the
   state machine's CloudWatch Logs.
6. **Execution logs** (``loggingConfiguration``): AWS writes each history event that the
   level selects to the log group as JSON (``id``, ``type``, ``details``,
   ``previous_event_id``, ``event_timestamp`` in epoch milliseconds as a string,
   ``execution_arn``, ``redrive_count``; without ``input``/``output`` when
   ``includeExecutionData`` is false:
   https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html). moto started every
   execution without a logging session (and its session class cannot write to moto's own
   logs backend); the bridge gives each execution one that does.

And where moto is slow for no reason of AWS's (the local mode's throughput, issue 11), with
the same results:

7. **A definition parsed once** (``AmazonStateLanguageParser.parse``): moto ran the ANTLR
   parser and built the evaluation components for every execution (70-550 ms each on a
   shared core). Both are cached per definition text. moto's components keep no evaluation
   state (it lives in each execution's ``Environment``): moto itself evaluates one
   component tree from many threads at once, for a Map's iterations and a Parallel's
   branches. The one value a component computes lazily, its ``heap_key`` (an id under
   which retry counters live in the environment), is computed before the tree is shared.
8. **One client per service, in process** (``boto_client_for``): moto built a boto3 client
   (about 17 ms) for every service call of a task, and sent the call over HTTP to the moto
   server in this very process (a connection, a server thread, Flask's dispatch). A client
   per service and region is reused (boto3 clients are thread-safe), and its requests go to
   the same backends in process (``moto_server.answer_in_process``): the same responses,
   the same IAM checks (made before the request is sent), without the HTTP round trip.
9. **A JSONPath parsed once** (``extract_json``, ``ResultPath``, and EventBridge's input
   templates: moto's ``EventTemplateParser`` imports ``jsonpath_ng.ext.parse`` on each call):
   jsonpath_ng builds a new PLY parser per ``parse`` call; the parsed expressions are cached
   by path. They hold no evaluation state (``find`` only reads them).
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.session
import jsonpath_ng.ext
from antlr4 import CommonTokenStream, InputStream  # type: ignore[import-untyped]
from botocore.config import Config

from infrastructure.local import pin  # noqa: F401 - the moto version guard, before moto internals
from infrastructure.local.moto_server import answer_in_process, fresh_uuid
from infrastructure.local.status_events import StatusChangeCommunication

# isort: split
from moto.core.exceptions import AWSError
from moto.core.responses import EmptyResult
from moto.logs.models import logs_backends
from moto.stepfunctions.exceptions import InvalidArn
from moto.stepfunctions.parser import models as parser_models
from moto.stepfunctions.parser.asl.antlr.runtime.ASLLexer import ASLLexer
from moto.stepfunctions.parser.asl.antlr.runtime.ASLParser import ASLParser
from moto.stepfunctions.parser.asl.component.common.path import result_path
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
from moto.stepfunctions.parser.asl.component.component import Component
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.component.state import state as state_module
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint, HeartbeatEndpoint
from moto.stepfunctions.parser.asl.eval.event.logging import (
    CloudWatchLoggingConfiguration,
    CloudWatchLoggingSession,
    HistoryLog,
)
from moto.stepfunctions.parser.asl.eval.states import ExecutionData, StateData
from moto.stepfunctions.parser.asl.parse.asl_parser import (
    AmazonStateLanguageParser,
    ASLParserException,
    SyntaxErrorListener,
)
from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor
from moto.stepfunctions.parser.asl.utils import boto_client, json_path
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str
from moto.stepfunctions.parser.backend import execution_worker
from moto.stepfunctions.parser.backend.execution import Execution
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse

LOG = logging.getLogger("aios.local")

EXPRESS_NOT_INSPECTABLE = "Invalid Arn: 'Resource type not valid in this context: express'"
TYPE_NOT_SUPPORTED = "This operation is not supported by this type of state machine"


class StateMachineTypeNotSupported(AWSError):
    TYPE = "StateMachineTypeNotSupported"
    STATUS = 400


def aws_timestamp(value: datetime | str) -> str:
    """``2019-03-26T20:14:13.192Z``: how Step Functions writes times in the context object."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def express_execution_arn(standard_arn: str) -> str:
    """``...:execution:<machine>:<name>`` as AWS spells an Express execution's ARN."""
    return standard_arn.replace(":execution:", ":express:", 1) + f":{fresh_uuid()}"


def is_express_execution(arn: str) -> bool:
    parts = arn.split(":")
    return len(parts) > 5 and parts[5] == "express"


# -- 1. names -------------------------------------------------------------------------------------

_ORIGINAL_START_EXECUTION = StepFunctionsParserBackend.start_execution


def _start_execution(
    self: Any, state_machine_arn: str, name: str | None = None, *args: Any, **kwargs: Any
) -> Any:
    """``StartExecution`` without a name gets a UUID, as on AWS."""
    return _ORIGINAL_START_EXECUTION(self, state_machine_arn, name or str(fresh_uuid()), *args, **kwargs)


# -- 2. callbacks before the wait ------------------------------------------------------------------

_ORIGINAL_SETUP_HEARTBEAT = CallbackEndpoint.setup_heartbeat_endpoint


def _setup_heartbeat_endpoint(self: CallbackEndpoint, heartbeat_seconds: int) -> HeartbeatEndpoint:
    endpoint = _ORIGINAL_SETUP_HEARTBEAT(self, heartbeat_seconds)
    # ``notify`` writes the outcome, then reads ``_heartbeat_endpoint``; this writes the
    # endpoint, then reads the outcome: one of the two sees the other, so none is lost.
    if self.get_outcome() is not None:
        endpoint.notify()  # type: ignore[no-untyped-call]
    return endpoint


# -- 3. SendTaskFailure's cause --------------------------------------------------------------------


def _send_task_failure(self: StepFunctionResponse) -> Any:
    backend: Any = self.stepfunction_backend  # the parser backend, whose send_task_failure takes a cause
    backend.send_task_failure(
        self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
    )
    return EmptyResult()


# -- 4. context object times -----------------------------------------------------------------------


def _state_data(**fields: Any) -> StateData:
    fields["EnteredTime"] = aws_timestamp(fields["EnteredTime"])
    data: StateData = StateData(**fields)  # type: ignore[typeddict-item]
    return data


def _execution_data(**fields: Any) -> ExecutionData:
    fields["StartTime"] = aws_timestamp(fields["StartTime"])
    data: ExecutionData = ExecutionData(**fields)  # type: ignore[typeddict-item]
    return data


# -- 5 and 6. Express ARNs and execution logs ------------------------------------------------------

_logs_lock = threading.Lock()  # moto's log streams are not thread-safe ("would need a lock")


class ExecutionLogs(CloudWatchLoggingSession):
    """Writes an execution's history events to its state machine's log group, as AWS does."""

    def __init__(self, execution_arn: str, configuration: CloudWatchLoggingConfiguration) -> None:
        super().__init__(execution_arn=execution_arn, configuration=configuration)
        machine = configuration.state_machine_arn.rsplit(":", maxsplit=1)[-1]
        # AWS: states/<machine>/<date>/<id>; one stream per execution here.
        self.stream = f"states/{machine}/{datetime.now(UTC):%Y-%m-%d-%H-%M}/{fresh_uuid().hex[:8]}"
        self._created = False
        self._lock = threading.Lock()

    def publish_history_log(self, history_log: HistoryLog) -> None:
        stamp: Any = history_log["event_timestamp"]
        moment = datetime.fromisoformat(stamp) if isinstance(stamp, str) else stamp
        millis = int(moment.timestamp() * 1000)
        record = {
            "id": history_log["id"],
            "type": history_log["type"],
            "details": history_log.get("details") or {},
            "previous_event_id": history_log["previous_event_id"],
            "event_timestamp": str(millis),
            "execution_arn": history_log["execution_arn"],
            "redrive_count": "0",
        }
        backend = logs_backends[self.configuration.log_account_id][self.configuration.log_region]
        group = self.configuration.log_group_name
        message = to_json_str(record)
        try:
            # The group's streams under the group-wide lock; this execution's own stream (its
            # Parallel branches and Map iterations write at once) under its own.
            with self._lock:
                if not self._created:
                    with _logs_lock:
                        if self.stream not in backend.groups[group].streams:
                            backend.create_log_stream(group, self.stream)
                    self._created = True
                backend.put_log_events(group, self.stream, [{"timestamp": millis, "message": message}])
        except Exception:  # AWS does not fail an execution whose logs cannot be written
            LOG.warning("execution log of %s not written to %s", self.execution_arn, group, exc_info=True)


def _logging_session(state_machine: Any, execution_arn: str) -> ExecutionLogs | None:
    configuration = getattr(state_machine, "loggingConfiguration", None) or {}
    if configuration.get("level", "OFF") == "OFF":
        return None
    parsed = CloudWatchLoggingConfiguration.from_logging_configuration(
        state_machine_arn=state_machine.arn,
        logging_configuration={"includeExecutionData": False, **configuration},  # type: ignore[typeddict-item]
    )
    return ExecutionLogs(execution_arn, parsed) if parsed is not None else None


class LocalExecution(Execution):
    """moto's execution with AWS's Express ARN and a logging session."""

    def __init__(self, **kwargs: Any) -> None:
        # moto keeps every machine's ``sm_type`` "STANDARD"; ``type`` is the one it was created with.
        if getattr(kwargs["state_machine"], "type", None) == "EXPRESS":
            kwargs["exec_arn"] = express_execution_arn(kwargs["exec_arn"])
        if kwargs.get("cloud_watch_logging_session") is None:
            kwargs["cloud_watch_logging_session"] = _logging_session(
                kwargs["state_machine"], kwargs["exec_arn"]
            )
        super().__init__(**kwargs)

    def _get_start_execution_worker_comm(self) -> StatusChangeCommunication:
        # AWS puts a status change on the default bus when an execution ends (status_events.py).
        return StatusChangeCommunication(self)


_ORIGINAL_DESCRIBE_EXECUTION = StepFunctionsParserBackend.describe_execution
_ORIGINAL_STOP_EXECUTION = StepFunctionsParserBackend.stop_execution
_ORIGINAL_LIST_EXECUTIONS = StepFunctionsParserBackend.list_executions


def _refuse_express(arn: str) -> None:
    if is_express_execution(arn):
        raise InvalidArn(EXPRESS_NOT_INSPECTABLE)


def _describe_execution(self: Any, execution_arn: str) -> Any:
    # moto's GetExecutionHistory goes through describe_execution: refused alike.
    _refuse_express(execution_arn)
    return _ORIGINAL_DESCRIBE_EXECUTION(self, execution_arn)


def _stop_execution(self: Any, execution_arn: str, *args: Any, **kwargs: Any) -> Any:
    _refuse_express(execution_arn)
    return _ORIGINAL_STOP_EXECUTION(self, execution_arn, *args, **kwargs)


def _list_executions(self: Any, state_machine_arn: str, *args: Any, **kwargs: Any) -> Any:
    if self.describe_state_machine(state_machine_arn).type == "EXPRESS":
        raise StateMachineTypeNotSupported(TYPE_NOT_SUPPORTED)
    return _ORIGINAL_LIST_EXECUTIONS(self, state_machine_arn, *args, **kwargs)


# -- 7. a definition parsed once ------------------------------------------------------------------

#: Definition text -> (program, parse tree). Bounded: a long session may create many state
#: machines; an evicted one is parsed again.
_PARSED: OrderedDict[str, tuple[Any, Any]] = OrderedDict()
_PARSED_LIMIT = 64
_parsed_lock = threading.Lock()


def _settle_heap_keys(component: Any, seen: set[int] | None = None) -> None:
    """Compute every component's lazy ``heap_key`` now, before threads share the tree (two
    first reads at once could each draw a different key)."""
    seen = set() if seen is None else seen
    if id(component) in seen:
        return
    seen.add(id(component))
    if isinstance(component, EvalComponent):
        _ = component.heap_key
    if isinstance(component, Component):
        children: Any = vars(component).values()
    elif isinstance(component, list | tuple | set | frozenset):
        children = component
    elif isinstance(component, dict):
        children = component.values()
    else:
        return
    for child in children:
        _settle_heap_keys(child, seen)


def _parse(definition: str) -> tuple[Any, Any]:
    """``AmazonStateLanguageParser.parse``, once per definition text."""
    with _parsed_lock:
        parsed = _PARSED.get(definition)
        if parsed is not None:
            _PARSED.move_to_end(definition)
            return parsed
    # moto's parse (outside the lock: parses of different definitions run concurrently; two
    # of the same one are merely both done).
    errors = SyntaxErrorListener()  # type: ignore[no-untyped-call]
    parser = ASLParser(CommonTokenStream(ASLLexer(InputStream(definition))))
    parser.removeErrorListeners()
    parser.addErrorListener(errors)
    tree = parser.state_machine()  # type: ignore[no-untyped-call]
    if errors.errors:
        raise ASLParserException(errors=errors.errors)
    program = Preprocessor().visit(tree)
    _settle_heap_keys(program)
    with _parsed_lock:
        _PARSED[definition] = (program, tree)
        while len(_PARSED) > _PARSED_LIMIT:
            _PARSED.popitem(last=False)
    return program, tree


# -- 8. one client per service --------------------------------------------------------------------

_ORIGINAL_BOTO_CLIENT_FOR = boto_client.boto_client_for
_clients: dict[tuple[Any, ...], Any] = {}
_clients_lock = threading.Lock()


def _boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
    """moto's ``boto_client_for`` (its credentials and config), built once per service and
    region, answered in process."""
    # ``create_client`` in the key: a hook that wraps it (IAM's ``enforce.install``) attaches
    # itself to new clients only, so a client made before it was installed is not reused after.
    key = (region, service, botocore.session.Session.create_client)
    with _clients_lock:
        found = _clients.get(key)
        if found is None:
            found = _clients[key] = boto3.client(  # type: ignore[call-overload]
                aws_access_key_id="ak",
                region_name=region,
                service_name=service,
                aws_secret_access_key="sk",  # noqa: S106 - moto's own placeholder
                config=Config(
                    parameter_validation=False,
                    retries={"max_attempts": 0, "total_max_attempts": 1},
                    connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                    read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                ),
            )
            answer_in_process(found)
        return found


def _modules_calling_boto_client_for() -> list[Any]:
    """Every loaded interpreter module that imported ``boto_client_for`` by name."""
    import sys  # noqa: PLC0415

    return [
        module
        for name, module in list(sys.modules.items())
        if name.startswith("moto.stepfunctions.parser.")
        and getattr(module, "boto_client_for", None) in (_ORIGINAL_BOTO_CLIENT_FOR, _boto_client_for)
    ]


# -- 9. a JSONPath parsed once ----------------------------------------------------------------------

_ORIGINAL_EXT_PARSE = json_path.parse  # type: ignore[attr-defined]
_ORIGINAL_PARSE = result_path.parse  # type: ignore[attr-defined]
_cached_ext_parse = functools.lru_cache(maxsize=4096)(_ORIGINAL_EXT_PARSE)
_cached_parse = functools.lru_cache(maxsize=4096)(_ORIGINAL_PARSE)


# -- installing --------------------------------------------------------------------------------

_PATCHES: list[tuple[Any, str, Any]] = [
    (StepFunctionsParserBackend, "start_execution", _start_execution),
    (CallbackEndpoint, "setup_heartbeat_endpoint", _setup_heartbeat_endpoint),
    (StepFunctionResponse, "send_task_failure", _send_task_failure),
    (state_module, "StateData", _state_data),
    (execution_worker, "ExecutionData", _execution_data),
    (parser_models, "Execution", LocalExecution),
    (StepFunctionsParserBackend, "describe_execution", _describe_execution),
    (StepFunctionsParserBackend, "stop_execution", _stop_execution),
    (StepFunctionsParserBackend, "list_executions", _list_executions),
    (AmazonStateLanguageParser, "parse", staticmethod(_parse)),
    (json_path, "parse", _cached_ext_parse),
    (jsonpath_ng.ext, "parse", _cached_ext_parse),
    (result_path, "parse", _cached_parse),
]
_ORIGINALS: list[tuple[Any, str, Any]] = [
    (owner, name, inspect.getattr_static(owner, name)) for owner, name, _ in _PATCHES
]


def install() -> None:
    for owner, name, replacement in _PATCHES:
        setattr(owner, name, replacement)
    for module in _modules_calling_boto_client_for():
        module.boto_client_for = _boto_client_for


def uninstall() -> None:
    for owner, name, original in _ORIGINALS:
        setattr(owner, name, original)
    for module in _modules_calling_boto_client_for():
        module.boto_client_for = _ORIGINAL_BOTO_CLIENT_FOR
    with _clients_lock:
        _clients.clear()


__all__ = [
    "EXPRESS_NOT_INSPECTABLE",
    "TYPE_NOT_SUPPORTED",
    "StateMachineTypeNotSupported",
    "aws_timestamp",
    "express_execution_arn",
    "install",
    "is_express_execution",
    "uninstall",
]
