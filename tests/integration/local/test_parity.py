"""Parity: the local mode deploys exactly what CloudFormation deploys.

For every workflow, the definition string and the meaning of every ``${Name}`` substitution
in the synthesized template equal those of the local deployment on moto; for every trigger
rule, the event pattern and the target's retry policy are the same.

Substitution values differ by nature (CloudFormation intrinsics there, local names and
ARNs here), so each side's value is mapped to a canonical placeholder naming the resource
it stands for (``<table:lineage:name>``) and the definitions are compared with those.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infrastructure.local.deploy import (
    LocalNames,
    canonical_json,
    definition,
    deploy,
    resolve_attribute,
    substitute,
)
from infrastructure.platform import PLATFORM
from infrastructure.platform.spec import DEAD_LETTERS, ResourceAttribute, WorkflowSpec

CFN_PREFIX = "aios-dev-"
Template = dict[str, Any]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    from infrastructure.app import build_app  # noqa: PLC0415 - jsii starts Node

    outdir = tmp_path_factory.mktemp("cdk.out")
    app, _ = build_app(outdir=outdir)
    try:
        app.synth()
    except RuntimeError as error:
        # cdk-nag findings fail synth after the templates are written; they are the
        # infrastructure tier's to report (tests/infrastructure), not this comparison's.
        if "Validation failed" not in str(error) and "ValidationFailed" not in str(error):
            raise
    loaded: Template = json.loads(Path(outdir, "aios-dev-platform.template.json").read_text())
    return loaded


@pytest.fixture(scope="module")
def local() -> Iterator[Any]:
    with mock_aws():
        secrets = {source.name: "whsec_cGFyaXR5" for source in PLATFORM.sources}
        deploy(PLATFORM, None, secrets=secrets)  # type: ignore[arg-type]
        yield boto3.Session(region_name=LocalNames().region)


def placeholder(reference: ResourceAttribute) -> str:
    return f"<{reference.kind}:{reference.id}:{reference.attribute}>"


def _without_prefix(name: str) -> str:
    assert name.startswith(CFN_PREFIX), name
    return name.removeprefix(CFN_PREFIX)


def _ref_placeholder(resource: dict[str, Any], resources: Template) -> str | None:
    if resource["Type"] == "AWS::Lambda::Version":  # a workflow calls the version it was deployed with
        function = resources[resource["Properties"]["FunctionName"]["Ref"]]
        return f"<function:{_without_prefix(function['Properties']['FunctionName'])}:arn>"
    if resource["Type"] == "AWS::Events::EventBus":
        return f"<bus:{_without_prefix(resource['Properties']['Name'])}:name>"
    if resource["Type"] == "AWS::SQS::Queue":  # a queue's Ref is its URL
        assert resource["Properties"]["QueueName"] == CFN_PREFIX + DEAD_LETTERS, resource
        return f"<queue:{DEAD_LETTERS}:url>"
    return None


def cfn_placeholder(value: Any, resources: Template) -> str:
    """What a CloudFormation substitution value stands for, as a canonical placeholder."""
    if isinstance(value, str):
        tables = {t.id for t in PLATFORM.tables}
        if value.startswith(CFN_PREFIX) and _without_prefix(value) in tables:
            return f"<table:{_without_prefix(value)}:name>"
        return f"<literal:{value}:value>"
    if "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        resource = resources[logical_id]
        assert attribute == "Arn", value
        if resource["Type"] == "AWS::Lambda::Function":
            return f"<function:{_without_prefix(resource['Properties']['FunctionName'])}:arn>"
        if resource["Type"] == "AWS::Events::EventBus":
            return f"<bus:{_without_prefix(resource['Properties']['Name'])}:arn>"
    if "Ref" in value and (found := _ref_placeholder(resources[value["Ref"]], resources)):
        return found
    if "Fn::Join" in value:
        joined = "".join(p if isinstance(p, str) else f"<{p.get('Ref')}>" for p in value["Fn::Join"][1])
        match = re.fullmatch(
            r"arn:<AWS::Partition>:dynamodb:<AWS::Region>:<AWS::AccountId>:table/(.+)", joined
        )
        if match:
            return f"<table:{_without_prefix(match.group(1))}:arn>"
    raise AssertionError(f"unmapped substitution value {value}")


def resources_of(template: Template, kind: str) -> dict[str, Any]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def state_machine(template: Template, workflow: WorkflowSpec) -> dict[str, Any]:
    return next(
        v["Properties"]
        for v in resources_of(template, "AWS::StepFunctions::StateMachine").values()
        if v["Properties"]["StateMachineName"] == CFN_PREFIX + workflow.name
    )


@pytest.mark.parametrize("workflow", PLATFORM.workflows, ids=lambda w: w.name)
def test_definition_and_substitutions_match(template: Template, local: Any, workflow: WorkflowSpec) -> None:
    names = LocalNames()
    cfn = state_machine(template, workflow)
    offered = PLATFORM.substitutions(workflow)

    # The same substitutions, each standing for the same resource attribute
    cfn_meaning = {
        name: cfn_placeholder(value, template["Resources"])
        for name, value in cfn.get("DefinitionSubstitutions", {}).items()
    }
    assert cfn_meaning == {name: placeholder(reference) for name, reference in offered.items()}

    # The same definition once each side's substitutions are read as placeholders
    local_definition = local.client("stepfunctions").describe_state_machine(
        stateMachineArn=names.state_machine_arn(workflow.name)
    )["definition"]
    assert local_definition == definition(PLATFORM, workflow, names)
    local_values = {name: resolve_attribute(reference, names) for name, reference in offered.items()}
    assert local_definition == substitute(workflow.read_definition(), local_values)
    assert substitute(cfn["DefinitionString"], cfn_meaning) == substitute(
        workflow.read_definition(), {name: placeholder(ref) for name, ref in offered.items()}
    )
    assert cfn["StateMachineType"] == workflow.type


@pytest.mark.parametrize("workflow", [w for w in PLATFORM.workflows if w.trigger], ids=lambda w: w.name)
def test_trigger_rule_matches(template: Template, local: Any, workflow: WorkflowSpec) -> None:
    names = LocalNames()
    cfn = next(
        v["Properties"]
        for v in resources_of(template, "AWS::Events::Rule").values()
        if v["Properties"].get("Name") == f"{CFN_PREFIX}{workflow.name}-trigger"
    )
    events = local.client("events")
    bus = names.bus(PLATFORM.bus.name)
    rule = events.describe_rule(Name=names.rule(workflow.name), EventBusName=bus)
    assert canonical_json(rule["EventPattern"]) == json.dumps(cfn["EventPattern"], sort_keys=True)
    assert canonical_json(rule["EventPattern"]) == PLATFORM.trigger_pattern_json(workflow)

    (cfn_target,) = cfn["Targets"]
    (local_target,) = events.list_targets_by_rule(Rule=names.rule(workflow.name), EventBusName=bus)["Targets"]
    # Both start the workflow through its alias (constructs/workflows.py, local/deploy.py).
    assert local_target["Arn"] == names.state_machine_alias_arn(workflow.name)
    alias = next(r for r in resources_of(template, "AWS::StepFunctions::StateMachineAlias").values())
    assert (
        set(cfn_target["Arn"]) == {"Ref"}
        and alias["Properties"]["Name"] == local_target["Arn"].rsplit(":", 1)[1]
    )
    assert (
        cfn_target["RetryPolicy"]
        == local_target["RetryPolicy"]
        == {
            "MaximumRetryAttempts": workflow.trigger.retry_attempts,
            "MaximumEventAgeInSeconds": workflow.trigger.max_event_age_seconds,
        }
    )
    assert "DeadLetterConfig" in cfn_target and "DeadLetterConfig" in local_target


def test_every_part_is_deployed_locally(local: Any) -> None:
    names = LocalNames()
    tables = local.client("dynamodb").list_tables()["TableNames"]
    assert sorted(tables) == sorted(names.table(t.id) for t in PLATFORM.tables)
    functions = {f["FunctionName"] for f in local.client("lambda").list_functions()["Functions"]}
    assert functions == {names.function(f.name) for f in PLATFORM.functions}
    for table in PLATFORM.tables:
        described = local.client("dynamodb").describe_table(TableName=names.table(table.id))["Table"]
        assert [i["IndexName"] for i in described.get("GlobalSecondaryIndexes", [])] == [
            i.name for i in table.indexes
        ]
