"""State machine versions and aliases in the local mode, as Step Functions runs them.

Written for exactly moto 5.2.5, which stores versions (``publish``) and aliases with their
routing configuration but cannot start an execution on an alias ARN
(``StateMachineDoesNotExist``), and files an execution of a version under that version only.
What AWS does, and this module does too:

- **Starting on an alias** picks one of the alias's versions by its routing weights, for
  each execution
  (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-state-machine-alias.html);
  the execution is associated with the alias and that version
  (https://docs.aws.amazon.com/step-functions/latest/dg/execution-alias-version-associate.html).
- **An execution runs its version's definition**, the one published with it, whatever the
  state machine and its alias are changed to while it runs (moto's version is a copy of the
  definition at publish time; the execution a deep copy of that).
- **The execution belongs to the state machine**: ``ListExecutions``/``DescribeExecution``/
  ``GetExecutionHistory`` on the unqualified ARN find it, ``DescribeExecution`` answers the
  unqualified ``stateMachineArn`` with ``stateMachineVersionArn`` and ``stateMachineAliasArn``
  (https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html).
- **``ListStateMachineVersions``** answers (moto has no such action).

``publish`` and ``route`` are the two calls a rollout is made of (deploy a changed
definition as a new version; shift the alias's weights), for tests and the CLI alike.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from infrastructure.local import pin  # noqa: F401 - the moto version guard, before moto internals

# isort: split
from moto.core.responses import ActionResult
from moto.stepfunctions.exceptions import StateMachineDoesNotExist
from moto.stepfunctions.models import StateMachine, StateMachineVersion
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse

#: Weighted choice of a version per execution; seedable for a test that wants a sequence.
ROUTING = random.Random()


@dataclass(frozen=True)
class Association:
    """What an execution was started on."""

    version_arn: str
    alias_arn: str | None = None


_associations: dict[str, Association] = {}
_lock = threading.Lock()


def split_qualifier(arn: str) -> tuple[str, str | None]:
    """``arn:aws:states:r:a:stateMachine:name[:qualifier]`` -> (unqualified ARN, qualifier)."""
    parts = arn.split(":")
    if len(parts) == 8 and parts[5] == "stateMachine":
        return ":".join(parts[:7]), parts[7]
    return arn, None


def choose_version(routing: Sequence[Mapping[str, Any]], draw: float) -> str:
    """The version of a routing configuration that ``draw`` (in [0, 1)) falls on."""
    total = sum(int(route["weight"]) for route in routing)
    if total <= 0:
        raise ValueError("an alias routes no traffic")
    point = draw * total
    for route in routing:
        point -= int(route["weight"])
        if point < 0:
            return str(route["stateMachineVersionArn"])
    return str(routing[-1]["stateMachineVersionArn"])


def association(execution_arn: str) -> Association | None:
    with _lock:
        return _associations.get(execution_arn)


# -- patches ---------------------------------------------------------------------------------


class _LiveExecutions(list[Any]):
    """A version's executions. moto deep-copies a state machine for each execution it starts
    and leaves out the machine's own ``executions`` (live threads and locks cannot be
    copied), but not those of its ``versions``; a copy starts with none, as moto intends."""

    def __deepcopy__(self, memo: dict[int, Any]) -> _LiveExecutions:
        return _LiveExecutions()


_previous_start: Any = None
_ORIGINAL_DESCRIBE_EXECUTION_RESPONSE = StepFunctionResponse.describe_execution


def _start_execution(self: Any, state_machine_arn: str, *args: Any, **kwargs: Any) -> Any:
    base_arn, qualifier = split_qualifier(state_machine_arn)
    if qualifier is None:
        return _previous_start(self, state_machine_arn, *args, **kwargs)
    alias_arn: str | None = None
    version_arn = state_machine_arn
    if not qualifier.isdigit():
        alias = self.describe_state_machine_alias(state_machine_arn)  # ResourceNotFound as AWS
        alias_arn = alias.arn
        version_arn = choose_version(alias.routing_configuration, ROUTING.random())
    base = self.describe_state_machine(base_arn)
    version = base.versions.get(int(version_arn.rsplit(":", 1)[1]))
    if version is None:
        raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{version_arn}'")
    if not hasattr(version, "backend"):  # moto's start path reads it; a version has none
        version.backend = base.backend
    if not isinstance(version.executions, _LiveExecutions):
        version.executions = _LiveExecutions(version.executions)
    execution = _previous_start(self, version_arn, *args, **kwargs)
    with _lock:
        _associations[execution.exec_arn] = Association(version_arn=version_arn, alias_arn=alias_arn)
    execution.state_machine_arn = base_arn
    if execution not in base.executions:
        base.executions.append(execution)
    return execution


def _describe_execution_response(self: StepFunctionResponse) -> Any:
    result = _ORIGINAL_DESCRIBE_EXECUTION_RESPONSE(self)
    found = association(self._get_param("executionArn"))
    if found is not None and isinstance(result, ActionResult) and isinstance(result.result, dict):
        result.result["stateMachineArn"] = split_qualifier(found.version_arn)[0]
        result.result["stateMachineVersionArn"] = found.version_arn
        if found.alias_arn:
            result.result["stateMachineAliasArn"] = found.alias_arn
    return result


def _list_state_machine_versions(self: StepFunctionResponse) -> ActionResult:
    """``ListStateMachineVersions``, which moto lacks: newest first, as AWS lists them
    (https://docs.aws.amazon.com/step-functions/latest/apireference/API_ListStateMachineVersions.html)."""
    machine = self.stepfunction_backend.describe_state_machine(self._get_param("stateMachineArn"))
    listed = sorted(getattr(machine, "versions", {}).values(), key=lambda v: v.version, reverse=True)
    return ActionResult(
        {
            "stateMachineVersions": [
                {"stateMachineVersionArn": v.arn, "creationDate": v.creation_date} for v in listed
            ]
        }
    )


def install() -> None:
    """After ``stepfunctions.install`` (its start patch runs inside this one)."""
    global _previous_start  # noqa: PLW0603 - the patch wraps whatever start is installed
    if StepFunctionsParserBackend.start_execution is not _start_execution:
        _previous_start = StepFunctionsParserBackend.start_execution
        StepFunctionsParserBackend.start_execution = _start_execution  # type: ignore[method-assign]
    StepFunctionResponse.describe_execution = _describe_execution_response  # type: ignore[method-assign]
    StepFunctionResponse.list_state_machine_versions = _list_state_machine_versions  # type: ignore[attr-defined]
    # moto's version lacks the name-idempotency check its start path calls (AWS applies it).
    StateMachineVersion._handle_name_input_idempotency = StateMachine._handle_name_input_idempotency  # type: ignore[attr-defined]


def uninstall() -> None:
    global _previous_start  # noqa: PLW0603
    if _previous_start is not None:
        StepFunctionsParserBackend.start_execution = _previous_start  # type: ignore[method-assign]
        _previous_start = None
    StepFunctionResponse.describe_execution = _ORIGINAL_DESCRIBE_EXECUTION_RESPONSE  # type: ignore[method-assign]
    if hasattr(StepFunctionResponse, "list_state_machine_versions"):
        del StepFunctionResponse.list_state_machine_versions


# -- what a rollout is made of (boto3 calls, the same on AWS) ---------------------------------


def publish(sfn: Any, state_machine_arn: str, definition: str, *, description: str) -> str:
    """Deploy a changed definition as a new version; the alias does not move."""
    answer = sfn.update_state_machine(
        stateMachineArn=state_machine_arn, definition=definition, publish=True, versionDescription=description
    )
    return str(answer["stateMachineVersionArn"])


def route(sfn: Any, alias_arn: str, weights: Mapping[str, int]) -> None:
    """Point the alias at one or two versions with these weights (percent, summing to 100)."""
    if sum(weights.values()) != 100 or not 1 <= len(weights) <= 2:
        raise ValueError(f"an alias routes to one or two versions, weights summing to 100: {dict(weights)}")
    sfn.update_state_machine_alias(
        stateMachineAliasArn=alias_arn,
        routingConfiguration=[{"stateMachineVersionArn": v, "weight": w} for v, w in weights.items()],
    )


__all__ = [
    "ROUTING",
    "Association",
    "association",
    "choose_version",
    "install",
    "publish",
    "route",
    "split_qualifier",
    "uninstall",
]
