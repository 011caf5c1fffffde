"""Dashboards and SLO alarms: derived from the platform description, not listed.

The data and platform stacks are built once for the module (cdk-nag AwsSolutions on, so an
unacknowledged finding fails the fixture), with an alarm subscription in context. A second,
smaller build adds a workflow and a function to the description and finds their widgets and
alarms without any edit to the monitoring code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks

from aios.config import variable
from aios.connectors.breaker import BreakerPolicy
from infrastructure.constructs.model_serving import ServingOptions
from infrastructure.constructs.monitoring import (
    SUBSCRIPTIONS_CONTEXT,
    approval_ladder_seconds,
    breaker_functions,
    connector_functions,
    models,
    subscriptions_from_context,
)
from infrastructure.platform import PLATFORM, Platform
from infrastructure.platform.default import INTAKE, WEBHOOK_INGEST
from infrastructure.platform.payables import with_approval_ladder
from infrastructure.settings import DeploymentSettings, cdk_json_context
from infrastructure.stacks import platform as platform_stack
from infrastructure.stacks.data import DataStack
from infrastructure.stacks.platform import PlatformStack

EMAIL = "oncall@example.com"


@dataclass(frozen=True)
class Built:
    settings: DeploymentSettings
    platform: Template
    data: Template

    def alarms(self) -> dict[str, dict[str, Any]]:
        """Metric alarms by AlarmName."""
        found = self.platform.find_resources("AWS::CloudWatch::Alarm")
        return {a["Properties"]["AlarmName"]: a["Properties"] for a in found.values()}

    def alarm(self, part: str) -> dict[str, Any]:
        return self.alarms()[self.settings.name(f"slo-{part}")]

    def dashboards(self) -> str:
        """Every dashboard body as one JSON text; CloudFormation tokens read ``TOKEN``."""
        found = self.platform.find_resources("AWS::CloudWatch::Dashboard")
        bodies = []
        for dashboard in found.values():
            body = dashboard["Properties"]["DashboardBody"]
            parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
            bodies.append("".join(part if isinstance(part, str) else "TOKEN" for part in parts))
        return "\n".join(bodies)

    def metric_filters(self) -> list[dict[str, Any]]:
        return [f["Properties"] for f in self.platform.find_resources("AWS::Logs::MetricFilter").values()]


def build(outdir: Path, platform: Platform, *, nag: bool) -> Built:
    with pytest.MonkeyPatch.context() as patch:
        # The served model's version is read from its built artifact; monitoring does not use
        # it, so these builds do not depend on `make model`.
        patch.setattr(platform_stack, "artifact_version", lambda _model: "0123456789ab")
        return _build(outdir, platform, nag=nag)


def _build(outdir: Path, platform: Platform, *, nag: bool) -> Built:
    app = cdk.App(
        outdir=str(outdir),
        context={
            **cdk_json_context(),
            SUBSCRIPTIONS_CONTEXT: [{"protocol": "email", "endpoint": EMAIL}],
        },
    )
    settings = DeploymentSettings.from_app(app)
    data = DataStack(app, settings.name("data"), platform=platform, settings=settings)
    stack = PlatformStack(app, settings.name("platform"), platform=platform, data=data, settings=settings)
    if nag:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()  # raises ValidationFailed on an unacknowledged cdk-nag finding
    return Built(settings=settings, platform=Template.from_stack(stack), data=Template.from_stack(data))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.mktemp("cdk.out"), PLATFORM, nag=True)


def _stats(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """The metric stats an alarm reads: its metric, or the metrics of its expression."""
    if "MetricName" in alarm:
        return [
            {
                "Metric": {k: alarm[k] for k in ("MetricName", "Namespace", "Dimensions") if k in alarm},
                "Period": alarm["Period"],
                "Stat": alarm.get("Statistic", alarm.get("ExtendedStatistic")),
            }
        ]
    return [query["MetricStat"] for query in alarm["Metrics"] if "MetricStat" in query]


def _metrics_of(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    return [stat["Metric"] for stat in _stats(alarm)]


def _dimensions(metric: dict[str, Any]) -> dict[str, Any]:
    return {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}


# -- per part of the description ---------------------------------------------------------------


def test_every_workflow_has_execution_widgets_and_a_failure_rate_alarm(built: Built) -> None:
    dashboards = built.dashboards()
    for workflow in PLATFORM.workflows:
        for title in (f"{workflow.name}: executions", f"{workflow.name}: duration"):
            assert title in dashboards
        alarm = built.alarm(f"{workflow.name}-failure-rate")
        assert alarm["Threshold"] == 5
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert f"Workflow {workflow.name} failure rate" in alarm["AlarmDescription"]
        names = {m["MetricName"] for m in _metrics_of(alarm)}
        assert names == {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted", "ExecutionsStarted"}
    assert '"stat":"p50"' in dashboards
    assert '"stat":"p95"' in dashboards


def test_express_workflows_alarm_on_any_failure(built: Built) -> None:
    express = [w for w in PLATFORM.workflows if w.type == "EXPRESS"]
    assert express, "the default platform has an Express intake"
    for workflow in express:
        alarm = built.alarm(f"{workflow.name}-express-failures")
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
        assert "not retried" in alarm["AlarmDescription"]
    for workflow in PLATFORM.workflows:
        if workflow.type == "STANDARD":
            assert built.settings.name(f"slo-{workflow.name}-express-failures") not in built.alarms()


def test_every_function_has_errors_throttles_duration_and_cold_starts(built: Built) -> None:
    dashboards = built.dashboards()
    filters = built.metric_filters()
    cold_start_metrics = {
        t["MetricName"]
        for f in filters
        for t in f["MetricTransformations"]
        if "Init Duration" in f["FilterPattern"]
    }
    for function in PLATFORM.functions:
        assert f"Function {function.name}" in dashboards
        assert f"ColdStarts-{function.name}" in cold_start_metrics
    # cdk-monitoring-constructs' Lambda monitoring draws these from AWS/Lambda
    for metric in ("Errors", "Throttles", "Duration", "Invocations"):
        assert f'"{metric}"' in dashboards


def test_every_connector_has_breaker_and_error_by_name_widgets_and_an_open_breaker_alarm(
    built: Built,
) -> None:
    connectors = connector_functions(PLATFORM)
    assert connectors and set(map(id, connectors)) <= set(map(id, breaker_functions(PLATFORM)))
    dashboards = built.dashboards()
    policy = BreakerPolicy()
    minutes = -(-int(policy.cooldown_seconds + policy.probe_timeout_seconds) // 60) + 1
    for function in breaker_functions(PLATFORM):
        assert f"{function.name}: breaker" in dashboards
        assert f"{function.name}: connector errors by name" in dashboards
        alarm = built.alarm(f"{function.name}-breaker-open")
        [stat] = _stats(alarm)
        assert stat["Metric"]["MetricName"] == f"BreakerOpened-{function.name}"
        assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"], stat["Period"]) == (
            minutes,
            minutes,
            60,
        )
        assert f"longer than its cooldown ({policy.cooldown_seconds:g} s)" in alarm["AlarmDescription"]
    by_name = [
        t
        for f in built.metric_filters()
        for t in f["MetricTransformations"]
        if t["MetricName"] == "ConnectorErrors"
    ]
    assert len(by_name) == len(breaker_functions(PLATFORM))
    for transformation in by_name:
        assert {d["Key"]: d["Value"] for d in transformation["Dimensions"]} == {
            "service": "$.service",
            "error": "$.error",
        }


def test_every_model_has_invocation_widgets_and_a_p99_latency_alarm(built: Built) -> None:
    assert models(PLATFORM)
    dashboards = built.dashboards()
    limit_ms = ServingOptions().latency_p99_ms
    for model in models(PLATFORM):
        for metric in ("Invocations", "Invocation4XXErrors", "Invocation5XXErrors", "ModelLatency"):
            assert metric in dashboards
        assert f"RowsScored-{model}" in dashboards
        callers = {f.name for f in PLATFORM.functions if f.model == model}
        rows_scored = [
            f
            for f in built.metric_filters()
            if f["MetricTransformations"][0]["MetricName"] == f"RowsScored-{model}"
        ]
        assert len(rows_scored) == len(callers)
        assert rows_scored[0]["MetricTransformations"][0]["MetricValue"] == "$.invoices"
        alarm = built.alarm(f"{model}-latency-p99")
        [stat] = _stats(alarm)
        assert (stat["Metric"]["MetricName"], stat["Stat"], stat["Period"]) == ("ModelLatency", "p99", 60)
        assert alarm["Threshold"] == limit_ms * 1000  # ModelLatency is in microseconds
        assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (3, 2)
        assert _dimensions(stat["Metric"]) == {
            "EndpointName": built.settings.name(model),
            "VariantName": "AllTraffic",
        }


# -- platform-wide SLOs ------------------------------------------------------------------------


def test_dead_letter_queue_not_empty_alarms(built: Built) -> None:
    alarm = built.alarm("dead-letters-not-empty")
    [metric] = _metrics_of(alarm)
    assert (metric["MetricName"], alarm["Threshold"]) == ("ApproximateNumberOfMessagesVisible", 0)
    assert "DeadLetterQueue" in json.dumps(_dimensions(metric)["QueueName"])
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert "Dead-letter queue not empty" in alarm["AlarmDescription"]
    dashboards = built.dashboards()
    assert "ApproximateAgeOfOldestMessage" in dashboards
    for workflow in PLATFORM.workflows:
        if workflow.trigger is not None:
            assert f"{workflow.name}: failed" in dashboards
    assert "FailedInvocations" in dashboards


def test_ingest_5xx_rate_alarm_and_widgets(built: Built) -> None:
    alarm = built.alarm("ingest-5xx-rate")
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanThreshold")
    assert {m["MetricName"] for m in _metrics_of(alarm)} == {"5xx", "Count"}
    dashboards = built.dashboards()
    for metric in ("WebhookAccepted", "WebhookRejected", "WebhookRejectedByReason", "HttpApi503"):
        assert metric in dashboards
    [status_filter] = [
        f for f in built.metric_filters() if f["MetricTransformations"][0]["MetricName"] == "HttpApi503"
    ]
    assert "503" in status_filter["FilterPattern"]


def test_oldest_pending_approval_alarm_uses_the_whole_ladder(built: Built) -> None:
    ladder = [
        variable("approval_reminder_seconds"),
        variable("approval_escalation_seconds"),
        variable("approval_expiry_seconds"),
    ]
    [policy] = [f for f in PLATFORM.functions if all(name in f.environment for name in ladder)]
    total = sum(int(policy.environment[name]) for name in ladder)
    alarm = built.alarm("approval-beyond-ladder")
    assert alarm["Threshold"] == total
    assert f"({total} s:" in alarm["AlarmDescription"]
    for metric in ("ApprovalEscalations", "ApprovalsExpired", "ApprovalsPending"):
        assert metric in built.dashboards()


def test_the_ladder_threshold_follows_the_description() -> None:
    shorter = with_approval_ladder(PLATFORM, reminder=3, escalation=4, expiry=5)
    assert approval_ladder_seconds(shorter) == 12
    assert approval_ladder_seconds(PLATFORM) > 12


def test_business_widgets(built: Built) -> None:
    dashboards = built.dashboards()
    for metric in (
        "AutomationRatio",
        "CycleTimeSeconds",
        "InvoicesPaid",
        "InvoicesRejected",
        "InvoicesCompensated",
    ):
        assert metric in dashboards


def test_composite_platform_unhealthy_alarm_ors_every_slo_alarm(built: Built) -> None:
    [composite] = built.platform.find_resources("AWS::CloudWatch::CompositeAlarm").values()
    properties = composite["Properties"]
    assert properties["AlarmName"] == built.settings.name("platform-unhealthy")
    assert "Platform unhealthy" in properties["AlarmDescription"]
    rule = json.dumps(properties["AlarmRule"])
    slo = [name for name in built.alarms() if name.startswith(built.settings.name("slo-"))]
    assert len(slo) >= 6
    assert rule.count("ALARM(") == len(slo)
    assert " OR " in rule


def test_alarms_go_to_an_sns_topic_encrypted_with_the_platform_key(built: Built) -> None:
    built.platform.has_resource_properties(
        "AWS::SNS::Topic",
        {"TopicName": built.settings.name("alarms"), "KmsMasterKeyId": Match.any_value()},
    )
    [topic_id] = built.platform.find_resources("AWS::SNS::Topic")
    [topic] = built.platform.find_resources("AWS::SNS::Topic").values()
    key = json.dumps(topic["Properties"]["KmsMasterKeyId"])
    assert "Encryption" in key  # the data stack's PlatformKey, imported
    built.platform.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": EMAIL, "TopicArn": {"Ref": topic_id}}
    )
    for name, alarm in built.alarms().items():
        if name.startswith(built.settings.name("slo-")):
            assert alarm["AlarmActions"] == [{"Ref": topic_id}], name
    [composite] = built.platform.find_resources("AWS::CloudWatch::CompositeAlarm").values()
    assert composite["Properties"]["AlarmActions"] == [{"Ref": topic_id}]


def test_the_topic_lets_this_deployments_alarms_publish_over_tls_only(built: Built) -> None:
    # https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html
    [policy] = built.platform.find_resources("AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    [allow] = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert "aws:SourceAccount" in allow["Condition"]["StringEquals"]
    pattern = json.dumps(allow["Condition"]["ArnLike"]["aws:SourceArn"])
    assert f":alarm:{built.settings.name('')}*" in pattern
    for name in built.alarms():  # the pattern covers every alarm the topic receives
        assert name.startswith(built.settings.name(""))
    [deny] = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_key_lets_cloudwatch_alarms_publish_to_the_encrypted_topic(built: Built) -> None:
    # https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services
    [key] = built.data.find_resources("AWS::KMS::Key").values()
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    cloudwatch = [
        s for s in statements if s.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com"
    ]
    actions = {
        a for s in cloudwatch for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= actions
    # ... for this account's alarms of this deployment only (confused deputy)
    [statement] = cloudwatch
    assert "aws:SourceAccount" in statement["Condition"]["StringEquals"]
    pattern = json.dumps(statement["Condition"]["ArnLike"]["aws:SourceArn"])
    assert f":alarm:{built.settings.name('')}*" in pattern


# -- derived, not listed -----------------------------------------------------------------------


def test_a_new_workflow_and_function_get_widgets_and_alarms(tmp_path: Path) -> None:
    # Given a description with one more function (a connector) and one more Express workflow
    probe = WEBHOOK_INGEST.model_copy(
        update={"name": "probe-connector", "code": "connectors/erp", "tables": {"circuit": "read_write"}}
    )
    extra = INTAKE.model_copy(update={"name": "intake-probe", "trigger": None})
    platform = PLATFORM.model_copy(
        update={"functions": (*PLATFORM.functions, probe), "workflows": (*PLATFORM.workflows, extra)}
    )
    # When it is rendered
    built = build(tmp_path, platform, nag=False)
    # Then both have their widgets and alarms, with no edit to the monitoring construct
    dashboards = built.dashboards()
    assert "Function probe-connector" in dashboards
    assert "intake-probe: executions" in dashboards
    assert built.alarm("intake-probe-failure-rate")
    assert built.alarm("intake-probe-express-failures")
    assert built.alarm("probe-connector-breaker-open")


def test_subscriptions_come_from_context_as_json_or_a_string() -> None:
    subscription = {"protocol": "https", "endpoint": "https://hooks.example.com/aios"}
    as_list = cdk.App(context={SUBSCRIPTIONS_CONTEXT: [subscription]})
    as_string = cdk.App(context={SUBSCRIPTIONS_CONTEXT: json.dumps([subscription])})  # cdk -c key=value
    assert subscriptions_from_context(as_list) == subscriptions_from_context(as_string)
    assert subscriptions_from_context(as_list)[0].protocol == "https"
    with pytest.raises(ValueError, match="protocol"):
        subscriptions_from_context(
            cdk.App(context={SUBSCRIPTIONS_CONTEXT: [{"protocol": "fax", "endpoint": "1"}]})
        )
