"""Dashboards and SLO alarms, generated from the platform description.

Built with cdk-monitoring-constructs (cdklabs): its facade names alarms consistently, routes
them to one SNS action, draws the alarm and detail dashboards, and builds the composite
alarm from the alarms it created; its Lambda, SQS and HTTP API monitorings are used as they
are. Our own signals (Powertools metrics in namespace ``aios``, metrics derived from the
functions' JSON logs, Step Functions p50/p95) are custom metric groups of the same facade.

Everything iterates the description: a new workflow, function, connector or model gets its
widgets and alarms without an edit here. Signals the code does not emit yet are listed in
``MISSING_SIGNALS``; alarms treat missing data as not breaching.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

import cdk_monitoring_constructs as monitoring
from aws_cdk import Duration, Stack
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from aios.approvals import gauge
from aios.config import METRICS_NAMESPACE, variable
from aios.connectors.breaker import BreakerPolicy
from infrastructure.constructs.model_serving import ServingOptions
from infrastructure.platform.spec import FunctionSpec, Platform, WorkflowSpec
from infrastructure.settings import DeploymentSettings

if TYPE_CHECKING:
    from infrastructure.stacks.platform import PlatformStack

#: Every SLO alarm carries this disambiguator; the composite "platform unhealthy" ORs them.
CRITICAL = "Critical"
#: CDK context key of the alarm topic's subscriptions (README, "Alarms").
SUBSCRIPTIONS_CONTEXT = "alarmSubscriptions"
#: The SageMaker variant every model endpoint serves (constructs/model_serving.py).
MODEL_VARIANT = "AllTraffic"
_LADDER_ENV = (
    variable("approval_reminder_seconds"),
    variable("approval_escalation_seconds"),
    variable("approval_expiry_seconds"),
)
#: Signals the dashboard shows or alarms on that no code emits yet (metric names proposed).
MISSING_SIGNALS: dict[str, str] = {}


class AlarmSubscription(BaseModel):
    """One endpoint of the alarm topic, from CDK context ``alarmSubscriptions``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    protocol: Literal["email", "https", "sms"]
    endpoint: Annotated[str, Field(min_length=3, max_length=2048)]


_SUBSCRIPTIONS = TypeAdapter(tuple[AlarmSubscription, ...])


def alarm_arn_pattern(stack: Stack, settings: DeploymentSettings) -> str:
    """Every alarm of the deployment: names start ``aios-<stage>-`` (SLOs and the composite)."""
    return f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:{settings.name('')}*"


def subscriptions_from_context(scope: Construct) -> tuple[AlarmSubscription, ...]:
    raw = scope.node.try_get_context(SUBSCRIPTIONS_CONTEXT) or []
    # ``cdk deploy -c alarmSubscriptions=[...]`` passes the JSON as a string.
    return _SUBSCRIPTIONS.validate_python(json.loads(raw) if isinstance(raw, str) else raw)


@dataclass(frozen=True)
class SloThresholds:
    """Alarm thresholds, derived from the description where it says enough."""

    #: Failed, timed-out or aborted executions per started one, in percent over 5 minutes.
    workflow_failure_percent: float = 5.0
    #: 5xx answers of the HTTP API per request, in percent over 5 minutes.
    ingest_5xx_percent: float = 1.0
    #: Approval ladder (request -> reminder -> escalation -> expiry), seconds in total.
    approval_ladder_seconds: int = 0
    #: Open breaker: consecutive minutes with a (re-)opening before the alarm fires.
    breaker_open_minutes: int = 2
    breaker_cooldown_seconds: float = 30.0
    model_latency_p99_ms: int = 2000

    @classmethod
    def derive(cls, platform: Platform, *, model_latency_p99_ms: int) -> SloThresholds:
        policy = BreakerPolicy()
        # A breaker re-opens after each failed probe (cooldown, then one probe); opening in
        # consecutive minutes beyond one cooldown + probe means the target has not recovered.
        minutes = math.ceil((policy.cooldown_seconds + policy.probe_timeout_seconds) / 60) + 1
        return cls(
            approval_ladder_seconds=approval_ladder_seconds(platform),
            breaker_open_minutes=minutes,
            breaker_cooldown_seconds=policy.cooldown_seconds,
            model_latency_p99_ms=model_latency_p99_ms,
        )


def approval_ladder_seconds(platform: Platform) -> int:
    """The whole ladder: each stage's wait (``TimeoutSecondsPath`` in the ASL reads the
    policy's ``ladder``, which these variables set) one after the other."""
    totals = [
        sum(int(function.environment[name]) for name in _LADDER_ENV)
        for function in platform.functions
        if all(name in function.environment for name in _LADDER_ENV)
    ]
    return max(totals, default=0)


def connector_functions(platform: Platform) -> list[FunctionSpec]:
    """Functions of the connector catalog (``functions/connectors/<name>``)."""
    return [f for f in platform.functions if f.code.startswith("connectors/")]


def breaker_functions(platform: Platform) -> list[FunctionSpec]:
    """Functions that run a circuit breaker (they write the circuit table): every connector,
    and the functions that call a connector or the model in-process."""
    return [f for f in platform.functions if "circuit" in f.tables]


def models(platform: Platform) -> list[str]:
    return sorted({f.model for f in platform.functions if f.model})


@dataclass(frozen=True)
class MonitoredFunction:
    spec: FunctionSpec
    function: lambda_.IFunction
    log_group: logs.ILogGroup


@dataclass(frozen=True)
class MonitoredWorkflow:
    spec: WorkflowSpec
    state_machine: sfn.IStateMachine


class PlatformMonitoring(Construct):
    """The alarm topic, the dashboards and every SLO alarm of one deployment."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        platform: Platform,
        functions: Sequence[MonitoredFunction],
        workflows: Sequence[MonitoredWorkflow],
        dead_letter_queue: sqs.IQueue,
        bus_name: str,
        api: apigw.IHttpApi,
        api_access_logs: logs.ILogGroup,
        key: kms.IKey,
        settings: DeploymentSettings,
        thresholds: SloThresholds,
    ) -> None:
        super().__init__(scope, construct_id)
        self.platform = platform
        self.settings = settings
        self.thresholds = thresholds
        self.log_namespace = f"aios/{settings.stage}"
        # Encrypted with the platform key, whose policy lets CloudWatch use it to publish
        # (PlatformKey; https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html
        # #compatibility-with-aws-services); publishers must use TLS (cdk-nag SNS3).
        self.topic = sns.Topic(
            self,
            "AlarmTopic",
            topic_name=settings.name("alarms"),
            display_name=f"aios {settings.stage} alarms",
            master_key=key,
            enforce_ssl=True,
        )
        # enforce_ssl writes a topic policy, which replaces SNS's default one: CloudWatch's
        # alarms of this deployment need their own Allow, scoped against the confused deputy
        # (https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html).
        stack = Stack.of(self)
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsOfThisDeployment",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": alarm_arn_pattern(stack, settings)},
                },
            )
        )
        for subscription in subscriptions_from_context(self):
            self.topic.add_subscription(_subscription(subscription))
        self.facade = monitoring.MonitoringFacade(
            self,
            "Facade",
            alarm_factory_defaults=monitoring.AlarmFactoryDefaults(
                alarm_name_prefix=settings.name("slo"),
                actions_enabled=True,
                action=monitoring.SnsAlarmActionStrategy(on_alarm_topic=self.topic),
                datapoints_to_alarm=1,
                evaluation_periods=1,
            ),
            metric_factory_defaults=monitoring.MetricFactoryDefaults(
                namespace=METRICS_NAMESPACE, period=Duration.minutes(5)
            ),
            dashboard_factory=monitoring.DefaultDashboardFactory(
                self,
                "Dashboards",
                dashboard_name_prefix=settings.name("platform"),
                create_dashboard=True,
                create_alarm_dashboard=True,
                create_summary_dashboard=False,
            ),
        )
        self._business()
        for workflow in workflows:
            self._workflow(workflow)
        for function in functions:
            self._function(function)
        self._bus(dead_letter_queue, workflows=workflows, bus_name=bus_name)
        self._ingest(api, api_access_logs)
        self._approvals()
        for model in models(platform):
            self._model(model, callers=[f for f in functions if f.spec.model == model])
        self.unhealthy = self.facade.create_composite_alarm_using_disambiguator(
            alarm_disambiguator=CRITICAL,
            disambiguator=CRITICAL,
            alarm_name_override=settings.name("platform-unhealthy"),
            alarm_description=(
                "Platform unhealthy: at least one SLO alarm of this deployment is in ALARM "
                "(dead letters, workflow failures, ingest 5xx, stuck approvals, open breakers, "
                "model latency, intake failures). Look at the alarm dashboard for which."
            ),
        )

    # -- helpers ---------------------------------------------------------------------------
    def _metric(
        self,
        name: str,
        dimensions: Mapping[str, str] | None = None,
        *,
        namespace: str = METRICS_NAMESPACE,
        statistic: str = "Sum",
        label: str | None = None,
        period: Duration | None = None,
    ) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=namespace,
            metric_name=name,
            dimensions_map=dict(dimensions or {}),
            statistic=statistic,
            label=label or name,
            period=period or Duration.minutes(5),
        )

    @staticmethod
    def _search(
        metric_name: str,
        *,
        namespace: str = METRICS_NAMESPACE,
        dimensions: Sequence[str] = ("service",),
        where: str = "",
        statistic: str = "Sum",
        label: str,
    ) -> cloudwatch.MathExpression:
        """One line per dimension value (by default per emitting function, Powertools'
        ``service``): no list of emitters to keep in step with the code."""
        schema = ",".join([f'"{namespace}"', *dimensions])
        query = f'{{{schema}}} MetricName="{metric_name}"' + (f" {where}" if where else "")
        return cloudwatch.MathExpression(
            expression=f"SEARCH('{query}', '{statistic}', 300)",
            using_metrics={},
            label=label,
            period=Duration.minutes(5),
        )

    @staticmethod
    def _threshold(
        threshold: float,
        description: str,
        *,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluation_periods: int = 1,
        datapoints_to_alarm: int = 1,
        period: Duration | None = None,
        name: str | None = None,
    ) -> dict[str, monitoring.CustomThreshold]:
        return {
            CRITICAL: monitoring.CustomThreshold(
                threshold=threshold,
                comparison_operator=comparison,
                alarm_description_override=description,
                evaluation_periods=evaluation_periods,
                datapoints_to_alarm=datapoints_to_alarm,
                treat_missing_data_override=cloudwatch.TreatMissingData.NOT_BREACHING,
                period=period,
                alarm_name_override=name,
            )
        }

    def _log_metric(
        self,
        log_group: logs.ILogGroup,
        construct_id: str,
        *,
        metric_name: str,
        pattern: logs.IFilterPattern,
        dimensions: Mapping[str, str] | None = None,
    ) -> None:
        logs.MetricFilter(
            self,
            construct_id,
            log_group=log_group,
            filter_pattern=pattern,
            metric_namespace=self.log_namespace,
            metric_name=metric_name,
            metric_value="1",
            dimensions=dict(dimensions) if dimensions else None,
        )

    # -- per part of the description -------------------------------------------------------
    def _workflow(self, workflow: MonitoredWorkflow) -> None:
        spec = workflow.spec
        dimensions = {"StateMachineArn": workflow.state_machine.state_machine_arn}

        def states(name: str, statistic: str = "Sum", label: str | None = None) -> cloudwatch.Metric:
            return self._metric(
                name, dimensions, namespace="AWS/States", statistic=statistic, label=label or name
            )

        failure_rate = cloudwatch.MathExpression(
            expression="100 * (FILL(failed, 0) + FILL(timedout, 0) + FILL(aborted, 0)) / FILL(started, 1)",
            using_metrics={
                "failed": states("ExecutionsFailed"),
                "timedout": states("ExecutionsTimedOut"),
                "aborted": states("ExecutionsAborted"),
                "started": states("ExecutionsStarted"),
            },
            label="failed, timed out or aborted (% of started)",
            period=Duration.minutes(5),
        )
        rate_alarm = monitoring.CustomMetricWithAlarm(
            metric=failure_rate,
            alarm_friendly_name=f"{spec.name}-failure-rate",
            add_alarm=self._threshold(
                self.thresholds.workflow_failure_percent,
                f"Workflow {spec.name} failure rate: more than {self.thresholds.workflow_failure_percent:g}% "
                "of its executions failed, timed out or were aborted in 5 minutes. Items are not "
                f"being processed; see `aios executions list --workflow {spec.name}` and the "
                "failing state's error.",
                name=self.settings.name(f"slo-{spec.name}-failure-rate"),
            ),
        )
        groups = [
            monitoring.CustomMetricGroup(
                title=f"{spec.name}: executions",
                metrics=[
                    states("ExecutionsStarted", label="started"),
                    states("ExecutionsSucceeded", label="succeeded"),
                    states("ExecutionsFailed", label="failed"),
                    states("ExecutionsTimedOut", label="timed out"),
                ],
            ),
            monitoring.CustomMetricGroup(
                title=f"{spec.name}: duration",
                metrics=[
                    states("ExecutionTime", "p50", label="p50 (ms)"),
                    states("ExecutionTime", "p95", label="p95 (ms)"),
                ],
            ),
            monitoring.CustomMetricGroup(title=f"{spec.name}: failure rate", metrics=[rate_alarm]),
        ]
        if spec.type == "EXPRESS":
            intake_failures = cloudwatch.MathExpression(
                expression="FILL(failed, 0) + FILL(timedout, 0)",
                using_metrics={
                    "failed": states("ExecutionsFailed"),
                    "timedout": states("ExecutionsTimedOut"),
                },
                label="failed or timed out",
                period=Duration.minutes(5),
            )
            groups.append(
                monitoring.CustomMetricGroup(
                    title=f"{spec.name}: failures (Express)",
                    metrics=[
                        monitoring.CustomMetricWithAlarm(
                            metric=intake_failures,
                            alarm_friendly_name=f"{spec.name}-express-failures",
                            add_alarm=self._threshold(
                                0,
                                f"Express workflow {spec.name} failed or timed out. Express executions "
                                "keep no history on AWS and are not retried once started: the item is "
                                "only in the bus archive and the workflow's log group. Replay it from "
                                "the archive after a fix.",
                                name=self.settings.name(f"slo-{spec.name}-express-failures"),
                            ),
                        )
                    ],
                )
            )
        self.facade.monitor_custom(
            alarm_friendly_name=f"workflow-{spec.name}",
            human_readable_name=f"Workflow {spec.name} ({spec.type.lower()})",
            metric_groups=groups,
        )

    def _function(self, function: MonitoredFunction) -> None:
        spec = function.spec
        self.facade.monitor_lambda_function(
            lambda_function=function.function,
            alarm_friendly_name=f"function-{spec.name}",
            human_readable_name=f"Function {spec.name}",
        )
        self._log_metric(
            function.log_group,
            f"{spec.name}-cold-starts",
            metric_name=f"ColdStarts-{spec.name}",
            # Lambda's REPORT line carries "Init Duration" only for a cold start; with SnapStart
            # a new environment's REPORT carries "Restore Duration" instead
            # (https://docs.aws.amazon.com/lambda/latest/dg/snapstart-monitoring.html).
            pattern=logs.FilterPattern.any_term_group(
                ["REPORT", "Init Duration"], ["REPORT", "Restore Duration"]
            ),
        )
        groups = [
            monitoring.CustomMetricGroup(
                title=f"{spec.name}: cold starts",
                metrics=[
                    self._metric(f"ColdStarts-{spec.name}", namespace=self.log_namespace, label="cold starts")
                ],
            )
        ]
        if spec in breaker_functions(self.platform):
            groups.extend(self._breaker(function))
        self.facade.monitor_custom(
            alarm_friendly_name=f"function-{spec.name}-signals",
            human_readable_name=f"Function {spec.name}: cold starts, connectors, breaker",
            metric_groups=groups,
        )

    def _breaker(self, function: MonitoredFunction) -> list[monitoring.CustomMetricGroup]:
        """Breaker transitions and connector errors by error name, from the function's JSON
        logs (aios.connectors.kit and .breaker log them; no metric is emitted for them)."""
        spec = function.spec
        opened, closed = f"BreakerOpened-{spec.name}", f"BreakerClosed-{spec.name}"
        self._log_metric(
            function.log_group,
            f"{spec.name}-breaker-opened",
            metric_name=opened,
            pattern=logs.FilterPattern.string_value("$.message", "=", "circuit opened"),
        )
        self._log_metric(
            function.log_group,
            f"{spec.name}-breaker-closed",
            metric_name=closed,
            pattern=logs.FilterPattern.string_value("$.message", "=", "circuit closed: target recovered"),
        )
        self._log_metric(
            function.log_group,
            f"{spec.name}-connector-errors",
            metric_name="ConnectorErrors",
            pattern=logs.FilterPattern.all(
                logs.FilterPattern.exists("$.connector"), logs.FilterPattern.exists("$.error")
            ),
            dimensions={"service": "$.service", "error": "$.error"},
        )
        minute = Duration.minutes(1)
        minutes = self.thresholds.breaker_open_minutes
        breaker_alarm = monitoring.CustomMetricWithAlarm(
            metric=self._metric(opened, namespace=self.log_namespace, label="opened", period=minute),
            alarm_friendly_name=f"{spec.name}-breaker-open",
            add_alarm=self._threshold(
                0,
                f"A circuit breaker of {spec.name} stays open longer than its cooldown "
                f"({self.thresholds.breaker_cooldown_seconds:g} s): it (re-)opened in {minutes} "
                "consecutive minutes, so each probe after the cooldown failed. Its target is down; "
                "calls fail fast with Connector.CircuitOpen.",
                evaluation_periods=minutes,
                datapoints_to_alarm=minutes,
                period=minute,
                name=self.settings.name(f"slo-{spec.name}-breaker-open"),
            ),
        )
        invocations = cloudwatch.Metric(
            namespace="AWS/Lambda",
            metric_name="Invocations",
            dimensions_map={"FunctionName": function.function.function_name},
            statistic="Sum",
            period=Duration.minutes(5),
        )
        return [
            monitoring.CustomMetricGroup(
                title=f"{spec.name}: breaker",
                metrics=[
                    breaker_alarm,
                    self._metric(closed, namespace=self.log_namespace, label="closed", period=minute),
                ],
            ),
            monitoring.CustomMetricGroup(
                title=f"{spec.name}: connector errors by name (% of invocations)",
                metrics=[
                    self._search(
                        "ConnectorErrors",
                        namespace=self.log_namespace,
                        dimensions=("error", "service"),
                        where=f'service="{spec.name}"',
                        label="errors",
                    ),
                    invocations,
                ],
            ),
        ]

    def _bus(
        self, dead_letter_queue: sqs.IQueue, *, workflows: Sequence[MonitoredWorkflow], bus_name: str
    ) -> None:
        self.facade.monitor_sqs_queue(
            queue=dead_letter_queue,
            alarm_friendly_name="dead-letters",
            human_readable_name="Platform dead-letter queue",
            add_queue_max_size_alarm={
                CRITICAL: monitoring.MaxMessageCountThreshold(
                    max_message_count=0,
                    alarm_name_override=self.settings.name("slo-dead-letters-not-empty"),
                    alarm_description_override=(
                        "Dead-letter queue not empty: an event the bus could not deliver to its "
                        "target after every retry, or a failed asynchronous invocation, waits "
                        "there (kept 14 days). Inspect with `aios dlq list`, fix, then "
                        "`aios dlq redrive`."
                    ),
                    treat_missing_data_override=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            },
        )
        rules = [
            (workflow.spec.name, self.settings.name(f"{workflow.spec.name}-trigger"))
            for workflow in workflows
            if workflow.spec.trigger is not None
        ]

        def events_metric(name: str, rule: str, label: str) -> cloudwatch.Metric:
            # Custom bus: metrics carry EventBusName and RuleName
            # (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html).
            return self._metric(
                name, {"EventBusName": bus_name, "RuleName": rule}, namespace="AWS/Events", label=label
            )

        self.facade.monitor_custom(
            alarm_friendly_name="bus",
            human_readable_name=f"Event bus {bus_name}",
            metric_groups=[
                monitoring.CustomMetricGroup(
                    title="rules: failed invocations and dead letters",
                    metrics=[
                        metric
                        for workflow, rule in rules
                        for metric in (
                            events_metric("FailedInvocations", rule, f"{workflow}: failed"),
                            events_metric("InvocationsSentToDlq", rule, f"{workflow}: to DLQ"),
                            events_metric("InvocationsFailedToBeSentToDlq", rule, f"{workflow}: DLQ failed"),
                        )
                    ],
                )
            ],
        )

    def _ingest(self, api: apigw.IHttpApi, access_logs: logs.ILogGroup) -> None:
        self.facade.monitor_api_gateway_v2_http_api(
            api=api, alarm_friendly_name="http-api", human_readable_name="HTTP API"
        )
        self._log_metric(
            access_logs,
            "ingest-503",
            metric_name="HttpApi503",
            pattern=logs.FilterPattern.string_value("$.status", "=", "503"),
            dimensions={"route": "$.routeKey"},
        )
        api_dims = {"ApiId": api.api_id}
        five_xx_rate = cloudwatch.MathExpression(
            expression="100 * FILL(errors, 0) / FILL(requests, 1)",
            using_metrics={
                "errors": self._metric("5xx", api_dims, namespace="AWS/ApiGateway"),
                "requests": self._metric("Count", api_dims, namespace="AWS/ApiGateway"),
            },
            label="5xx (% of requests)",
            period=Duration.minutes(5),
        )
        limit = self.thresholds.ingest_5xx_percent
        self.facade.monitor_custom(
            alarm_friendly_name="ingest",
            human_readable_name="Webhook ingest",
            metric_groups=[
                monitoring.CustomMetricGroup(
                    title="webhooks accepted and rejected",
                    metrics=[
                        self._search("WebhookAccepted", label="accepted"),
                        self._search("WebhookDuplicate", label="duplicates"),
                        self._search("WebhookRejected", label="rejected"),
                    ],
                ),
                monitoring.CustomMetricGroup(
                    title="rejected by reason",
                    metrics=[
                        self._search("WebhookRejectedByReason", dimensions=("reason",), label="rejected")
                    ],
                ),
                monitoring.CustomMetricGroup(
                    title="503 answers by route, and the 5xx rate",
                    metrics=[
                        self._search(
                            "HttpApi503", namespace=self.log_namespace, dimensions=("route",), label="503"
                        ),
                        monitoring.CustomMetricWithAlarm(
                            metric=five_xx_rate,
                            alarm_friendly_name="ingest-5xx-rate",
                            add_alarm=self._threshold(
                                limit,
                                f"Ingest 5xx rate: more than {limit:g}% of HTTP API requests in 5 minutes "
                                "answered 5xx. Providers retry 5xx, but a lasting rate means the bus, "
                                "the idempotency store or a function is failing (503: dependency "
                                "unavailable or throttled).",
                                name=self.settings.name("slo-ingest-5xx-rate"),
                            ),
                        ),
                    ],
                ),
            ],
        )

    def _approvals(self) -> None:
        ladder = self.thresholds.approval_ladder_seconds
        oldest = monitoring.CustomMetricWithAlarm(
            # What the approvals-gauge function emits every minute (aios.approvals.gauge).
            metric=self._metric(
                gauge.OLDEST_AGE_METRIC, gauge.DIMENSIONS, statistic="Maximum", label="oldest pending (s)"
            ),
            alarm_friendly_name="approval-oldest-pending",
            add_alarm=self._threshold(
                ladder,
                f"An approval is pending longer than the whole approval ladder ({ladder} s: request, "
                "reminder, escalation, expiry). The ladder should have expired it: its execution "
                "is stuck or the expiry stage fails. See `aios approvals pending`.",
                name=self.settings.name("slo-approval-beyond-ladder"),
            ),
        )
        self.facade.monitor_custom(
            alarm_friendly_name="approvals",
            human_readable_name="Approvals",
            metric_groups=[
                monitoring.CustomMetricGroup(
                    title="pending and oldest pending",
                    metrics=[
                        self._metric(
                            gauge.PENDING_METRIC, gauge.DIMENSIONS, statistic="Maximum", label="pending"
                        ),
                        oldest,
                    ],
                ),
                monitoring.CustomMetricGroup(
                    title="reminders, escalations, expiries, decisions",
                    metrics=[
                        self._search("ApprovalReminders", label="reminders"),
                        self._search("ApprovalEscalations", label="escalations"),
                        self._search("ApprovalsExpired", label="expired"),
                        self._search("HumanApprovals", label="approved"),
                        self._search("HumanRejections", label="rejected"),
                    ],
                ),
            ],
        )

    def _model(self, model: str, *, callers: Sequence[MonitoredFunction]) -> None:
        endpoint = self.settings.name(model)
        for caller in callers:
            # aios.scoring logs "invoices scored" with the batch's size after each call.
            logs.MetricFilter(
                self,
                f"{caller.spec.name}-rows-scored",
                log_group=caller.log_group,
                filter_pattern=logs.FilterPattern.string_value("$.message", "=", "invoices scored"),
                metric_namespace=self.log_namespace,
                metric_name=f"RowsScored-{model}",
                metric_value="$.invoices",
            )
        dims = {"EndpointName": endpoint, "VariantName": MODEL_VARIANT}

        def sagemaker(name: str, statistic: str = "Sum", label: str | None = None) -> cloudwatch.Metric:
            return self._metric(
                name, dims, namespace="AWS/SageMaker", statistic=statistic, label=label or name
            )

        limit = self.thresholds.model_latency_p99_ms
        latency = monitoring.CustomMetricWithAlarm(
            metric=sagemaker("ModelLatency", "p99", "model latency p99 (µs)").with_(
                period=Duration.minutes(1)
            ),
            alarm_friendly_name=f"{model}-latency-p99",
            add_alarm=self._threshold(
                limit * 1000,
                f"Model {model} p99 latency above {limit} ms in 2 of 3 minutes (ModelLatency is in "
                "microseconds). Scoring slows every invoice; model-invoke may time out and route "
                "invoices to a human.",
                evaluation_periods=3,
                datapoints_to_alarm=2,
                period=Duration.minutes(1),
                name=self.settings.name(f"slo-{model}-latency-p99"),
            ),
        )
        self.facade.monitor_custom(
            alarm_friendly_name=f"model-{model}",
            human_readable_name=f"Model {model} (endpoint {endpoint})",
            metric_groups=[
                monitoring.CustomMetricGroup(
                    title=f"{model}: invocations and errors",
                    metrics=[
                        sagemaker("Invocations", label="invocations"),
                        sagemaker("Invocation4XXErrors", label="4xx"),
                        sagemaker("Invocation5XXErrors", label="5xx"),
                        self._metric(
                            f"RowsScored-{model}", namespace=self.log_namespace, label="rows scored"
                        ),
                    ],
                ),
                monitoring.CustomMetricGroup(title=f"{model}: latency", metrics=[latency]),
            ],
        )

    def _business(self) -> None:
        self.facade.monitor_custom(
            alarm_friendly_name="business",
            human_readable_name="Accounts payable: outcomes",
            metric_groups=[
                monitoring.CustomMetricGroup(
                    title="automation ratio (share of decided invoices without a human)",
                    metrics=[self._search("AutomationRatio", statistic="Average", label="automation ratio")],
                ),
                monitoring.CustomMetricGroup(
                    title="cycle time (s)",
                    metrics=[
                        self._search("CycleTimeSeconds", statistic="p50", label="p50"),
                        self._search("CycleTimeSeconds", statistic="p95", label="p95"),
                    ],
                ),
                monitoring.CustomMetricGroup(
                    title="invoices paid, rejected, compensated",
                    metrics=[
                        self._search("InvoicesPaid", label="paid"),
                        self._search("InvoicesRejected", label="rejected"),
                        self._search("InvoicesExpired", label="expired"),
                        self._search("InvoicesInvalid", label="invalid"),
                        self._search("InvoicesCompensated", label="compensated"),
                        self._search("InvoicesFailed", label="failed"),
                    ],
                ),
            ],
        )

    @property
    def alarms(self) -> list[cloudwatch.AlarmBase]:
        return [alarm.alarm for alarm in self.facade.created_alarms()]

    def workflow_alarms(self, workflow: str) -> list[cloudwatch.AlarmBase]:
        """The SLO alarms of one workflow (named ``slo-<workflow>-...``): what a rollout of its
        alias rolls back on (constructs/workflows.py ``Workflow.roll_back_on``)."""
        prefix = self.settings.name(f"slo-{workflow}-")
        return [a.alarm for a in self.facade.created_alarms() if a.alarm_name.startswith(prefix)]


def monitor_platform_stack(stack: PlatformStack) -> PlatformMonitoring:
    """The platform stack's monitoring: its functions, workflows, bus, DLQ and HTTP API."""
    access_logs = stack.api.node.find_child("AccessLogs")
    assert isinstance(access_logs, logs.LogGroup)
    return PlatformMonitoring(
        stack,
        "Monitoring",
        platform=stack.platform,
        functions=[
            MonitoredFunction(spec=f.spec, function=f.function, log_group=f.function.log_group)
            for f in stack.functions.values()
        ],
        workflows=[
            MonitoredWorkflow(spec=w.spec, state_machine=w.state_machine) for w in stack.workflows.values()
        ],
        dead_letter_queue=stack.bus.dead_letter_queue,
        bus_name=stack.bus.bus.event_bus_name,
        api=stack.api.api,
        api_access_logs=access_logs,
        key=stack.data.key,
        settings=stack.settings,
        # The model's latency SLO is the one its blue/green rollback alarm uses.
        thresholds=SloThresholds.derive(
            stack.platform, model_latency_p99_ms=ServingOptions.from_scope(stack).latency_p99_ms
        ),
    )


def _subscription(subscription: AlarmSubscription) -> sns.ITopicSubscription:
    if subscription.protocol == "email":
        return subscriptions.EmailSubscription(subscription.endpoint)
    if subscription.protocol == "sms":
        return subscriptions.SmsSubscription(subscription.endpoint)
    return subscriptions.UrlSubscription(subscription.endpoint, protocol=sns.SubscriptionProtocol.HTTPS)
