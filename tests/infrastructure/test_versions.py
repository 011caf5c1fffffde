"""Every deploy is a version: functions and workflows behind aliases, rolled out with rollback.

What AWS requires, and where it says so:
- SnapStart runs on published versions only, on Python 3.12 and later (x86_64 and arm64), and
  not with provisioned concurrency, EFS or more than 512 MB of ephemeral storage:
  https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html
- A start through a state machine alias is authorized against the *unqualified* state
  machine ARN, scoped with ``states:StateMachineQualifier``:
  https://docs.aws.amazon.com/step-functions/latest/dg/auth-version-alias.html
- A deployment preference names alarms by *name*; CloudWatch treats one that does not exist
  as OK, so a typo means no rollback:
  https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-stepfunctions-statemachinealias-deploymentpreference.html
- A replaced ``AWS::StepFunctions::StateMachineVersion`` or ``AWS::Lambda::Version`` is
  deleted unless retained (aws-cdk #27250); an in-flight execution needs its versions.

Every list is derived from the platform description (``PLATFORM``), never written out.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_

from infrastructure.asl_policy import states
from infrastructure.constructs.functions import ARCHITECTURE, LIVE_ALIAS, RUNTIME, snap_start_supported
from infrastructure.constructs.workflows import _DefinitionDigest
from infrastructure.platform import PLATFORM
from infrastructure.settings import DeploymentSettings, WorkflowRollout, cdk_json_context
from tests.infrastructure.synth import Synthesized

_SUBSTITUTION = re.compile(r"^\$\{([A-Za-z0-9_]+)\}$")
_TASK_FUNCTION_FIELDS = ("FunctionName", "FunctionName.$")


def _resources(synthesized: Synthesized, kind: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = dict(synthesized.platform.find_resources(kind))  # type: ignore[arg-type]
    return found


def _function_logical_ids(synthesized: Synthesized) -> dict[str, str]:
    """Platform function name -> logical id of its ``AWS::Lambda::Function``."""
    by_name = {
        resource["Properties"]["FunctionName"]: logical_id
        for logical_id, resource in _resources(synthesized, "AWS::Lambda::Function").items()
    }
    return {spec.name: by_name[f"aios-dev-{spec.name}"] for spec in PLATFORM.functions}


def _state_machine_logical_ids(synthesized: Synthesized) -> dict[str, str]:
    by_name = {
        resource["Properties"]["StateMachineName"]: logical_id
        for logical_id, resource in _resources(synthesized, "AWS::StepFunctions::StateMachine").items()
    }
    return {spec.name: by_name[f"aios-dev-{spec.name}"] for spec in PLATFORM.workflows}


def _version_of(synthesized: Synthesized, state_machine_id: str) -> tuple[str, dict[str, Any]]:
    versions = [
        (logical_id, resource)
        for logical_id, resource in _resources(synthesized, "AWS::StepFunctions::StateMachineVersion").items()
        if resource["Properties"]["StateMachineArn"] == {"Ref": state_machine_id}
    ]
    assert len(versions) == 1, f"{state_machine_id}: {len(versions)} versions"
    return versions[0]


def _alias_of(synthesized: Synthesized, version_id: str) -> tuple[str, dict[str, Any]]:
    aliases = [
        (logical_id, resource)
        for logical_id, resource in _resources(synthesized, "AWS::StepFunctions::StateMachineAlias").items()
        if resource["Properties"]["DeploymentPreference"]["StateMachineVersionArn"]
        == {"Fn::GetAtt": [version_id, "Arn"]}
    ]
    assert len(aliases) == 1, f"{version_id}: {len(aliases)} aliases"
    return aliases[0]


# -- functions ------------------------------------------------------------------------------


def test_the_runtime_and_architecture_support_snapstart() -> None:
    # Python 3.12+ on arm64 (the docs list no architecture restriction for Python).
    assert RUNTIME.supports_snap_start
    assert ARCHITECTURE.name == lambda_.Architecture.ARM_64.name == "arm64"
    assert snap_start_supported()
    # More than 512 MB of ephemeral storage rules SnapStart out; a runtime without it too.
    assert not snap_start_supported(ephemeral_storage_mb=1024)
    assert not snap_start_supported(lambda_.Runtime.PYTHON_3_11)


def test_every_function_publishes_a_retained_version_with_snapstart(synthesized: Synthesized) -> None:
    functions = _resources(synthesized, "AWS::Lambda::Function")
    versions = _resources(synthesized, "AWS::Lambda::Version")
    for name, function_id in _function_logical_ids(synthesized).items():
        properties = functions[function_id]["Properties"]
        assert properties["SnapStart"] == {"ApplyOn": "PublishedVersions"}, name
        # The SnapStart restrictions, as the template could break them.
        assert "FileSystemConfigs" not in properties, name
        assert properties.get("EphemeralStorage", {}).get("Size", 512) <= 512, name
        mine = [v for v in versions.values() if v["Properties"]["FunctionName"] == {"Ref": function_id}]
        assert len(mine) == 1, f"{name}: {len(mine)} versions"
        assert "ProvisionedConcurrencyConfig" not in mine[0]["Properties"], name
        assert mine[0]["DeletionPolicy"] == "Retain" and mine[0]["UpdateReplacePolicy"] == "Retain", name


def test_every_function_has_a_live_alias_on_its_version(synthesized: Synthesized) -> None:
    aliases = _resources(synthesized, "AWS::Lambda::Alias")
    versions = _resources(synthesized, "AWS::Lambda::Version")
    for name, function_id in _function_logical_ids(synthesized).items():
        mine = [a for a in aliases.values() if a["Properties"]["FunctionName"] == {"Ref": function_id}]
        assert len(mine) == 1, f"{name}: {len(mine)} aliases"
        properties = mine[0]["Properties"]
        assert properties["Name"] == LIVE_ALIAS
        version_id = properties["FunctionVersion"]["Fn::GetAtt"][0]
        assert versions[version_id]["Properties"]["FunctionName"] == {"Ref": function_id}, name
        assert "ProvisionedConcurrencyConfig" not in properties, f"{name}: SnapStart excludes it"


def test_api_routes_invoke_the_live_alias(synthesized: Synthesized) -> None:
    aliases = {
        logical_id: resource["Properties"]["FunctionName"]["Ref"]
        for logical_id, resource in _resources(synthesized, "AWS::Lambda::Alias").items()
    }
    function_ids = _function_logical_ids(synthesized)
    routed = {route.function for route in PLATFORM.routes}
    integrations = _resources(synthesized, "AWS::ApiGatewayV2::Integration").values()
    targets = {i["Properties"]["IntegrationUri"]["Ref"] for i in integrations}
    assert targets <= set(aliases), f"an integration targets something else than an alias: {targets}"
    assert {aliases[t] for t in targets} == {function_ids[f] for f in routed}
    # API Gateway's permission is on the alias it calls, not on the function ($LATEST).
    for permission in _resources(synthesized, "AWS::Lambda::Permission").values():
        if permission["Properties"]["Principal"] == "apigateway.amazonaws.com":
            assert permission["Properties"]["FunctionName"]["Ref"] in aliases


# -- workflows ------------------------------------------------------------------------------


def test_every_workflow_publishes_a_retained_version(synthesized: Synthesized) -> None:
    for name, state_machine_id in _state_machine_logical_ids(synthesized).items():
        _, version = _version_of(synthesized, state_machine_id)
        assert version["Properties"]["StateMachineRevisionId"] == {
            "Fn::GetAtt": [state_machine_id, "StateMachineRevisionId"]
        }
        assert re.fullmatch(
            rf"aios workflow {name}, definition [0-9a-f]{{16}}", version["Properties"]["Description"]
        )
        assert version["DeletionPolicy"] == "Retain" and version["UpdateReplacePolicy"] == "Retain", name


def test_every_workflow_alias_rolls_out_by_the_stage_and_rolls_back_on_existing_alarms(
    synthesized: Synthesized,
) -> None:
    rollout = DeploymentSettings.model_validate(cdk_json_context()).workflow_rollout
    alarms = _resources(synthesized, "AWS::CloudWatch::Alarm")
    for name, state_machine_id in _state_machine_logical_ids(synthesized).items():
        version_id, _ = _version_of(synthesized, state_machine_id)
        _, alias = _alias_of(synthesized, version_id)
        assert alias["Properties"]["Name"] == LIVE_ALIAS
        preference = alias["Properties"]["DeploymentPreference"]
        assert "RoutingConfiguration" not in alias["Properties"]  # exclusive with a preference
        assert preference["Type"] == rollout.type
        assert preference.get("Percentage") == rollout.percentage
        assert preference.get("Interval") == rollout.interval
        watched = [alarm["Ref"] for alarm in preference["Alarms"]]
        assert watched, f"{name}: nothing to roll back on"
        # By Ref: each is an alarm of this template (Ref of an alarm is its name).
        assert set(watched) <= set(alarms), f"{name}: {set(watched) - set(alarms)}"
        names = {alarms[a]["Properties"]["AlarmName"] for a in watched}
        assert f"aios-dev-slo-{name}-failure-rate" in names
        # ... and they watch this workflow.
        for alarm_id in watched:
            dimensions = json.dumps(alarms[alarm_id]["Properties"])
            assert json.dumps({"Ref": state_machine_id}) in dimensions, f"{name}: {alarm_id}"


def test_the_prod_stage_rolls_out_by_canary() -> None:
    context = {**cdk_json_context(), "stage": "prod"}
    rollout = DeploymentSettings.model_validate(context).workflow_rollout
    assert rollout.type in ("CANARY", "LINEAR")
    assert rollout.percentage is not None and rollout.interval is not None
    with pytest.raises(ValueError, match="needs a percentage"):
        WorkflowRollout(type="CANARY", interval=5)


def test_every_rule_targets_an_alias(synthesized: Synthesized) -> None:
    """Whatever a rule starts (a workflow, a function), it starts the ``live`` alias."""
    aliases = {
        *_resources(synthesized, "AWS::StepFunctions::StateMachineAlias"),
        *_resources(synthesized, "AWS::Lambda::Alias"),
    }
    rules = _resources(synthesized, "AWS::Events::Rule")
    assert rules
    for logical_id, rule in rules.items():
        for target in rule["Properties"]["Targets"]:
            assert set(target["Arn"]) == {"Ref"} and target["Arn"]["Ref"] in aliases, (
                logical_id,
                target["Arn"],
            )


def test_every_rule_starts_its_workflow_through_the_alias(synthesized: Synthesized) -> None:
    aliases = _resources(synthesized, "AWS::StepFunctions::StateMachineAlias")
    policies = _resources(synthesized, "AWS::IAM::Policy")
    rules = _resources(synthesized, "AWS::Events::Rule")
    machines = _state_machine_logical_ids(synthesized)
    for spec in PLATFORM.workflows:
        if spec.trigger is None:
            continue
        rule = next(r for r in rules.values() if r["Properties"]["Name"] == f"aios-dev-{spec.name}-trigger")
        (target,) = rule["Properties"]["Targets"]
        version_id, _ = _version_of(synthesized, machines[spec.name])
        alias_id, _ = _alias_of(synthesized, version_id)
        assert target["Arn"] == {"Ref": alias_id} and alias_id in aliases
        role_id = target["RoleArn"]["Fn::GetAtt"][0]
        statements = [
            statement
            for policy in policies.values()
            if {"Ref": role_id} in policy["Properties"]["Roles"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        ]
        assert statements == [
            {
                "Action": "states:StartExecution",
                "Condition": {"StringEquals": {"states:StateMachineQualifier": LIVE_ALIAS}},
                "Effect": "Allow",
                "Resource": {"Ref": machines[spec.name]},
            }
        ]


def _task_function_names(definition: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for path, state in states(definition):
        if state.get("Type") != "Task":
            continue
        resource = str(state.get("Resource", ""))
        parameters = state.get("Parameters") or state.get("Arguments") or {}
        if resource.startswith("arn:aws:states:::lambda:invoke"):
            names = [parameters[f] for f in _TASK_FUNCTION_FIELDS if f in parameters]
            assert names, f"{path}: a Lambda task without FunctionName"
            found += [(path, str(n)) for n in names]
        elif ":lambda:" in resource or "FunctionArn}" in resource:
            found.append((path, resource))
    return found


def test_every_lambda_task_names_a_function_version(synthesized: Synthesized) -> None:
    state_machines = _resources(synthesized, "AWS::StepFunctions::StateMachine")
    versions = _resources(synthesized, "AWS::Lambda::Version")
    aliases = _resources(synthesized, "AWS::Lambda::Alias")
    tasks_seen = 0
    for spec in PLATFORM.workflows:
        machine = state_machines[_state_machine_logical_ids(synthesized)[spec.name]]["Properties"]
        substitutions = machine.get("DefinitionSubstitutions", {})
        for path, function_name in _task_function_names(json.loads(machine["DefinitionString"])):
            tasks_seen += 1
            match = _SUBSTITUTION.match(function_name)
            assert match, f"{spec.name}/{path}: FunctionName {function_name!r} is not a substitution"
            value = substitutions[match.group(1)]
            assert isinstance(value, dict) and "Ref" in value, f"{spec.name}/{path}: {value}"
            assert value["Ref"] in versions or value["Ref"] in aliases, (
                f"{spec.name}/{path}: {value['Ref']} is neither a version nor an alias ($LATEST)"
            )
    assert tasks_seen >= sum(len(w.functions) for w in PLATFORM.workflows)


def test_a_workflow_may_invoke_the_retained_versions_of_its_functions(synthesized: Synthesized) -> None:
    """An execution of an old version calls an old function version: the grant must cover
    every qualifier, not only this deploy's version (aws-cdk #17515, fixed by #21233)."""
    function_ids = _function_logical_ids(synthesized)
    policies = _resources(synthesized, "AWS::IAM::Policy")
    state_machines = _resources(synthesized, "AWS::StepFunctions::StateMachine")
    for spec in PLATFORM.workflows:
        machine = state_machines[_state_machine_logical_ids(synthesized)[spec.name]]
        role_id = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
        granted = json.dumps(
            [
                s
                for p in policies.values()
                if {"Ref": role_id} in p["Properties"]["Roles"]
                for s in p["Properties"]["PolicyDocument"]["Statement"]
                if "lambda:InvokeFunction" in json.dumps(s["Action"])
            ]
        )
        for function in spec.functions:
            qualified = {"Fn::Join": ["", [{"Fn::GetAtt": [function_ids[function], "Arn"]}, ":*"]]}
            assert json.dumps(qualified) in granted, f"{spec.name} may not invoke {function}'s versions"


def test_a_changed_function_version_changes_the_workflow_version() -> None:
    """The version's description digests the resolved substitutions: a new function
    version (another logical id) publishes a new state machine version."""
    stack = Stack(App(), "Digest")
    definition = '{"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "${F}", "End": true}}}'
    one = _DefinitionDigest("w", stack, definition, {"F": "arn:aws:lambda:r:1:function:f:1"}).produce()
    again = _DefinitionDigest("w", stack, definition, {"F": "arn:aws:lambda:r:1:function:f:1"}).produce()
    two = _DefinitionDigest("w", stack, definition, {"F": "arn:aws:lambda:r:1:function:f:2"}).produce()
    edited = _DefinitionDigest("w", stack, definition.replace('"A"', '"B"'), {"F": "x"}).produce()
    assert one == again
    assert len({one, two, edited}) == 3


def test_cold_starts_count_snapstart_restores(synthesized: Synthesized) -> None:
    """With SnapStart a new environment's REPORT line has ``Restore Duration`` and no ``Init
    Duration`` (https://docs.aws.amazon.com/lambda/latest/dg/snapstart-monitoring.html)."""
    patterns = {
        transformation["MetricName"]: f["Properties"]["FilterPattern"]
        for f in _resources(synthesized, "AWS::Logs::MetricFilter").values()
        for transformation in f["Properties"]["MetricTransformations"]
    }
    for spec in PLATFORM.functions:
        pattern = patterns[f"ColdStarts-{spec.name}"]
        assert '"Restore Duration"' in pattern and '"Init Duration"' in pattern, pattern
