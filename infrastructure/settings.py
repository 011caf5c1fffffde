"""Deployment choices read from CDK context, with the defaults documented in cdk.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from aws_cdk import App, RemovalPolicy
from aws_cdk.aws_logs import RetentionDays
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Stage = Literal["dev", "prod"]
CDK_JSON = Path(__file__).resolve().parents[1] / "cdk.json"

_RETENTIONS: tuple[tuple[int, RetentionDays], ...] = (
    (1, RetentionDays.ONE_DAY),
    (7, RetentionDays.ONE_WEEK),
    (14, RetentionDays.TWO_WEEKS),
    (30, RetentionDays.ONE_MONTH),
    (90, RetentionDays.THREE_MONTHS),
    (180, RetentionDays.SIX_MONTHS),
    (365, RetentionDays.ONE_YEAR),
    (731, RetentionDays.TWO_YEARS),
    (1827, RetentionDays.FIVE_YEARS),
    (3653, RetentionDays.TEN_YEARS),
)


class WorkflowRollout(BaseModel):
    """How a workflow alias shifts to a new state machine version (``DeploymentPreference``:
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-stepfunctions-statemachinealias-deploymentpreference.html).

    CANARY: ``percentage`` first, the rest after ``interval`` minutes; LINEAR: ``percentage``
    more every ``interval`` minutes; ALL_AT_ONCE: everything at once, watched for alarms.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["CANARY", "LINEAR", "ALL_AT_ONCE"]
    percentage: Annotated[int, Field(ge=1, le=99)] | None = None
    interval: Annotated[int, Field(ge=1, le=2100)] | None = None

    @model_validator(mode="after")
    def _shifting_needs_a_step(self) -> WorkflowRollout:
        if self.type != "ALL_AT_ONCE" and (self.percentage is None or self.interval is None):
            raise ValueError(f"a {self.type} rollout needs a percentage and an interval (minutes)")
        return self


class DeploymentSettings(BaseModel):
    """What an operator may choose per deployment (``cdk deploy -c stage=prod ...``)."""

    model_config = ConfigDict(frozen=True)

    # No defaults here: cdk.json's "context" holds them, documented in the README.
    stage: Stage = Field(alias="stage")
    log_retention_days: Annotated[int, Field(ge=1, alias="logRetentionDays")]
    secrets_prefix: Annotated[str, Field(pattern=r"^[a-z0-9-]+$", alias="secretsPrefix")]
    # Unset (the default): the stage's serving default, chosen from the cost table
    # (ModelSpec.stages in infrastructure/platform/models.py, bench/cost.py); applies to every model.
    model_instance_type: Annotated[str | None, Field(pattern=r"^ml\.", alias="modelInstanceType")] = None
    model_instance_count: Annotated[int | None, Field(ge=1, alias="modelInstanceCount")] = None
    api_rate_limit: Annotated[int, Field(ge=1, alias="apiRateLimit")]
    api_burst_limit: Annotated[int, Field(ge=1, alias="apiBurstLimit")]
    # Function name -> reserved concurrency. Empty by default: a new account's concurrency
    # quota can be as low as 10, and Lambda refuses any reservation that leaves fewer than
    # 100 unreserved (README, "Quotas a first deploy needs").
    reserved_concurrency: Annotated[
        dict[str, Annotated[int, Field(ge=1)]], Field(alias="reservedConcurrency")
    ]

    # Stage -> how its workflow aliases roll out a new version (cdk.json ``workflowRollout``).
    workflow_rollouts: Annotated[dict[Stage, WorkflowRollout], Field(alias="workflowRollout")]

    @field_validator("workflow_rollouts", mode="before")
    @classmethod
    def _rollouts_from_cli(cls, value: object) -> object:
        """``-c workflowRollout='{"prod": {...}}'`` arrives as a JSON string."""
        return json.loads(value) if isinstance(value, str) else value

    @property
    def workflow_rollout(self) -> WorkflowRollout:
        """This stage's rollout; a stage cdk.json does not list rolls out all at once."""
        return self.workflow_rollouts.get(self.stage) or WorkflowRollout(type="ALL_AT_ONCE")

    @field_validator("reserved_concurrency", mode="before")
    @classmethod
    def _reserved_concurrency_from_cli(cls, value: object) -> object:
        """``-c reservedConcurrency='{"webhook-ingest": 50}'`` arrives as a JSON string."""
        if value is None or value == "":
            return {}
        return json.loads(value) if isinstance(value, str) else value

    @classmethod
    def from_app(cls, app: App) -> DeploymentSettings:
        values = {}
        for field in cls.model_fields.values():
            assert field.alias is not None
            values[field.alias] = app.node.try_get_context(field.alias)
        return cls.model_validate(values)

    @property
    def is_production(self) -> bool:
        return self.stage == "prod"

    @property
    def removal_policy(self) -> RemovalPolicy:
        """Production keeps its data when a stack is deleted or a resource replaced; dev
        stacks clean up.

        ``RETAIN_ON_UPDATE_OR_DELETE`` (``DeletionPolicy: RetainExceptOnCreate``), not
        ``RETAIN``: when a first deploy fails and rolls back, CloudFormation deletes what it
        just created instead of leaving fixed-name tables, buckets and secrets behind that
        the next deploy would collide with (README, "Deploying").
        """
        return RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE if self.is_production else RemovalPolicy.DESTROY

    @property
    def log_retention(self) -> RetentionDays:
        """The nearest CloudWatch retention at or above the requested number of days."""
        return next(
            (member for days, member in _RETENTIONS if days >= self.log_retention_days), _RETENTIONS[-1][1]
        )

    def name(self, part: str) -> str:
        """Physical names are prefixed with the stage so dev and prod share an account."""
        return f"aios-{self.stage}-{part}"

    def bucket_name(self, part: str, *, account: str, region: str) -> str:
        """Bucket names are global: the account and region make them unique and predictable."""
        return f"{self.name(part)}-{account}-{region}"


def cdk_json_context() -> dict[str, object]:
    """cdk.json's context: the documented defaults and feature flags. The CDK CLI passes it
    to the app; ``build_app`` reads it too, so a direct ``python -m`` synth is the same."""
    context: dict[str, object] = json.loads(CDK_JSON.read_text())["context"]
    return context
