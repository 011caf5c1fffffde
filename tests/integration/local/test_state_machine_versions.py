"""The local mode's state machine versions and aliases (infrastructure/local/versions.py).

AWS: an execution started on an alias runs one of the alias's versions, chosen by the
routing weights, and is associated with the alias and that version
(https://docs.aws.amazon.com/step-functions/latest/dg/execution-alias-version-associate.html);
it keeps its version's definition however the state machine changes afterwards.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infrastructure.local import stepfunctions, versions

DEFINITION = {
    "StartAt": "Wait",
    "States": {
        "Wait": {"Type": "Wait", "SecondsPath": "$.wait", "Next": "Mark"},
        "Mark": {"Type": "Pass", "Result": {"version": 1}, "End": True},
    },
}


def _definition(version: int) -> str:
    changed = json.loads(json.dumps(DEFINITION))
    changed["States"]["Mark"]["Result"] = {"version": version}
    return json.dumps(changed)


@pytest.fixture
def sfn() -> Iterator[Any]:
    stepfunctions.install()
    versions.install()
    try:
        with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
            yield boto3.client("stepfunctions", region_name="us-east-1")
    finally:
        versions.uninstall()
        stepfunctions.uninstall()


def _machine(sfn: Any) -> tuple[str, str, str]:
    role = boto3.client("iam", region_name="us-east-1").create_role(
        RoleName="r", AssumeRolePolicyDocument="{}"
    )
    created = sfn.create_state_machine(
        name="m", definition=_definition(1), roleArn=role["Role"]["Arn"], publish=True
    )
    alias = sfn.create_state_machine_alias(
        name="live",
        routingConfiguration=[{"stateMachineVersionArn": created["stateMachineVersionArn"], "weight": 100}],
    )
    return created["stateMachineArn"], created["stateMachineVersionArn"], alias["stateMachineAliasArn"]


def _finished(sfn: Any, execution_arn: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.05)
    raise AssertionError(f"{execution_arn} still running")


def test_an_execution_keeps_its_version_while_the_alias_moves(sfn: Any) -> None:
    machine, one, alias = _machine(sfn)
    # Given an execution on the alias (all on version 1), still waiting
    slow = sfn.start_execution(stateMachineArn=alias, input=json.dumps({"wait": 1}))["executionArn"]
    # When version 2 is published and takes all new executions
    two = versions.publish(sfn, machine, _definition(2), description="two")
    versions.route(sfn, alias, {two: 100})
    fast = sfn.start_execution(stateMachineArn=alias, input=json.dumps({"wait": 0}))["executionArn"]
    # Then each finishes on the version it started on, and both belong to the state machine
    first, second = _finished(sfn, slow), _finished(sfn, fast)
    assert json.loads(first["output"]) == {"version": 1}
    assert (first["stateMachineVersionArn"], first["stateMachineAliasArn"]) == (one, alias)
    assert json.loads(second["output"]) == {"version": 2}
    assert second["stateMachineVersionArn"] == two
    assert first["stateMachineArn"] == second["stateMachineArn"] == machine
    listed = {e["executionArn"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]}
    assert {slow, fast} <= listed
    # And a rollback sends new executions to version 1 again
    versions.route(sfn, alias, {one: 100})
    again = sfn.start_execution(stateMachineArn=alias, input=json.dumps({"wait": 0}))["executionArn"]
    assert _finished(sfn, again)["stateMachineVersionArn"] == one


def test_the_alias_weights_split_new_executions(sfn: Any) -> None:
    machine, one, alias = _machine(sfn)
    two = versions.publish(sfn, machine, _definition(2), description="two")
    versions.route(sfn, alias, {one: 80, two: 20})
    versions.ROUTING.seed(15)
    started = [
        sfn.start_execution(stateMachineArn=alias, input=json.dumps({"wait": 0}))["executionArn"]
        for _ in range(60)
    ]
    on_two = sum(_finished(sfn, arn)["stateMachineVersionArn"] == two for arn in started)
    # 20% of 60 = 12; a binomial(60, 0.2) lies in [3, 24] with probability > 0.999
    assert 3 <= on_two <= 24


def test_weights_pick_versions_in_proportion() -> None:
    routing = [{"stateMachineVersionArn": "v1", "weight": 90}, {"stateMachineVersionArn": "v2", "weight": 10}]
    assert versions.choose_version(routing, 0.0) == "v1"
    assert versions.choose_version(routing, 0.899) == "v1"
    assert versions.choose_version(routing, 0.9) == "v2"
    assert versions.choose_version(routing, 0.999) == "v2"
    with pytest.raises(ValueError, match="two versions"):
        versions.route(None, "alias", {"v1": 50, "v2": 40})


def test_an_unknown_alias_is_refused(sfn: Any) -> None:
    machine, _, _ = _machine(sfn)
    with pytest.raises(sfn.exceptions.ResourceNotFound):
        sfn.start_execution(stateMachineArn=f"{machine}:nope", input="{}")


def test_versions_are_listed_newest_first(sfn: Any) -> None:
    machine, one, _ = _machine(sfn)
    two = versions.publish(sfn, machine, _definition(2), description="two")
    listed = sfn.list_state_machine_versions(stateMachineArn=machine)["stateMachineVersions"]
    assert [v["stateMachineVersionArn"] for v in listed] == [two, one]
    assert sfn.describe_state_machine(stateMachineArn=two)["description"] == "two"


def test_the_unqualified_arn_still_starts_while_a_version_execution_runs(sfn: Any) -> None:
    # AWS runs the latest revision, associated with no version; moto copies the machine for
    # each execution, which must not copy the versions' live executions (threads, locks).
    machine, _, alias = _machine(sfn)
    waiting = sfn.start_execution(stateMachineArn=alias, input=json.dumps({"wait": 1}))["executionArn"]

    plain = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"wait": 0}))["executionArn"]

    assert _finished(sfn, plain)["status"] == "SUCCEEDED"
    assert _finished(sfn, waiting)["status"] == "SUCCEEDED"
