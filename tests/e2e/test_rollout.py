"""A rollout on the local mode: an execution in flight keeps the version it started on.

One ``aios local up`` with ``tests/e2e/fixtures/rollout_platform.py`` (the default platform,
approval ladder 120 s per stage, so an execution can wait for an approver while a version is
deployed). The local deploy publishes version 1 of every function and workflow behind the
``live`` alias and the rule starts executions on the alias (as CDK does).

The deploy of version 2 is what a CloudFormation update does: the payments connector
publishes function version 2, the workflow publishes state machine version 2 whose
definition calls that function version (and names its last state differently, so each
execution's history shows which definition it ran), and the alias shifts: a canary first
(``aios rollout status`` shows the weights), then all of it (``aios rollout promote``).
Finally ``aios rollout rollback`` returns the alias to version 1.

AWS: https://docs.aws.amazon.com/step-functions/latest/dg/execution-alias-version-associate.html
(an execution started on an alias runs the version the alias chose for it, to its end).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from infrastructure.local import versions
from infrastructure.local.deploy import LocalNames, resolve_attribute, substitute
from infrastructure.local.harness import LocalProcess
from tests.e2e.conftest import eventually, start_local
from tests.e2e.fixtures.rollout_platform import PLATFORM
from tests.e2e.test_accounts_payable import (
    CLEAN_TEMPLATE,
    LARGE_TEMPLATE,
    SLACK_SECRET,
    WORKFLOW,
    accept,
    add_invoice,
    approval_requested,
    click,
    ended,
    entered,
    the_execution,
)

FUNCTION = "payments-connector"
V1_STATE, V2_STATE = "Close the books", "Close the books (v2)"


@pytest.fixture(scope="module")
def local() -> Iterator[LocalProcess]:
    yield from start_local(
        "tests/e2e/fixtures/rollout_platform.py:PLATFORM", env={"AIOS_LOCAL_SECRET_SLACK": SLACK_SECRET}
    )


@pytest.fixture(scope="module")
def seeded(local: LocalProcess) -> dict[str, dict[str, Any]]:
    return local.seeded_invoices()


def aios(local: LocalProcess, *args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "infrastructure.cli", "rollout", *args, "--endpoint-url", local.aws, "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def shares(status: dict[str, Any]) -> dict[int, int]:
    return {route["version"]: route["weight"] for route in status["routes"]}


def version_of(local: LocalProcess, execution_arn: str) -> tuple[str, str | None]:
    described = local.client("stepfunctions").describe_execution(executionArn=execution_arn)
    return described["stateMachineVersionArn"], described.get("stateMachineAliasArn")


def invoked(events: list[dict[str, Any]]) -> set[str]:
    """The function (ARNs with qualifier) each Lambda task of an execution was scheduled with."""
    return {
        json.loads(e["taskScheduledEventDetails"]["parameters"])["FunctionName"]
        for e in events
        if e["type"] == "TaskScheduled" and e["taskScheduledEventDetails"]["resource"] == "invoke"
    }


def executed(events: list[dict[str, Any]], function: str) -> set[str]:
    """The versions of ``function`` that actually ran (the invoke's ``ExecutedVersion``, which
    the local Lambda service answers from the workers of that version)."""
    versions_run: set[str] = set()
    scheduled: str | None = None
    for event in events:
        if event["type"] == "TaskScheduled" and event["taskScheduledEventDetails"]["resource"] == "invoke":
            scheduled = json.loads(event["taskScheduledEventDetails"]["parameters"])["FunctionName"]
        elif event["type"] == "TaskSucceeded" and scheduled and f":function:{function}:" in f"{scheduled}:":
            versions_run.add(json.loads(event["taskSucceededEventDetails"]["output"])["ExecutedVersion"])
            scheduled = None
    return versions_run


def deploy_version_2(local: LocalProcess) -> str:
    """A new payments connector version, and a workflow version that calls it."""
    names = LocalNames()
    lambda_ = local.client("lambda")
    lambda_.update_function_configuration(FunctionName=names.function(FUNCTION), Description="version 2")
    eventually(
        lambda: (
            lambda_.get_function(FunctionName=names.function(FUNCTION))["Configuration"].get(
                "LastUpdateStatus", "Successful"
            )
            == "Successful"
        )
    )
    function_version = lambda_.publish_version(FunctionName=names.function(FUNCTION))["Version"]
    assert function_version == "2"
    lambda_.update_alias(FunctionName=names.function(FUNCTION), Name="live", FunctionVersion=function_version)
    workflow = PLATFORM.workflow(WORKFLOW)
    values = {name: resolve_attribute(ref, names) for name, ref in PLATFORM.substitutions(workflow).items()}
    values["PaymentsConnectorFunctionArn"] = names.function_version_arn(FUNCTION, function_version)
    changed = substitute(workflow.read_definition(), values).replace(f'"{V1_STATE}"', f'"{V2_STATE}"')
    assert changed.count(V2_STATE) >= 2  # the state and the transition into it
    return versions.publish(
        local.client("stepfunctions"),
        names.state_machine_arn(WORKFLOW),
        changed,
        description="aios workflow accounts-payable, version 2 (e2e)",
    )


def test_in_flight_execution_finishes_on_version_1_while_version_2_takes_new_ones(
    local: LocalProcess, seeded: dict[str, dict[str, Any]]
) -> None:
    names = LocalNames()
    machine, alias = names.state_machine_arn(WORKFLOW), names.state_machine_alias_arn(WORKFLOW)
    v1 = f"{machine}:1"
    payments_v1 = names.function_version_arn(FUNCTION, "1")
    payments_v2 = names.function_version_arn(FUNCTION, "2")

    # Given an invoice above the auto-approval limit, started by its rule on the alias
    # (version 1, all of the traffic), waiting for an approver
    before = aios(local, "status", WORKFLOW)
    assert shares(before) == {1: 100} and before["serving"] == 1
    add_invoice(local, seeded, LARGE_TEMPLATE, "INV-9101", "7140.10")
    accept(local, "INV-9101")
    waiting = the_execution(local, "erp:INV-9101")
    message = approval_requested(local, "INV-9101")
    assert version_of(local, waiting) == (v1, alias)

    # When version 2 is deployed under the alias: a canary, then all of it
    v2 = deploy_version_2(local)
    assert v2 == f"{machine}:2"
    versions.route(local.client("stepfunctions"), alias, {v1: 90, v2: 10})
    canary = aios(local, "status", WORKFLOW)
    assert shares(canary) == {1: 90, 2: 10}
    assert [v["version"] for v in canary["versions"]] == [1, 2]
    promoted = aios(local, "promote", WORKFLOW)
    assert shares(promoted) == {2: 100} and promoted["serving"] == 2

    # Then a new invoice runs version 2, with the function version it was deployed with
    add_invoice(local, seeded, CLEAN_TEMPLATE, "INV-9102", "281.44")
    accept(local, "INV-9102")
    fresh = the_execution(local, "erp:INV-9102")
    assert version_of(local, fresh) == (v2, alias)
    outcome = ended(local, fresh)
    assert (outcome.status, outcome.state) == ("SUCCEEDED", "Invoice paid")
    assert V2_STATE in outcome.entered() and V1_STATE not in outcome.entered()
    assert payments_v2 in invoked(outcome.events) and payments_v1 not in invoked(outcome.events)
    assert executed(outcome.events, names.function(FUNCTION)) == {"2"}

    # ... while the waiting execution, approved now, finishes on version 1: its definition
    # and its payments connector version 1, though the alias has served version 2 since
    assert local.client("stepfunctions").describe_execution(executionArn=waiting)["status"] == "RUNNING"
    status, reply = click(local, message, "approve")
    assert (status, reply["status"]) == (200, "approved")
    finished = ended(local, waiting)
    assert (finished.status, finished.state) == ("SUCCEEDED", "Invoice paid")
    assert V1_STATE in finished.entered() and V2_STATE not in finished.entered()
    assert payments_v1 in invoked(finished.events) and payments_v2 not in invoked(finished.events)
    assert executed(finished.events, names.function(FUNCTION)) == {"1"}
    assert version_of(local, waiting) == (v1, alias)
    # Both are the state machine's executions, whichever version ran them
    listed = {
        e["executionArn"]
        for e in local.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"]
    }
    assert {waiting, fresh} <= listed


def test_a_rollback_returns_the_alias_to_version_1(
    local: LocalProcess, seeded: dict[str, dict[str, Any]]
) -> None:
    names = LocalNames()
    machine, alias = names.state_machine_arn(WORKFLOW), names.state_machine_alias_arn(WORKFLOW)
    assert aios(local, "status", WORKFLOW)["serving"] == 2  # after the test above

    # When the operator rolls back
    rolled_back = aios(local, "rollback", WORKFLOW)

    # Then the alias serves version 1 again, and a new invoice runs version 1's definition
    assert shares(rolled_back) == {1: 100} and rolled_back["serving"] == 1
    add_invoice(local, seeded, CLEAN_TEMPLATE, "INV-9103", "282.05")
    accept(local, "INV-9103")
    execution = the_execution(local, "erp:INV-9103")
    assert version_of(local, execution) == (f"{machine}:1", alias)
    outcome = ended(local, execution)
    assert outcome.status == "SUCCEEDED"
    assert V1_STATE in entered(outcome.events) and V2_STATE not in entered(outcome.events)
    assert names.function_version_arn(FUNCTION, "1") in invoked(outcome.events)
