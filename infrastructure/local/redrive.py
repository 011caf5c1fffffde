"""Step Functions ``RedriveExecution`` for the local mode: moto 5.2.5 has no such action.

AWS: a redrive restarts an unsuccessful (FAILED, ABORTED, TIMED_OUT) Standard execution that
ended within the last 14 days from its unsuccessful step, with that step's input, under the
same ARN, keeping the history of the steps that succeeded; Express machines are refused
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_RedriveExecution.html,
https://docs.aws.amazon.com/step-functions/latest/dg/redrive-executions.html). The bridge does
that on moto's interpreter: the state whose ``*StateEntered`` has no ``*StateExited`` is the
unsuccessful one; a new worker runs the execution's own definition from that state (``StartAt``
moved to it) with the input it had entered with, appending to the same history after an
``ExecutionRedriven`` event. ``DescribeExecution`` answers ``redriveCount``/``redriveDate``.

Local limits, said plainly: only a top-level state is redriven (a failure inside a Parallel
or Map branch is refused as ``ExecutionNotRedrivable``), and a redriven state's Retry counts
start again, as on AWS.
"""

from __future__ import annotations

import datetime
import json
from typing import Any, cast

from infrastructure.local import pin  # noqa: F401 - the moto version guard, before moto internals

# isort: split
from moto.core.exceptions import AWSError
from moto.core.responses import ActionResult
from moto.stepfunctions.parser.api import (
    ExecutionRedrivenEventDetails,
    ExecutionStatus,
    HistoryEventType,
)
from moto.stepfunctions.parser.asl.eval.evaluation_details import EvaluationDetails, StateMachineDetails
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventHistoryContext, EventManager
from moto.stepfunctions.parser.backend.execution import Execution
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse

#: How long after its end an execution may be redriven (API_RedriveExecution.html).
REDRIVABLE_DAYS = 14
UNSUCCESSFUL = {ExecutionStatus.FAILED, ExecutionStatus.ABORTED, ExecutionStatus.TIMED_OUT}


class ExecutionNotRedrivable(AWSError):
    TYPE = "ExecutionNotRedrivable"
    STATUS = 400


def unsuccessful_state(history: list[dict[str, Any]]) -> tuple[str, Any] | None:
    """The state that did not finish (entered, never exited) and the input it entered with."""
    open_states: list[tuple[str, str]] = []
    for event in history:
        kind = str(event["type"])
        if kind.endswith("StateEntered"):
            details = event["stateEnteredEventDetails"]
            open_states.append((details["name"], details.get("input") or "{}"))
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            for index in range(len(open_states) - 1, -1, -1):
                if open_states[index][0] == name:
                    del open_states[index]
                    break
    if not open_states:
        return None
    name, raw = open_states[-1]
    return name, json.loads(raw)


class RedriveWorker(ExecutionWorker):
    """Runs an execution again from one state, continuing its history."""

    def __init__(
        self, *, previous: EventManager, state_input: Any, redrive_count: int, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._previous = previous
        self._state_input = state_input
        self._redrive_count = redrive_count

    def _execution_logic(self) -> None:
        program = self._get_evaluation_entrypoint()
        env = self._get_evaluation_environment()
        env.event_manager = self._previous  # the same history, its ids going on
        last = len(self._previous.get_event_history())
        env.event_history_context = EventHistoryContext(previous_event_id=last)  # type: ignore[misc]
        env.states.reset(input_value=self._state_input)
        self.env = env
        env.event_manager.add_event(
            context=env.event_history_context,
            event_type=HistoryEventType.ExecutionRedriven,
            # moto's EventDetails lacks the key; its history events are plain dicts.
            event_details=cast(
                "EventDetails",
                {
                    "executionRedrivenEventDetails": ExecutionRedrivenEventDetails(
                        redriveCount=self._redrive_count
                    )
                },
            ),
        )
        program.eval(env)
        self._execution_communication.terminated()


def redrive(backend: StepFunctionsParserBackend, execution_arn: str) -> datetime.datetime:
    execution: Execution = backend.describe_execution(execution_arn)  # type: ignore[assignment]
    machine = execution.state_machine
    if getattr(machine, "type", "STANDARD") == "EXPRESS":
        raise ExecutionNotRedrivable("This operation is not supported by this type of state machine")
    if execution.exec_status not in UNSUCCESSFUL:
        raise ExecutionNotRedrivable(f"Execution is {execution.exec_status} and cannot be redriven")
    now = datetime.datetime.now(tz=datetime.UTC)
    if execution.stop_date and now - execution.stop_date > datetime.timedelta(days=REDRIVABLE_DAYS):
        raise ExecutionNotRedrivable("Execution redrivable period exceeded")
    worker = execution.exec_worker
    history = worker.env.event_manager.get_event_history() if worker and worker.env else []
    found = unsuccessful_state(history)  # type: ignore[arg-type]
    definition = json.loads(machine.definition)
    if found is None or found[0] not in definition["States"]:
        raise ExecutionNotRedrivable(
            "the local mode redrives a failed top-level state only"
            + (f" ({found[0]!r} is inside a branch)" if found else " (no unsuccessful state found)")
        )
    name, state_input = found
    count = getattr(execution, "redrive_count", 0) + 1
    redriven = RedriveWorker(
        previous=worker.env.event_manager,  # type: ignore[union-attr]
        state_input=state_input,
        redrive_count=count,
        evaluation_details=EvaluationDetails(
            aws_execution_details=execution._get_start_aws_execution_details(),
            execution_details=execution.get_start_execution_details(),
            state_machine_details=StateMachineDetails(
                arn=machine.arn,
                name=machine.name,
                typ=machine.sm_type,
                definition=json.dumps({**definition, "StartAt": name}),
            ),
        ),
        exec_comm=execution._get_start_execution_worker_comm(),
        cloud_watch_logging_session=execution._cloud_watch_logging_session,
        activity_store=execution._activity_store,
    )
    execution.redrive_count = count  # type: ignore[attr-defined]
    execution.redrive_date = now  # type: ignore[attr-defined]
    execution.exec_worker = redriven
    execution.exec_status = ExecutionStatus.RUNNING
    execution.stop_date = None
    execution.error = execution.cause = None
    redriven.start()  # type: ignore[no-untyped-call]
    return now


def _redrive_execution(self: StepFunctionResponse) -> ActionResult:
    when = redrive(self.stepfunction_backend, self._get_param("executionArn"))  # type: ignore[arg-type]
    return ActionResult({"redriveDate": when})


_previous_describe: Any = None


def _describe_execution(self: StepFunctionResponse) -> Any:
    """DescribeExecution (whichever patch answers it) with the redrive fields AWS answers."""
    answer = _previous_describe(self)
    execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
    count = getattr(execution, "redrive_count", 0)
    fields: dict[str, Any] = {"redriveCount": count}
    if count:
        fields["redriveDate"] = execution.redrive_date  # type: ignore[attr-defined]
    answer.result.update(fields)
    return answer


def install() -> None:
    """Last of the Step Functions bridges: it wraps the DescribeExecution they installed."""
    global _previous_describe  # noqa: PLW0603 - the patch wraps whatever answers now
    StepFunctionResponse.redrive_execution = _redrive_execution  # type: ignore[attr-defined]
    if StepFunctionResponse.describe_execution is not _describe_execution:
        _previous_describe = StepFunctionResponse.describe_execution
        StepFunctionResponse.describe_execution = _describe_execution  # type: ignore[method-assign]


def uninstall() -> None:
    global _previous_describe  # noqa: PLW0603
    if hasattr(StepFunctionResponse, "redrive_execution"):
        del StepFunctionResponse.redrive_execution
    if _previous_describe is not None:
        StepFunctionResponse.describe_execution = _previous_describe  # type: ignore[method-assign]
        _previous_describe = None
