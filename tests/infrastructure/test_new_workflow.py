"""A new workflow is its ASL source and one ``WorkflowSpec`` in the description: everything
else (state machine, role, rule, version and alias, log group, alarms, dashboard widgets) is
derived. This test adds one here and nowhere else, and finds each derived part.

Files a new workflow touches: ``statemachines/<name>.asl.json``, the module declaring its
``WorkflowSpec``, and ``infrastructure/platform/default.py`` listing it (here the test does
both); a new kind of retry adds a fragment to ``statemachines/policies.json``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from infrastructure.iam.policy import Request, allows, statements_of
from infrastructure.platform import PLATFORM
from infrastructure.platform.spec import Platform, TriggerSpec, WorkflowSpec
from tests.infrastructure.policy_contracts import ACCOUNT, PARTITION, REGION, DeployedPolicies
from tests.infrastructure.synth import Synthesized, synthesize

VENDOR_SYNC = WorkflowSpec(
    name="vendor-sync",
    description="Test-only: fetch a vendor from the ERP when one is updated.",
    asl="../tests/infrastructure/fixtures/vendor_sync.asl.json",
    type="STANDARD",
    trigger=TriggerSpec(
        description="Every Vendor Updated.",
        event_pattern={"source": ["aios.vendors"], "detail-type": ["Vendor Updated"]},
    ),
    functions=("erp-connector",),
)
WITH_VENDOR_SYNC = Platform.model_validate(
    {**dict(PLATFORM), "workflows": (*PLATFORM.workflows, VENDOR_SYNC)}
)
NAME = "aios-dev-vendor-sync"


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("cdk.out"), platform=WITH_VENDOR_SYNC)


def _resources(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in template["Resources"].values() if r["Type"] == kind]


def test_the_state_machine_is_deployed_with_its_fragments_expanded(synthesized: Synthesized) -> None:
    template = synthesized.templates()["aios-dev-platform"]
    [machine] = [
        r
        for r in _resources(template, "AWS::StepFunctions::StateMachine")
        if r["Properties"]["StateMachineName"] == NAME
    ]
    definition = machine["Properties"]["DefinitionString"]
    text = json.dumps(definition)
    assert "$ref" not in text
    assert "Connector.CircuitOpen" in text  # from policies.json#/retry/connector


def test_its_rule_its_alarms_and_its_dashboard_are_derived(synthesized: Synthesized) -> None:
    template = synthesized.templates()["aios-dev-platform"]
    patterns = [r["Properties"].get("EventPattern") for r in _resources(template, "AWS::Events::Rule")]
    assert VENDOR_SYNC.trigger is not None
    assert VENDOR_SYNC.trigger.event_pattern in patterns
    alarms = [r["Properties"].get("AlarmName", "") for r in _resources(template, "AWS::CloudWatch::Alarm")]
    assert any("vendor-sync" in name for name in alarms), alarms
    dashboards = json.dumps([r["Properties"] for r in _resources(template, "AWS::CloudWatch::Dashboard")])
    assert "vendor-sync" in dashboards


def test_its_role_may_invoke_only_the_functions_it_declared(synthesized: Synthesized) -> None:
    policies = DeployedPolicies(synthesized.templates())
    [(stack, _, machine)] = [
        (stack, logical_id, resource)
        for stack, logical_id, resource in policies.resources("AWS::StepFunctions::StateMachine")
        if resource["Properties"]["StateMachineName"] == NAME
    ]
    role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    statements = [
        statement
        for _, _, policy in policies.resources("AWS::IAM::Policy")
        if {"Ref": role} in policy["Properties"].get("Roles", [])
        for statement in statements_of(policies.resolve(stack, policy["Properties"]["PolicyDocument"]))
    ]
    may = {
        function.name
        for function in WITH_VENDOR_SYNC.functions
        if allows(
            statements,
            Request(
                action="lambda:InvokeFunction",
                resource=f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:aios-dev-{function.name}:1",
            ),
        )
    }
    assert may == set(VENDOR_SYNC.functions)
