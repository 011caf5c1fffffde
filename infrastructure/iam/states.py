"""IAM enforced on the state machines' service integrations, in the process that hosts moto.

On AWS a Task state calls DynamoDB, EventBridge or Lambda as the state machine's role;
a call the role does not allow fails the task. moto's ASL interpreter (5.2.5) makes those
calls with boto3 clients created in its own process, from the thread that evaluates the
task. ``install(policies)`` marks that thread with its state machine (wrapping
``StateTaskService._eval_execution`` and ``StateTaskLambda._eval_execution``) and checks,
on every client of this process, the calls made from a marked thread against that state
machine's role policy (``local.state_machine_policies``). Calls from unmarked threads (the
local mode deploying, its bridges, the CLI) are not checked: they are not a role's calls.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping
from typing import Any

from infrastructure.iam import enforce
from infrastructure.iam.enforce import Enforcer, FunctionPolicy
from infrastructure.local import pin  # noqa: F401 - the moto version guard, before moto internals

# isort: split
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda

_CURRENT = threading.local()
_ORIGINALS: dict[type[Any], Any] = {}


def current_state_machine() -> str | None:
    """The unqualified ARN: an execution of a version (``...:stateMachine:name:3``) runs under
    the state machine's role (local/versions.py)."""
    arn: str | None = getattr(_CURRENT, "arn", None)
    if arn is not None and arn.count(":") == 7 and arn.split(":")[5] == "stateMachine":
        return arn.rpartition(":")[0]
    return arn


class _Router:
    """On every client: each call checked by the enforcer of the calling thread's state machine."""

    def __init__(self, enforcers: Mapping[str, Enforcer]) -> None:
        self.enforcers = dict(enforcers)

    def attach(self, client: Any) -> None:
        region = client.meta.region_name
        events = client.meta.events
        check = functools.partial(self._before_parameter_build, region=region)
        events.register("before-parameter-build", check)
        events.register_first("before-call", self._before_call)

    def _before_parameter_build(self, region: str, **kwargs: Any) -> None:
        enforcer = self.enforcers.get(current_state_machine() or "")
        if enforcer is not None:
            enforcer.before_parameter_build(region=region or enforcer.policy.region, **kwargs)

    def _before_call(self, **kwargs: Any) -> Any:
        enforcer = self.enforcers.get(current_state_machine() or "")
        return enforcer.before_call(**kwargs) if enforcer is not None else None


def _marking(method: Any) -> Any:
    @functools.wraps(method)
    def eval_execution(self: Any, env: Any) -> None:
        previous = current_state_machine()
        _CURRENT.arn = env.states.context_object.context_object_data["StateMachine"]["Id"]
        try:
            method(self, env)
        finally:
            _CURRENT.arn = previous

    return eval_execution


def install(policies: Mapping[str, FunctionPolicy]) -> _Router:
    """Enforce each state machine's role policy (state machine ARN -> policy) on its tasks' calls."""
    for task_class in (StateTaskService, StateTaskLambda):
        if task_class not in _ORIGINALS:
            _ORIGINALS[task_class] = task_class._eval_execution
            task_class._eval_execution = _marking(task_class._eval_execution)  # type: ignore[method-assign]
    # The lookup a SendTask* check needs is not made by state machines: no token owner here.
    router = _Router({arn: Enforcer(p, token_owner=lambda _t, _r: None) for arn, p in policies.items()})
    enforce.install(router)
    return router


def uninstall() -> None:
    for task_class, original in _ORIGINALS.items():
        task_class._eval_execution = original
    _ORIGINALS.clear()
    enforce.uninstall()


__all__ = ["current_state_machine", "install", "uninstall"]
