"""State machines from ``statemachines/*.asl.json`` and the rules that start them."""

from __future__ import annotations

import json
from collections.abc import Mapping

import jsii
from aws_cdk import (
    Duration,
)
from aws_cdk import (
    aws_events as events,
)
from aws_cdk import (
    aws_events_targets as targets,
)
from aws_cdk import (
    aws_kms as kms,
)
from aws_cdk import (
    aws_sqs as sqs,
)
from aws_cdk import (
    aws_stepfunctions as sfn,
)
from constructs import Construct, IValidation

from infrastructure.asl_policy import violations
from infrastructure.constructs.log_groups import encrypted_log_group
from infrastructure.nag import acknowledge_grant_wildcards
from infrastructure.platform.model import WorkflowSpec
from infrastructure.settings import DeploymentSettings

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


def event_pattern(pattern: dict[str, object]) -> events.EventPattern:
    unknown = set(pattern) - set(_PATTERN_FIELDS)
    if unknown:
        raise ValueError(f"event pattern has fields EventBridge does not match on: {sorted(unknown)}")
    return events.EventPattern(**{_PATTERN_FIELDS[field]: value for field, value in pattern.items()})


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

    def start_on(
        self, *, bus: events.IEventBus, dead_letter_queue: sqs.IQueue, settings: DeploymentSettings
    ) -> events.Rule | None:
        """The rule that starts this workflow, when the description gives it a trigger."""
        trigger = self.spec.trigger
        if trigger is None:
            return None
        return events.Rule(
            self,
            "Trigger",
            rule_name=settings.name(f"{self.spec.name}-trigger"),
            description=trigger.description,
            event_bus=bus,
            event_pattern=event_pattern(dict(trigger.event_pattern)),
            targets=[
                targets.SfnStateMachine(
                    self.state_machine,
                    dead_letter_queue=dead_letter_queue,
                    retry_attempts=trigger.retry_attempts,
                    max_event_age=Duration.seconds(trigger.max_event_age_seconds),
                )
            ],
        )
