"""The rules every aios workflow keeps, checked at synth and in tests.

A Task without a timeout can hang for a year; a heartbeat that is not shorter than the
task's timeout never fires first (and a worker that never heartbeats must not declare one);
a Lambda Task whose timeout does not exceed the function's own races it, so the state
machine's ``States.Timeout`` may win over the function's real outcome; a Retry without a
delay cap or jitter turns an outage into a synchronized retry storm. ``Workflow`` runs this
as a CDK validation, so ``cdk synth`` fails on a violation, and tests/unit/platform runs it
over every ASL file. ``workflow_violations`` adds the rules that need the platform
description (each Lambda Task's function and its timeout).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infrastructure.platform.spec import Platform, WorkflowSpec

_LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
_SUBSTITUTION = re.compile(r"^\$\{([A-Za-z0-9_]+)\}$")


def states(definition: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state with its path, including Parallel branches and Map iterators."""
    for name, state in definition.get("States", {}).items():
        path = f"{prefix}{name}"
        yield path, state
        for index, branch in enumerate(state.get("Branches", [])):
            yield from states(branch, f"{path}/branch {index}/")
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                yield from states(state[key], f"{path}/")


def _heartbeat(path: str, state: dict[str, Any]) -> list[str]:
    """HeartbeatSeconds must be smaller than TimeoutSeconds (Step Functions docs, Task
    state fields: https://docs.aws.amazon.com/step-functions/latest/dg/state-task.html)."""
    if "HeartbeatSecondsPath" in state and state.get("HeartbeatSecondsPath") == state.get(
        "TimeoutSecondsPath"
    ):
        return [f"{path!r}: HeartbeatSecondsPath equals TimeoutSecondsPath (heartbeat must be shorter)"]
    heartbeat, timeout = state.get("HeartbeatSeconds"), state.get("TimeoutSeconds")
    if isinstance(heartbeat, int) and isinstance(timeout, int) and heartbeat >= timeout:
        return [f"{path!r}: HeartbeatSeconds {heartbeat} is not below TimeoutSeconds {timeout}"]
    return []


def _function_timeout(path: str, state: dict[str, Any], timeouts: Mapping[str, int]) -> list[str]:
    # A callback task's timeout bounds the wait for a human, not the invoke: not compared.
    function = str(state.get("Parameters", {}).get("FunctionName"))
    own, timeout = timeouts.get(function), state.get("TimeoutSeconds")
    if state.get("Resource") != _LAMBDA_INVOKE or own is None or not isinstance(timeout, int):
        return []
    if timeout > own:
        return []
    return [f"{path!r}: TimeoutSeconds {timeout} does not exceed {function}'s own timeout of {own} s"]


def violations(
    definition: dict[str, Any], *, function_timeouts: Mapping[str, int] | None = None
) -> list[str]:
    """The rule breaks of ``definition``. ``function_timeouts`` maps a Lambda Task's
    ``FunctionName`` as written in the ASL (``${ErpConnectorFunctionArn}``) to the function's
    own timeout in seconds; each such Task's static ``TimeoutSeconds`` must exceed it."""
    found: list[str] = []
    for path, state in states(definition):
        if state.get("Type") != "Task":
            continue
        has_timeout = "TimeoutSeconds" in state or "TimeoutSecondsPath" in state
        if not has_timeout:
            found.append(f"{path!r}: Task has no TimeoutSeconds")
        found.extend(_heartbeat(path, state))
        found.extend(_function_timeout(path, state, function_timeouts or {}))
        for index, retry in enumerate(state.get("Retry", [])):
            if "MaxDelaySeconds" not in retry:
                found.append(f"{path!r}: Retry[{index}] has no MaxDelaySeconds")
            if retry.get("JitterStrategy") != "FULL":
                found.append(f"{path!r}: Retry[{index}] has no JitterStrategy FULL")
    return found


def function_timeouts(platform: Platform, workflow: WorkflowSpec) -> dict[str, int]:
    """``${<Function>FunctionArn}`` -> that function's timeout, for the functions the workflow
    may invoke (the description's substitutions)."""
    return {
        f"${{{name}}}": platform.function(reference.id).timeout_seconds
        for name, reference in platform.substitutions(workflow).items()
        if reference.kind == "function"
    }


def workflow_violations(platform: Platform, workflow: WorkflowSpec) -> list[str]:
    """Every rule, including those that need the description, over one workflow's ASL."""
    return violations(
        json.loads(workflow.read_definition()), function_timeouts=function_timeouts(platform, workflow)
    )


__all__ = ["function_timeouts", "states", "violations", "workflow_violations"]
