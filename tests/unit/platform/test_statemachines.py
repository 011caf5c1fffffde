"""Every ASL file is valid, belongs to a workflow, and uses only what its workflow provides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from statelint.linter import Linter

from aios import events
from aios.errors import ERROR_NAMES
from infrastructure.asl_policy import function_timeouts, states, violations, workflow_violations
from infrastructure.platform import PLATFORM
from infrastructure.platform.asl import expand_file, expand_text
from infrastructure.platform.spec import STATEMACHINES_DIR, WorkflowSpec

ASL_FILES = sorted(STATEMACHINES_DIR.glob("*.asl.json"))
#: Errors a service integration raises, by the integration's resource prefix. Lambda reports
#: a function that ran out of time as ``Sandbox.Timedout``.
SERVICE_ERROR_PREFIXES = {
    "arn:aws:states:::dynamodb:": ("DynamoDB.",),
    "arn:aws:states:::events:": ("EventBridge.",),
    "arn:aws:states:::lambda:": ("Lambda.", "Sandbox.Timedout"),
    "arn:aws:states:::states:": ("StepFunctions.",),
}


def test_there_are_state_machines() -> None:
    assert ASL_FILES


@pytest.mark.parametrize("path", ASL_FILES, ids=lambda p: p.name)
def test_asl_is_valid(path: Path) -> None:
    assert Linter.validate(expand_text(path)) == []


@pytest.mark.parametrize("path", ASL_FILES, ids=lambda p: p.name)
def test_every_asl_file_is_a_workflow_of_the_platform(path: Path) -> None:
    assert path.name in {w.asl for w in PLATFORM.workflows}


@pytest.mark.parametrize("workflow", PLATFORM.workflows, ids=lambda w: w.name)
def test_substitutions_are_all_provided(workflow: WorkflowSpec) -> None:
    provided = set(PLATFORM.substitutions(workflow))
    missing = workflow.referenced_substitutions() - provided
    assert not missing, f"{workflow.asl} uses ${{...}} the platform does not provide: {sorted(missing)}"


@pytest.mark.parametrize("path", ASL_FILES, ids=lambda p: p.name)
def test_error_names_are_the_vocabulary(path: Path) -> None:
    definition = expand_file(path)
    for name, state in states(definition):
        resource = state.get("Resource", "")
        service_prefixes = tuple(
            prefix
            for integration, prefixes in SERVICE_ERROR_PREFIXES.items()
            if resource.startswith(integration)
            for prefix in prefixes
        )
        for rule in [*state.get("Retry", []), *state.get("Catch", [])]:
            for error in rule["ErrorEquals"]:
                assert (
                    error in ERROR_NAMES or error.startswith("States.") or error.startswith(service_prefixes)
                ), f"{path.name}: state {name!r} matches undefined error {error!r}"


@pytest.mark.parametrize("path", ASL_FILES, ids=lambda p: p.name)
def test_events_put_by_workflows_use_the_vocabulary(path: Path) -> None:
    known = {value for name, value in vars(events).items() if name.isupper() and isinstance(value, str)}
    definition = expand_file(path)
    for name, state in states(definition):
        for entry in state.get("Parameters", {}).get("Entries", []):
            assert entry["Source"] in known, f"{name}: unknown source {entry['Source']}"
            assert entry["DetailType"] in known, f"{name}: unknown detail-type {entry['DetailType']}"


@pytest.mark.parametrize("path", ASL_FILES, ids=lambda p: p.name)
def test_every_state_has_a_comment(path: Path) -> None:
    for name, state in states(expand_file(path)):
        assert state.get("Comment"), f"{path.name}: state {name!r} has no Comment for operators"


@pytest.mark.parametrize("workflow", PLATFORM.workflows, ids=lambda w: w.name)
def test_tasks_keep_the_failure_handling_policy(workflow: WorkflowSpec) -> None:
    assert workflow_violations(PLATFORM, workflow) == []


def test_policy_catches_each_kind_of_violation() -> None:
    # Given a definition that breaks every rule once
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "HeartbeatSecondsPath": "$.ladder.seconds",
                "Retry": [{"ErrorEquals": ["States.ALL"]}],
                "Next": "Wait",
            },
            "Wait": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "TimeoutSecondsPath": "$.ladder.seconds",
                "HeartbeatSecondsPath": "$.ladder.seconds",
                "Next": "Beat",
            },
            "Beat": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "TimeoutSeconds": 60,
                "HeartbeatSeconds": 60,
                "Next": "Invoke",
            },
            "Invoke": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "${ModelInvokeFunctionArn}"},
                "TimeoutSeconds": 180,
                "End": True,
            },
        },
    }
    # Then each rule reports it
    assert violations(definition, function_timeouts={"${ModelInvokeFunctionArn}": 180}) == [
        "'Call': Task has no TimeoutSeconds",
        "'Call': Retry[0] has no MaxDelaySeconds",
        "'Call': Retry[0] has no JitterStrategy FULL",
        "'Wait': HeartbeatSecondsPath equals TimeoutSecondsPath (heartbeat must be shorter)",
        "'Beat': HeartbeatSeconds 60 is not below TimeoutSeconds 60",
        "'Invoke': TimeoutSeconds 180 does not exceed ${ModelInvokeFunctionArn}'s own timeout of 180 s",
    ]


def test_function_timeouts_come_from_the_description() -> None:
    # Given the accounts-payable workflow of the default platform
    workflow = PLATFORM.workflow("accounts-payable")
    # Then every function it may invoke is known with the timeout the description declares
    timeouts = function_timeouts(PLATFORM, workflow)
    assert timeouts["${ModelInvokeFunctionArn}"] == PLATFORM.function("model-invoke").timeout_seconds
    assert set(timeouts) == {
        f"${{{''.join(p.capitalize() for p in f.split('-'))}FunctionArn}}" for f in workflow.functions
    }


def test_a_lambda_task_no_longer_than_its_function_fails_the_policy() -> None:
    # Given a description whose model-invoke may run as long as the Score task waits
    workflow = PLATFORM.workflow("accounts-payable")
    [score] = [s for _, s in states(json.loads(workflow.read_definition())) if "ModelInvoke" in json.dumps(s)]
    slower = PLATFORM.model_copy(
        update={
            "functions": tuple(
                f.model_copy(update={"timeout_seconds": score["TimeoutSeconds"]})
                if f.name == "model-invoke"
                else f
                for f in PLATFORM.functions
            )
        }
    )
    # Then the policy names the state
    [found] = workflow_violations(slower, workflow)
    assert found.startswith("'Score with the anomaly model': TimeoutSeconds")


def test_callback_tasks_declare_no_heartbeat_nobody_sends() -> None:
    # The approval stages never call SendTaskHeartbeat: a heartbeat would only time them out early.
    definition = json.loads(PLATFORM.workflow("accounts-payable").read_definition())
    callbacks = [s for _, s in states(definition) if str(s.get("Resource", "")).endswith(".waitForTaskToken")]
    assert callbacks
    for state in callbacks:
        assert "HeartbeatSeconds" not in state
        assert "HeartbeatSecondsPath" not in state
