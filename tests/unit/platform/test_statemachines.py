"""Every ASL file is valid, belongs to a workflow, and uses only what its workflow provides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from statelint.linter import Linter

from aios import events
from aios.errors import ERROR_NAMES
from infrastructure.asl_policy import states, violations
from infrastructure.platform import PLATFORM
from infrastructure.platform.model import STATEMACHINES_DIR, WorkflowSpec

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
    assert Linter.validate(path.read_text()) == []


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
    definition = json.loads(path.read_text())
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
    definition = json.loads(path.read_text())
    for name, state in states(definition):
        for entry in state.get("Parameters", {}).get("Entries", []):
            assert entry["Source"] in known, f"{name}: unknown source {entry['Source']}"
            assert entry["DetailType"] in known, f"{name}: unknown detail-type {entry['DetailType']}"


@pytest.mark.parametrize("path", ASL_FILES, ids=lambda p: p.name)
def test_every_state_has_a_comment(path: Path) -> None:
    for name, state in states(json.loads(path.read_text())):
        assert state.get("Comment"), f"{path.name}: state {name!r} has no Comment for operators"


@pytest.mark.parametrize("path", ASL_FILES, ids=lambda p: p.name)
def test_tasks_keep_the_failure_handling_policy(path: Path) -> None:
    assert violations(json.loads(path.read_text())) == []


def test_policy_catches_each_kind_of_violation() -> None:
    # Given a definition that breaks every rule once
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Retry": [{"ErrorEquals": ["States.ALL"]}],
                "End": True,
            }
        },
    }
    # Then each rule reports it
    assert violations(definition) == [
        "'Call': Task has no TimeoutSeconds",
        "'Call': callback Task has no HeartbeatSeconds",
        "'Call': Retry[0] has no MaxDelaySeconds",
        "'Call': Retry[0] has no JitterStrategy FULL",
    ]
