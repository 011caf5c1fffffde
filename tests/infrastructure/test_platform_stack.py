"""The moving parts: functions, workflows, routing, API, and least privilege."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match

from infrastructure.nag import STAR_ONLY_ACTIONS
from infrastructure.platform import PLATFORM
from tests.infrastructure.synth import Synthesized

#: Actions that read or write data: never allowed on "*".
DATA_PLANE_PREFIXES = ("dynamodb:", "s3:", "sqs:", "events:", "states:", "lambda:", "secretsmanager:", "kms:")


def _statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::IAM::Policy":
            documents = [resource["Properties"]["PolicyDocument"]]
        elif resource["Type"] == "AWS::IAM::Role":
            documents = [p["PolicyDocument"] for p in resource["Properties"].get("Policies", [])]
        else:
            continue
        found += [(logical_id, statement) for document in documents for statement in document["Statement"]]
    return found


def test_no_identity_policy_grants_data_plane_actions_on_star(synthesized: Synthesized) -> None:
    for stack_name, template in synthesized.templates().items():
        for logical_id, statement in _statements(template):
            resources = (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            )
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if "*" in resources:
                assert set(actions) <= STAR_ONLY_ACTIONS, f"{stack_name}/{logical_id}: {actions} on *"
                assert not [a for a in actions if a.startswith(DATA_PLANE_PREFIXES)]
            for action in actions:
                assert action != "*" and not action.endswith(":*"), f"{logical_id}: {action}"


def test_no_managed_policies_on_our_roles(synthesized: Synthesized) -> None:
    for role in synthesized.platform.find_resources("AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]


def test_functions_run_arm64_current_python_traced_with_layer_and_dlq(synthesized: Synthesized) -> None:
    functions = synthesized.platform.find_resources(
        "AWS::Lambda::Function", {"Properties": {"FunctionName": Match.string_like_regexp("^aios-dev-")}}
    )
    assert {f["Properties"]["FunctionName"] for f in functions.values()} == {
        f"aios-dev-{spec.name}" for spec in PLATFORM.functions
    }
    for function in functions.values():
        properties = function["Properties"]
        assert properties["Architectures"] == ["arm64"]
        assert properties["Runtime"] == "python3.14"
        assert properties["TracingConfig"] == {"Mode": "Active"}
        assert len(properties["Layers"]) == 1
        assert "TargetArn" in properties["DeadLetterConfig"]
        assert "KmsKeyArn" in properties
        assert properties["Environment"]["Variables"]["AIOS_STAGE"] == "dev"


def test_function_environment_comes_from_the_description(synthesized: Synthesized) -> None:
    synthesized.platform.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": "aios-dev-webhook-ingest",
            # None by default (cdk.json reservedConcurrency): new accounts' quota can be 10.
            "ReservedConcurrentExecutions": Match.absent(),
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "AIOS_IDEMPOTENCY_TABLE": "aios-dev-idempotency",
                        "POWERTOOLS_SERVICE_NAME": "webhook-ingest",
                        "AIOS_EVENT_BUS_NAME": Match.any_value(),
                        "AIOS_DOCUMENTS_BUCKET": Match.any_value(),
                    }
                )
            },
        },
    )


def test_state_machines_log_all_and_trace(synthesized: Synthesized) -> None:
    machines = synthesized.platform.find_resources("AWS::StepFunctions::StateMachine")
    assert len(machines) == len(PLATFORM.workflows)
    for machine in machines.values():
        properties = machine["Properties"]
        assert properties["LoggingConfiguration"]["Level"] == "ALL"
        assert properties["LoggingConfiguration"]["IncludeExecutionData"] is False
        assert properties["TracingConfiguration"] == {"Enabled": True}


def test_definitions_are_inline_with_substitutions(synthesized: Synthesized) -> None:
    for spec in PLATFORM.workflows:
        synthesized.platform.has_resource_properties(
            "AWS::StepFunctions::StateMachine",
            {
                "StateMachineName": f"aios-dev-{spec.name}",
                "StateMachineType": spec.type,
                "DefinitionString": Match.any_value(),
                "DefinitionSubstitutions": Match.object_like(
                    {name: Match.any_value() for name in spec.referenced_substitutions()}
                ),
            },
        )


def test_every_rule_target_has_retries_and_the_dead_letter_queue(synthesized: Synthesized) -> None:
    rules = synthesized.platform.find_resources("AWS::Events::Rule")
    # Workflow triggers, scheduled functions (tests/infrastructure/test_schedules.py) and
    # workflows' failure rules (tests/infrastructure/test_failure_rule.py).
    assert len(rules) == sum(1 for w in PLATFORM.workflows if w.trigger) + sum(
        1 for f in PLATFORM.functions if f.schedule
    ) + sum(1 for w in PLATFORM.workflows if w.on_failure)
    queues = synthesized.platform.find_resources("AWS::SQS::Queue")
    assert len(queues) == 1
    dlq_arn = {"Fn::GetAtt": [next(iter(queues)), "Arn"]}
    for rule in rules.values():
        for target in rule["Properties"]["Targets"]:
            assert target["DeadLetterConfig"] == {"Arn": dlq_arn}
            assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1


def test_rule_patterns_are_the_descriptions(synthesized: Synthesized) -> None:
    for spec in PLATFORM.workflows:
        if spec.trigger:
            synthesized.platform.has_resource_properties(
                "AWS::Events::Rule",
                {
                    "Name": f"aios-dev-{spec.name}-trigger",
                    "EventPattern": json.loads(json.dumps(spec.trigger.event_pattern)),
                },
            )


def test_bus_archive_and_dead_letter_queue_are_encrypted(synthesized: Synthesized) -> None:
    synthesized.platform.has_resource_properties(
        "AWS::Events::EventBus", {"Name": "aios-dev-aios", "KmsKeyIdentifier": Match.any_value()}
    )
    synthesized.platform.has_resource_properties(
        "AWS::Events::Archive", {"RetentionDays": 365, "KmsKeyIdentifier": Match.any_value()}
    )
    synthesized.platform.has_resource_properties(
        "AWS::SQS::Queue", {"KmsMasterKeyId": Match.any_value(), "MessageRetentionPeriod": 1209600}
    )


def test_http_api_is_throttled_and_access_logged(synthesized: Synthesized) -> None:
    synthesized.platform.has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {
            "StageName": "$default",
            "DefaultRouteSettings": Match.object_like(
                {"ThrottlingRateLimit": 100, "ThrottlingBurstLimit": 200}
            ),
            "AccessLogSettings": {
                "DestinationArn": Match.any_value(),
                "Format": Match.string_like_regexp("routeKey"),
            },
        },
    )
    for route in PLATFORM.routes:
        synthesized.platform.has_resource_properties(
            "AWS::ApiGatewayV2::Route", {"RouteKey": f"{route.method} {route.path}"}
        )


def test_webhook_secrets_are_named_as_ingest_reads_them(synthesized: Synthesized) -> None:
    for source in PLATFORM.sources:
        synthesized.platform.has_resource_properties(
            "AWS::SecretsManager::Secret",
            {"Name": f"aios/webhooks/{source.name}", "KmsKeyId": Match.any_value()},
        )


def test_cdk_nag_left_no_unacknowledged_finding(synthesized: Synthesized) -> None:
    report = json.loads((synthesized.outdir / "validation-report.json").read_text())
    violations = [v for plugin in report.get("pluginReports", []) for v in plugin.get("violations", [])]
    assert violations == []


def test_each_function_reads_only_its_own_secrets(synthesized: Synthesized) -> None:
    template = synthesized.templates()["aios-dev-platform"]
    secret_names = {
        logical_id: resource["Properties"]["Name"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::SecretsManager::Secret"
    }
    for function in PLATFORM.functions:
        expected = {f"aios/webhooks/{source}" for source in function.webhook_secrets}
        if function.credentials:
            expected.add(f"aios/connectors/{function.credentials}")
        if function.fingerprint_key:
            expected.add("aios/platform/fingerprint-key")
        role_policies = [
            resource
            for resource in template["Resources"].values()
            if resource["Type"] == "AWS::IAM::Policy"
            and any(
                r["Ref"].startswith(function.name.replace("-", "")) for r in resource["Properties"]["Roles"]
            )
        ]
        readable = {
            secret_names[resource["Ref"]]
            for policy in role_policies
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
            if "secretsmanager:GetSecretValue" in statement["Action"]
            for resource in (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            )
        }
        assert readable == expected, function.name


def test_no_function_may_delete_objects(synthesized: Synthesized) -> None:
    for _, statement in _statements(synthesized.templates()["aios-dev-platform"]):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert not [a for a in actions if a.startswith("s3:Delete")]
