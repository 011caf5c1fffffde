"""The typed description of the platform: one object that CDK and the local mode both render.

Nothing here knows about CloudFormation or moto. A renderer walks a ``Platform`` and turns
each part into resources; the parity test compares the two renderings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aios.config import EnvVarName, variable
from infrastructure.platform.asl import expand_text

REPO_ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = REPO_ROOT / "functions"
STATEMACHINES_DIR = REPO_ROOT / "statemachines"

Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")]
#: The platform's one dead-letter queue (the bus's, every rule target's, and workflows').
DEAD_LETTERS = "dead-letters"
_SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
#: Step Functions' execution status change events (on the account's default bus), and the
#: statuses a failure rule matches; its target retries as a trigger's does.
FAILURE_EVENT_SOURCE = "aws.states"
FAILURE_EVENT_DETAIL_TYPE = "Step Functions Execution Status Change"
FAILURE_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")
FAILURE_RETRY_ATTEMPTS, FAILURE_MAX_EVENT_AGE_SECONDS = 185, 86400
#: EventBridge schedule expressions: ``rate(value unit)`` (a positive whole number; the unit
#: singular for 1, plural otherwise) or ``cron(six fields)``:
#: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html
SCHEDULE_PATTERN = (
    r"^(rate\((1 (minute|hour|day)|([2-9]|[1-9][0-9]+) (minutes|hours|days))\)"
    r"|cron\(\S+( \S+){5}\))$"
)


def camel(slug: str) -> str:
    """``model-invoke`` -> ``ModelInvoke``: the stem of substitution names and construct ids."""
    return "".join(part.capitalize() for part in slug.split("-"))


class Access(StrEnum):
    READ = "read"
    WRITE = "write"
    READ_WRITE = "read_write"


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KeyAttribute(_Spec):
    name: str
    type: Literal["S", "N"] = "S"


class IndexSpec(_Spec):
    name: Slug
    partition_key: KeyAttribute
    sort_key: KeyAttribute | None = None
    #: What the index copies: ``KEYS_ONLY`` where its readers need the keys alone (the
    #: approvals gauge), so nothing else (a task token) is duplicated into it.
    projection: Literal["ALL", "KEYS_ONLY"] = "ALL"


class TableSpec(_Spec):
    """A DynamoDB table. Its name reaches the functions that touch it through ``env_var``."""

    id: Slug
    description: str
    env_var: EnvVarName
    partition_key: KeyAttribute
    sort_key: KeyAttribute | None = None
    indexes: tuple[IndexSpec, ...] = ()
    ttl_attribute: str | None = None
    #: How long every item is kept: writers stamp ``ttl_attribute`` (epoch seconds) from it.
    retention_days: Annotated[int, Field(ge=1)] | None = None
    #: The only item actions (``dynamodb:...``) a function touching this table is granted,
    #: whatever its access, where the code that uses it makes a known few calls (the circuit
    #: table: Powertools' breaker persistence); ``None``: CDK's ``grant_*_data`` for the access.
    item_actions: tuple[Annotated[str, Field(pattern=r"^dynamodb:[A-Za-z]+$")], ...] | None = None

    @model_validator(mode="after")
    def _retention_has_a_ttl_attribute(self) -> TableSpec:
        if self.retention_days is not None and self.ttl_attribute is None:
            raise ValueError(f"table {self.id} declares a retention but no TTL attribute")
        return self


class BucketSpec(_Spec):
    id: Slug
    description: str
    env_var: EnvVarName


class EventBusSpec(_Spec):
    name: Slug = "aios"
    archive_retention_days: Annotated[int, Field(ge=1)] = 365

    @property
    def archive(self) -> str:
        """The archive's part of its physical name (``aios-<stage>-<bus>-archive``)."""
        return f"{self.name}-archive"

    def archive_pattern(self, account: str) -> dict[str, list[str]]:
        """What the archive keeps: every event this account puts on the bus (the CDK archive
        and the local mode's both read it; ``aios resume`` replays from it)."""
        return {"account": [account]}


WebhookScheme = Literal["stripe", "github", "slack", "standard"]


class WebhookSourceSpec(_Spec):
    """A system allowed to call ``POST /webhooks/{name}``, verified by ``scheme``."""

    name: Slug
    scheme: WebhookScheme
    description: str = ""


#: An importable Python package (``models.invoice_anomaly``).
PackageName = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")]
ModelStage = Literal["dev", "prod"]


def is_gpu_instance(instance_type: str) -> bool:
    """``ml.g5.12xlarge`` -> True: the g and p families carry NVIDIA GPUs."""
    return instance_type.split(".")[1].startswith(("g", "p"))


class StageServingSpec(_Spec):
    """Where one stage's endpoint runs, and why that instance (``bench/cost.py``'s choice)."""

    instance_type: Annotated[str, Field(pattern=r"^ml\.[a-z0-9-]+\.[a-z0-9]+$")]
    instance_count: Annotated[int, Field(ge=1)] = 1
    why: str = ""

    @property
    def is_gpu(self) -> bool:
        return is_gpu_instance(self.instance_type)


class DataCaptureSpec(_Spec):
    """What the endpoint config captures: inputs and outputs of ``percent`` of the requests,
    to the capture bucket under the model's prefix."""

    enabled: bool = True
    percent: Annotated[int, Field(ge=1, le=100)] = 100


class ModelRolloutSpec(_Spec):
    """How a new artifact reaches the endpoint: blue/green, ``canary_instances`` first where
    the fleet has at least twice as many (SageMaker wants the canary at most half the fleet:
    https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green-canary.html),
    all at once otherwise; both bake ``wait_seconds`` and roll back on the endpoint's alarms."""

    canary_instances: Annotated[int, Field(ge=1)] = 1
    wait_seconds: Annotated[int, Field(ge=0, le=3600)] = 600
    termination_wait_seconds: Annotated[int, Field(ge=0, le=3600)] = 300
    max_execution_timeout_seconds: Annotated[int, Field(ge=600, le=14400)] = 3600

    def traffic(self, instance_count: int) -> Literal["CANARY", "ALL_AT_ONCE"]:
        return "CANARY" if instance_count >= 2 * self.canary_instances else "ALL_AT_ONCE"


class ModelSpec(_Spec):
    """A served model: its ML package, where each stage serves it and how it rolls out.

    ``name`` names the endpoint (``aios-<stage>-<name>``), the registry group and the model's
    prefix in the artifact and capture buckets. ``package`` is importable: its ``serving``
    module (no torch) names the built artifacts and the Triton model inside them, its
    ``build`` module makes them (``python -m models``).
    """

    name: Slug
    #: Also the registry group's description (which CloudFormation cannot change in place).
    description: str
    package: PackageName
    #: The serving container: SageMaker's Triton image (constructs/model_serving.py pins it).
    serving: Literal["triton"] = "triton"
    stages: Mapping[ModelStage, StageServingSpec]
    #: "every": the artifact's GPU config (``instance_group { kind: KIND_GPU }`` without a GPU
    #: list) serves on every GPU of a GPU instance; "none": CPU only, GPU instances refused.
    gpus: Literal["every", "none"] = "every"
    capture: DataCaptureSpec = DataCaptureSpec()
    rollout: ModelRolloutSpec = ModelRolloutSpec()

    @model_validator(mode="after")
    def _every_stage_serves_on_what_the_artifact_supports(self) -> ModelSpec:
        if missing := {"dev", "prod"} - set(self.stages):
            raise ValueError(f"model {self.name} has no serving for stages {sorted(missing)}")
        for stage, choice in self.stages.items():
            self.check_instance(choice.instance_type, where=f"stage {stage}")
        return self

    def check_instance(self, instance_type: str, *, where: str) -> None:
        if self.gpus == "none" and is_gpu_instance(instance_type):
            raise ValueError(f"model {self.name} serves on CPU only; {where} asks for {instance_type}")

    @property
    def serving_module(self) -> str:
        return f"{self.package}.serving"


class FunctionSpec(_Spec):
    """A Lambda function: where its code is and what it may touch.

    Access declared here becomes IAM grants in CDK and environment variables in both
    renderings; there is no other place a function's permissions are written.
    """

    name: Slug
    description: str
    code: str  # folder under functions/, e.g. "webhook_ingest" or "connectors/erp"
    handler: str = "handler.handler"
    memory_mb: Annotated[int, Field(ge=128, le=10240)] = 512
    timeout_seconds: Annotated[int, Field(ge=1, le=900)] = 30
    reserved_concurrency: Annotated[int, Field(ge=1)] | None = None
    environment: Mapping[str, str] = Field(default_factory=dict)
    tables: Mapping[str, Access] = Field(default_factory=dict)
    buckets: Mapping[str, Access] = Field(default_factory=dict)
    put_events: bool = False
    #: Webhook sources whose signing secrets the function reads (and verifies).
    webhook_secrets: tuple[Slug, ...] = ()
    #: The connector whose credentials (``{prefix}/connectors/{name}``) the function reads.
    credentials: Slug | None = None
    #: Reads the platform's fingerprint key (``{prefix}/platform/fingerprint-key``) to turn
    #: bank accounts into keyed references (``aios.fingerprints``).
    fingerprint_key: bool = False
    #: Sends mail through SES v2 (``ses:SendEmail``).
    send_email: bool = False
    #: The served model (``Platform.models``) whose endpoint the function invokes: its name
    #: and version in the environment, ``sagemaker:InvokeEndpoint`` on that endpoint alone.
    model: Slug | None = None
    #: Workflows whose callback tasks the function answers (``SendTaskSuccess``/``Failure``).
    answers_workflows: tuple[Slug, ...] = ()
    #: An EventBridge schedule expression (``rate(1 minute)``, ``cron(0 12 * * ? *)``): CDK
    #: renders a rule on it targeting the ``live`` alias; the local mode runs a scheduler
    #: thread (``infrastructure/local/schedules.py``).
    schedule: Annotated[str, Field(pattern=SCHEDULE_PATTERN)] | None = None

    @property
    def code_path(self) -> Path:
        return FUNCTIONS_DIR / self.code

    @property
    def module(self) -> str:
        """The importable module of the handler (``functions.webhook_ingest.handler``)."""
        module_file, _, _ = self.handler.rpartition(".")
        return ".".join(["functions", *Path(self.code).parts, module_file])

    @property
    def handler_attribute(self) -> str:
        return self.handler.rpartition(".")[2]


class TriggerSpec(_Spec):
    """An EventBridge rule on the platform bus that starts a workflow.

    The target retries for up to a day (EventBridge's maximum); what still fails goes to
    the platform's dead-letter queue.
    """

    description: str
    event_pattern: Mapping[str, Any]
    retry_attempts: Annotated[int, Field(ge=0, le=185)] = 185
    max_event_age_seconds: Annotated[int, Field(ge=60, le=86400)] = 86400


class WorkflowSpec(_Spec):
    """A Step Functions state machine written in ``statemachines/<asl>``."""

    name: Slug
    description: str
    asl: str
    type: Literal["STANDARD", "EXPRESS"]
    trigger: TriggerSpec | None = None
    tables: Mapping[str, Access] = Field(default_factory=dict)
    functions: tuple[str, ...] = ()
    put_events: bool = False
    #: Sends what it cannot finish to the platform's dead-letter queue (``sqs:SendMessage``,
    #: SQS service integration); the ASL gets ``${DeadLetterQueueUrl}``.
    dead_letters: bool = False
    #: Literal values substituted into the ASL (delays, limits); each becomes ``${Name}``.
    parameters: Mapping[str, str] = Field(default_factory=dict)
    #: The function that records an execution which ends FAILED, TIMED_OUT or ABORTED (its
    #: closing lineage row): a rule on the account's default bus, where Step Functions puts
    #: "Step Functions Execution Status Change" events, invokes its ``live`` alias
    #: (``Platform.failure_pattern``). Standard only: Express workflows emit no such events
    #: (https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html).
    on_failure: Slug | None = None

    @property
    def asl_path(self) -> Path:
        return STATEMACHINES_DIR / self.asl

    def read_definition(self) -> str:
        """The ASL every reader sees: the source with its named fragments expanded."""
        return expand_text(self.asl_path, fragments=STATEMACHINES_DIR)

    def referenced_substitutions(self) -> set[str]:
        return set(_SUBSTITUTION.findall(self.read_definition()))


class HttpRouteSpec(_Spec):
    method: Literal["GET", "POST", "PUT", "DELETE"]
    path: str
    function: Slug


class ResourceAttribute(_Spec):
    """What a substitution stands for: an attribute of a resource of the description.

    For ``kind="literal"`` the ``id`` is the value itself (a workflow parameter).
    """

    kind: Literal["table", "bucket", "function", "bus", "model", "queue", "literal"]
    id: str
    attribute: Literal["name", "arn", "value", "version", "url"]


class Platform(_Spec):
    name: Slug = "aios"
    bus: EventBusSpec = EventBusSpec()
    tables: tuple[TableSpec, ...]
    buckets: tuple[BucketSpec, ...]
    sources: tuple[WebhookSourceSpec, ...] = ()
    functions: tuple[FunctionSpec, ...] = ()
    workflows: tuple[WorkflowSpec, ...] = ()
    routes: tuple[HttpRouteSpec, ...] = ()
    models: tuple[ModelSpec, ...] = ()

    @model_validator(mode="after")
    def _names_are_unique(self) -> Platform:
        for kind, names in (
            ("table", [t.id for t in self.tables]),
            ("bucket", [b.id for b in self.buckets]),
            ("source", [s.name for s in self.sources]),
            ("function", [f.name for f in self.functions]),
            ("workflow", [w.name for w in self.workflows]),
            ("model", [m.name for m in self.models]),
        ):
            duplicates = {n for n in names if names.count(n) > 1}
            if duplicates:
                raise ValueError(f"{kind} declared twice: {sorted(duplicates)}")
        return self

    @model_validator(mode="after")
    def _references_resolve(self) -> Platform:
        tables = {t.id for t in self.tables}
        buckets = {b.id for b in self.buckets}
        functions = {f.name for f in self.functions}
        for owner, table_ids, bucket_ids in (
            *((f"function {f.name}", f.tables, f.buckets) for f in self.functions),
            *((f"workflow {w.name}", w.tables, {}) for w in self.workflows),
        ):
            if missing := set(table_ids) - tables:
                raise ValueError(f"{owner} touches unknown tables {sorted(missing)}")
            if missing := set(bucket_ids) - buckets:
                raise ValueError(f"{owner} touches unknown buckets {sorted(missing)}")
        for workflow in self.workflows:
            if missing := set(workflow.functions) - functions:
                raise ValueError(f"workflow {workflow.name} invokes unknown functions {sorted(missing)}")
            if workflow.on_failure is not None and workflow.on_failure not in functions:
                raise ValueError(f"workflow {workflow.name}: on_failure names unknown {workflow.on_failure}")
            if workflow.on_failure is not None and workflow.type != "STANDARD":
                raise ValueError(f"workflow {workflow.name} is {workflow.type}: it emits no status changes")
        for route in self.routes:
            if route.function not in functions:
                raise ValueError(
                    f"route {route.method} {route.path} targets unknown function {route.function}"
                )
        return self

    @model_validator(mode="after")
    def _functions_name_known_sources_and_workflows(self) -> Platform:
        workflows = {w.name for w in self.workflows}
        sources = {s.name for s in self.sources}
        for function in self.functions:
            if missing := set(function.webhook_secrets) - sources:
                raise ValueError(
                    f"function {function.name} reads secrets of unknown sources {sorted(missing)}"
                )
            if missing := set(function.answers_workflows) - workflows:
                raise ValueError(f"function {function.name} answers unknown workflows {sorted(missing)}")
            if function.model and function.model not in {m.name for m in self.models}:
                raise ValueError(
                    f"function {function.name} invokes unknown model {function.model} "
                    f"(declared: {sorted(m.name for m in self.models)})"
                )
        return self

    def table(self, table_id: str) -> TableSpec:
        return next(t for t in self.tables if t.id == table_id)

    def bucket(self, bucket_id: str) -> BucketSpec:
        return next(b for b in self.buckets if b.id == bucket_id)

    def function(self, name: str) -> FunctionSpec:
        return next(f for f in self.functions if f.name == name)

    def workflow(self, name: str) -> WorkflowSpec:
        return next(w for w in self.workflows if w.name == name)

    def model(self, name: str) -> ModelSpec:
        return next(m for m in self.models if m.name == name)

    def substitutions(self, workflow: WorkflowSpec) -> dict[str, ResourceAttribute]:
        """The ``${...}`` names a workflow's ASL may use, and what each stands for.

        Only resources the workflow declares are offered, so an ASL file that reaches for
        anything else fails validation instead of failing at run time with AccessDenied.
        """
        offered: dict[str, ResourceAttribute] = {}
        for table_id in workflow.tables:
            for attribute in ("name", "arn"):
                offered[f"{camel(table_id)}Table{attribute.capitalize()}"] = ResourceAttribute(
                    kind="table", id=table_id, attribute=attribute
                )
        for function_name in workflow.functions:
            offered[f"{camel(function_name)}FunctionArn"] = ResourceAttribute(
                kind="function", id=function_name, attribute="arn"
            )
        if workflow.put_events:
            for attribute in ("name", "arn"):
                offered[f"EventBus{attribute.capitalize()}"] = ResourceAttribute(
                    kind="bus", id=self.bus.name, attribute=attribute
                )
        if workflow.dead_letters:
            offered["DeadLetterQueueUrl"] = ResourceAttribute(kind="queue", id=DEAD_LETTERS, attribute="url")
        for parameter, value in workflow.parameters.items():
            offered[parameter] = ResourceAttribute(kind="literal", id=value, attribute="value")
        return offered

    def function_environment(self, function: FunctionSpec) -> dict[str, ResourceAttribute]:
        """Environment variables a function receives for the resources it may touch."""
        environment: dict[str, ResourceAttribute] = {}
        for table_id in function.tables:
            environment[self.table(table_id).env_var] = ResourceAttribute(
                kind="table", id=table_id, attribute="name"
            )
        for bucket_id in function.buckets:
            environment[self.bucket(bucket_id).env_var] = ResourceAttribute(
                kind="bucket", id=bucket_id, attribute="name"
            )
        if function.put_events:
            environment[variable("event_bus_name")] = ResourceAttribute(
                kind="bus", id=self.bus.name, attribute="name"
            )
        if function.model:
            environment[variable("model_endpoint")] = ResourceAttribute(
                kind="model", id=function.model, attribute="name"
            )
            environment[variable("model_version")] = ResourceAttribute(
                kind="model", id=function.model, attribute="version"
            )
        retention = {
            table_id: self.table(table_id).retention_days
            for table_id, access in function.tables.items()
            if access is not Access.READ and self.table(table_id).retention_days is not None
        }
        if retention:
            environment[variable("table_retention_days")] = ResourceAttribute(
                kind="literal", id=json.dumps(retention, sort_keys=True), attribute="value"
            )
        if function.webhook_secrets:
            sources = {s.name: s.scheme for s in self.sources if s.name in function.webhook_secrets}
            environment[variable("webhook_sources")] = ResourceAttribute(
                kind="literal", id=json.dumps(sources, sort_keys=True), attribute="value"
            )
        return environment

    def runtime_environment(
        self,
        function: FunctionSpec,
        *,
        stage: str,
        secrets_prefix: str,
        resolve: Callable[[ResourceAttribute], str],
    ) -> dict[str, str]:
        """The whole environment of a deployed function; each renderer passes its resolver."""
        return {
            variable("stage"): stage,
            variable("secrets_prefix"): secrets_prefix,
            variable("service_name"): function.name,
            # AWS clients size their timeouts from it (aios.clients).
            variable("function_timeout_seconds"): str(function.timeout_seconds),
            variable("log_level"): "INFO",
            **{name: resolve(reference) for name, reference in self.function_environment(function).items()},
            **function.environment,
        }

    def failure_pattern(self, state_machine_arn: str) -> dict[str, Any]:
        """What a workflow's failure rule matches on the default bus: Step Functions' status
        change of an execution of this state machine that ended unsuccessfully. The detail
        carries what ``DescribeExecution`` answers; ``stateMachineArn`` is the unqualified ARN
        whichever version or alias started it
        (https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html)."""
        return {
            "source": [FAILURE_EVENT_SOURCE],
            "detail-type": [FAILURE_EVENT_DETAIL_TYPE],
            "detail": {"status": list(FAILURE_STATUSES), "stateMachineArn": [state_machine_arn]},
        }

    def trigger_pattern_json(self, workflow: WorkflowSpec) -> str:
        assert workflow.trigger is not None
        return json.dumps(workflow.trigger.event_pattern, sort_keys=True)
