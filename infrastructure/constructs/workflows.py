"""State machines from ``statemachines/*.asl.json``, their versions and ``live`` alias, and
the rules that start them (through the alias).

Every deploy that changes a workflow publishes a state machine version
(``AWS::StepFunctions::StateMachineVersion``); the alias ``live``
(``AWS::StepFunctions::StateMachineAlias``) shifts to it by the stage's ``DeploymentPreference``
(cdk.json ``workflowRollout``) and rolls back when one of the workflow's SLO alarms goes
into ALARM. The definition names each function's *version* ARN, so a version of the workflow
calls exactly the code it was deployed with: an execution in flight during a deploy keeps
its definition and its functions (aws-cdk #17515).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import jsii
from aws_cdk import (
    Duration,
    IStableStringProducer,
    Lazy,
    Names,
    RemovalPolicy,
    Stack,
)
from aws_cdk import (
    aws_cloudwatch as cloudwatch,
)
from aws_cdk import (
    aws_events as events,
)
from aws_cdk import (
    aws_events_targets as events_targets,
)
from aws_cdk import (
    aws_iam as iam,
)
from aws_cdk import (
    aws_kms as kms,
)
from aws_cdk import (
    aws_lambda as lambda_,
)
from aws_cdk import (
    aws_sqs as sqs,
)
from aws_cdk import (
    aws_stepfunctions as sfn,
)
from aws_cdk.interfaces import aws_events as aws_events_refs
from constructs import Construct, IValidation

from infrastructure.asl_policy import violations
from infrastructure.constructs.log_groups import encrypted_log_group
from infrastructure.nag import acknowledge_grant_wildcards
from infrastructure.platform.spec import (
    FAILURE_MAX_EVENT_AGE_SECONDS,
    FAILURE_RETRY_ATTEMPTS,
    WorkflowSpec,
)
from infrastructure.settings import DeploymentSettings, WorkflowRollout

#: The alias rules start executions on (and operators shift with ``aios rollout``).
LIVE_ALIAS = "live"
_STATE_MACHINE_TYPES = {"STANDARD": sfn.StateMachineType.STANDARD, "EXPRESS": sfn.StateMachineType.EXPRESS}
#: CloudFormation event-pattern keys and the matching ``EventPattern`` arguments.
_PATTERN_FIELDS = {
    "source": "source",
    "detail-type": "detail_type",
    "detail": "detail",
    "account": "account",
    "region": "region",
    "resources": "resources",
    "id": "id",
    "time": "time",
    "version": "version",
}


def failure_rule_name(spec: WorkflowSpec, settings: DeploymentSettings) -> str:
    """The rule that hands the workflow's unsuccessful executions to its ``on_failure``
    function (on the default bus: its ARN is ``rule/<name>``)."""
    return settings.name(f"{spec.name}-on-failure")


def event_pattern(pattern: dict[str, object]) -> events.EventPattern:
    unknown = set(pattern) - set(_PATTERN_FIELDS)
    if unknown:
        raise ValueError(f"event pattern has fields EventBridge does not match on: {sorted(unknown)}")
    arguments: dict[str, Any] = {_PATTERN_FIELDS[field]: value for field, value in pattern.items()}
    return events.EventPattern(**arguments)


@jsii.implements(IValidation)
class _AslPolicy:
    """Fails synth when the workflow's ASL breaks ``infrastructure/asl_policy.py``."""

    def __init__(self, spec: WorkflowSpec, function_timeouts: Mapping[str, int]) -> None:
        self._spec = spec
        self._function_timeouts = function_timeouts

    def validate(self) -> list[str]:
        definition = json.loads(self._spec.read_definition())
        return [
            f"{self._spec.asl}: {v}"
            for v in violations(definition, function_timeouts=self._function_timeouts)
        ]


@jsii.implements(IStableStringProducer)
class _DefinitionDigest:
    """A digest of the definition as deployed: the ASL and its resolved substitutions (which
    name function *versions*, whose logical ids hash their code and configuration). Read at
    synthesis, once every function is complete."""

    def __init__(
        self, workflow: str, scope: Construct, definition: str, substitutions: Mapping[str, str]
    ) -> None:
        self._workflow = workflow
        self._stack = Stack.of(scope)
        self._definition = definition
        self._substitutions = dict(substitutions)

    def produce(self) -> str:
        resolved = self._stack.resolve(self._substitutions)
        text = self._definition + json.dumps(resolved, sort_keys=True)
        return version_description(self._workflow, hashlib.sha256(text.encode("utf-8")).hexdigest()[:16])


def version_description(workflow: str, digest: str) -> str:
    return f"aios workflow {workflow}, definition {digest}"


def _deployment_preference(
    version: sfn.CfnStateMachineVersion, rollout: WorkflowRollout, *, alarms: Sequence[str]
) -> sfn.CfnStateMachineAlias.DeploymentPreferenceProperty:
    return sfn.CfnStateMachineAlias.DeploymentPreferenceProperty(
        state_machine_version_arn=version.attr_arn,
        type=rollout.type,
        percentage=rollout.percentage,
        interval=rollout.interval,
        alarms=list(alarms) or None,
    )


class Workflow(Construct):
    """One state machine, inline in the template (``DefinitionBody.from_string``) so that
    assertions, cfn-lint and the parity test read the definition itself.

    Logging is ALL to an encrypted log group, without execution data: inputs and outputs
    (which may hold task tokens or personal data) stay in the execution history, behind IAM.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: WorkflowSpec,
        substitutions: dict[str, str],
        key: kms.IKey,
        settings: DeploymentSettings,
        function_timeouts: Mapping[str, int] | None = None,
    ) -> None:
        """``function_timeouts``: each Lambda Task's function (as the ASL names it) and its own
        timeout, from the description (``asl_policy.function_timeouts``), for the policy check."""
        super().__init__(scope, construct_id)
        self.spec = spec
        log_group = encrypted_log_group(
            # The vended-logs prefix keeps CloudWatch's resource policy small (AWS guidance).
            self,
            "Logs",
            key=key,
            settings=settings,
            name=f"/aws/vendedlogs/states/{settings.name(spec.name)}",
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=settings.name(spec.name),
            comment=spec.description,
            state_machine_type=_STATE_MACHINE_TYPES[spec.type],
            definition_body=sfn.DefinitionBody.from_string(spec.read_definition()),
            definition_substitutions=substitutions,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
            tracing_enabled=True,
        )
        acknowledge_grant_wildcards(self, what=f"workflow {spec.name}")
        self.node.add_validation(_AslPolicy(spec, function_timeouts or {}))
        self.version, self.alias = self._version_and_alias(
            spec,
            definition=spec.read_definition(),
            substitutions=substitutions,
            rollout=settings.workflow_rollout,
        )

    def _version_and_alias(
        self,
        spec: WorkflowSpec,
        *,
        definition: str,
        substitutions: Mapping[str, str],
        rollout: WorkflowRollout,
    ) -> tuple[sfn.CfnStateMachineVersion, sfn.CfnStateMachineAlias]:
        """A version per definition change, kept when the next one replaces it (CloudFormation
        replaces the resource when the revision or description changes, and CDK's default
        removal policy for it is DELETE: aws-cdk #27250), and the ``live`` alias over it."""
        resource = self.state_machine.node.default_child
        assert isinstance(resource, sfn.CfnStateMachine)
        version = sfn.CfnStateMachineVersion(
            self,
            "Version",
            state_machine_arn=self.state_machine.state_machine_arn,
            state_machine_revision_id=resource.attr_state_machine_revision_id,
            description=Lazy.string(_DefinitionDigest(spec.name, self, definition, substitutions)),
        )
        version.apply_removal_policy(RemovalPolicy.RETAIN)
        alias = sfn.CfnStateMachineAlias(
            self,
            "Live",
            name=LIVE_ALIAS,
            description=f"aios workflow {spec.name}: what rules start; shifts by the stage's rollout",
            deployment_preference=_deployment_preference(version, rollout, alarms=[]),
        )
        self._rollout = rollout
        return version, alias

    @property
    def alias_arn(self) -> str:
        """``arn:...:stateMachine:<name>:live`` (the alias resource's Ref)."""
        return self.alias.ref

    def roll_back_on(self, alarms: Sequence[cloudwatch.IAlarm]) -> None:
        """The alarms whose ALARM state stops a rollout and returns the alias to the previous
        version. By Ref, so the alias depends on them: CloudWatch treats an alarm that does
        not exist as OK, which would let a bad version through
        (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-stepfunctions-statemachinealias-deploymentpreference.html).

        The SLO alarms read ``AWS/States`` by ``StateMachineArn`` alone, which every execution
        emits, those started through the alias included; Step Functions also emits them by
        ``StateMachineArn`` + ``Alias`` and + ``Version``
        (https://docs.aws.amazon.com/step-functions/latest/dg/procedure-cw-metrics.html), so a
        canary-only alarm is possible, but it would also see traffic of the old version through
        the alias, and whether alias-started executions carry ``Version`` is not documented."""
        if not alarms:
            raise ValueError(f"workflow {self.spec.name}: a rollout needs at least one alarm to roll back on")
        self.alias.deployment_preference = _deployment_preference(
            self.version, self._rollout, alarms=[alarm.alarm_name for alarm in alarms]
        )

    def start_on(
        self, *, bus: events.IEventBus, dead_letter_queue: sqs.IQueue, settings: DeploymentSettings
    ) -> events.Rule | None:
        """The rule that starts this workflow, when the description gives it a trigger.

        Its target is the ``live`` alias, so the alias's routing decides which version a new
        execution runs. The target's role is granted ``states:StartExecution`` on the
        unqualified state machine ARN, which is what Step Functions authorizes a start through
        an alias or version against
        (https://docs.aws.amazon.com/step-functions/latest/dg/auth-version-alias.html), with
        ``states:StateMachineQualifier`` pinning it to the alias: the rule cannot start
        ``$LATEST`` or an arbitrary version.
        """
        trigger = self.spec.trigger
        if trigger is None:
            return None
        rule = events.Rule(
            self,
            "Trigger",
            rule_name=settings.name(f"{self.spec.name}-trigger"),
            description=trigger.description,
            event_bus=bus,
            event_pattern=event_pattern(dict(trigger.event_pattern)),
            targets=[
                _AliasTarget(
                    self,
                    dead_letter_queue=dead_letter_queue,
                    retry_attempts=trigger.retry_attempts,
                    max_event_age=Duration.seconds(trigger.max_event_age_seconds),
                )
            ],
        )
        return rule

    def record_failures_with(
        self,
        function: lambda_.IFunction,
        *,
        pattern: Mapping[str, Any],
        dead_letter_queue: sqs.IQueue,
        settings: DeploymentSettings,
    ) -> events.Rule:
        """The rule on the account's default bus (where Step Functions puts its status change
        events) that hands an unsuccessful execution of this workflow to ``function`` (the
        description's ``on_failure``, its ``live`` alias): retried and dead-lettered as the
        trigger is. CDK's ``LambdaFunction`` target adds the invoke permission for
        events.amazonaws.com with this rule's ARN as ``SourceArn``, and the queue policy
        statement for this rule alone
        (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html)."""
        return events.Rule(
            self,
            "OnFailure",
            rule_name=failure_rule_name(self.spec, settings),
            description=f"Unsuccessful executions of {self.spec.name}: their closing lineage row.",
            event_pattern=event_pattern(dict(pattern)),
            targets=[
                events_targets.LambdaFunction(
                    function,
                    dead_letter_queue=dead_letter_queue,
                    retry_attempts=FAILURE_RETRY_ATTEMPTS,
                    max_event_age=Duration.seconds(FAILURE_MAX_EVENT_AGE_SECONDS),
                )
            ],
        )


@jsii.implements(events.IRuleTarget)
class _AliasTarget:
    """``targets.SfnStateMachine`` for the workflow's alias: the same role, dead-letter queue
    policy and retry policy, but the alias as the target and the grant as Step Functions
    authorizes it (``SfnStateMachine`` would grant on the alias ARN, which is not what a start
    through an alias is authorized against)."""

    def __init__(
        self,
        workflow: Workflow,
        *,
        dead_letter_queue: sqs.IQueue,
        retry_attempts: int,
        max_event_age: Duration,
    ) -> None:
        self._workflow = workflow
        self._dead_letter_queue = dead_letter_queue
        self._retry_attempts = retry_attempts
        self._max_event_age = max_event_age

    def bind(self, rule: aws_events_refs.IRuleRef, id: str | None = None) -> events.RuleTargetConfig:
        assert isinstance(rule, events.Rule), rule  # this module's own rules (start_on)
        workflow = self._workflow
        role = iam.Role(
            workflow,
            "TriggerRole",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
            description=f"aios rule {workflow.spec.name}-trigger: starts the workflow through its alias",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["states:StartExecution"],
                resources=[workflow.state_machine.state_machine_arn],
                conditions={"StringEquals": {"states:StateMachineQualifier": LIVE_ALIAS}},
            )
        )
        # As CDK's targets do for a dead-letter queue: this rule, and no other, may send to it
        # (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html).
        self._dead_letter_queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"AllowEventRule{Names.node_unique_id(rule.node)}",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[self._dead_letter_queue.queue_arn],
                conditions={"ArnEquals": {"aws:SourceArn": rule.rule_arn}},
            )
        )
        return events.RuleTargetConfig(
            arn=workflow.alias_arn,
            role=role,
            dead_letter_config=events.CfnRule.DeadLetterConfigProperty(arn=self._dead_letter_queue.queue_arn),
            retry_policy=events.CfnRule.RetryPolicyProperty(
                maximum_retry_attempts=self._retry_attempts,
                maximum_event_age_in_seconds=int(self._max_event_age.to_seconds()),
            ),
        )
