"""The shared layer and the one helper that builds every Lambda function."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import (
    AssetHashType,
    BundlingOptions,
    DockerImage,
    Duration,
    ILocalBundling,
    RemovalPolicy,
)
from aws_cdk import (
    aws_events as events,
)
from aws_cdk import (
    aws_events_targets as targets,
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
from constructs import Construct

from infrastructure.constructs.log_groups import encrypted_log_group
from infrastructure.layer_build import LAYER_DEPENDENCIES, LAYER_SOURCE
from infrastructure.nag import acknowledge_grant_wildcards
from infrastructure.platform.spec import FunctionSpec
from infrastructure.settings import DeploymentSettings

RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
#: The alias every caller invokes (workflows call the version itself; see ``PlatformFunction``).
LIVE_ALIAS = "live"
#: Lambda's default ephemeral storage; SnapStart refuses more than this.
EPHEMERAL_STORAGE_MB = 512
#: A scheduled run that could not be delivered is retried this long, then dead-lettered: the
#: next run measures afresh, so an older one is worth little.
SCHEDULE_RETRY_ATTEMPTS = 2
SCHEDULE_MAX_EVENT_AGE_SECONDS = 300


def snap_start_supported(
    runtime: lambda_.Runtime = RUNTIME, *, ephemeral_storage_mb: int = EPHEMERAL_STORAGE_MB
) -> bool:
    """Whether SnapStart may be turned on: a runtime that supports it (Python 3.12 and later,
    on x86_64 and arm64), no provisioned concurrency, no EFS, at most 512 MB of ephemeral
    storage (https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html). Our functions use
    neither provisioned concurrency nor EFS; the runtime and storage are what can change."""
    return bool(runtime.supports_snap_start) and ephemeral_storage_mb <= EPHEMERAL_STORAGE_MB


def schedule_rule_name(spec: FunctionSpec, settings: DeploymentSettings) -> str:
    """The scheduled function's rule (on the default bus: its ARN is ``rule/<name>``)."""
    return settings.name(f"{spec.name}-schedule")


_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache")


@jsii.implements(ILocalBundling)
class _LayerBundling:
    """Assembles the layer without Docker: the ARM64 wheels ``make setup`` installed, plus
    the ``aios`` package as it is now."""

    def try_bundle(self, output_dir: str, *_options: Any, **_kwargs: Any) -> bool:
        if not LAYER_DEPENDENCIES.is_dir():
            raise RuntimeError(
                f"{LAYER_DEPENDENCIES} is missing: run `make setup` (it installs the layer's "
                "ARM64 wheels once; synth itself never downloads)"
            )
        target = Path(output_dir) / "python"
        shutil.copytree(LAYER_DEPENDENCIES, target, dirs_exist_ok=True, ignore=_IGNORED)
        shutil.copytree(LAYER_SOURCE / "aios", target / "aios", dirs_exist_ok=True, ignore=_IGNORED)
        return True


class SharedLayer(Construct):
    """The ``aios`` package and its dependencies as one Lambda layer."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            description="aios shared runtime (aios package, Powertools, pydantic, httpx)",
            code=lambda_.Code.from_asset(
                str(LAYER_SOURCE),
                asset_hash_type=AssetHashType.OUTPUT,
                bundling=BundlingOptions(
                    # Never pulled: local bundling always succeeds or raises.
                    image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.14"),
                    local=_LayerBundling(),
                ),
            ),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
        )


class PlatformFunction(Construct):
    """A function of the platform description, built the same way every time.

    ARM64 on the current Python runtime, the shared layer, X-Ray active tracing, an
    encrypted log group with retention, environment encrypted with the platform key,
    failed asynchronous invocations to the platform dead-letter queue.

    Every deploy that changes the function publishes a version (``version``: CDK's
    ``currentVersion``, whose logical id hashes the function's code and configuration), with
    SnapStart on published versions where supported, and moves the alias ``live`` to it.
    Old versions are retained (``RETAIN``): a workflow execution that started on an earlier
    state machine version keeps calling the function version it was deployed with, so that
    version must outlive the deploy that replaces it (aws-cdk #17515; CDK's default for a
    ``Version`` is DESTROY). API routes and anything else that wants "the current code"
    invoke ``alias``; nothing invokes ``$LATEST``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: FunctionSpec,
        layer: lambda_.ILayerVersion,
        environment: dict[str, str],
        key: kms.IKey,
        dead_letter_queue: sqs.IQueue,
        settings: DeploymentSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        self.spec = spec
        log_group = encrypted_log_group(
            self,
            "Logs",
            key=key,
            settings=settings,
            name=f"/aws/lambda/{settings.name(spec.name)}",
        )
        # Our own role instead of AWSLambdaBasicExecutionRole, whose log actions apply to
        # every log group: this one may write to its own log group only.
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"aios function {spec.name}",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=settings.name(spec.name),
            description=spec.description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=spec.handler,
            code=lambda_.Code.from_asset(
                str(spec.code_path), exclude=["__pycache__", "*.pyc", "__init__.py"]
            ),
            layers=[layer],
            memory_size=spec.memory_mb,
            timeout=Duration.seconds(spec.timeout_seconds),
            # The deployment's choice (cdk.json ``reservedConcurrency``), not the description's
            # ``reserved_concurrency`` (the local mode's throttle): accounts differ in quota.
            reserved_concurrent_executions=settings.reserved_concurrency.get(spec.name),
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            role=role,
            environment=environment,
            environment_encryption=key,
            dead_letter_queue=dead_letter_queue,
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if snap_start_supported() else None,
            current_version_options=lambda_.VersionOptions(removal_policy=RemovalPolicy.RETAIN),
        )
        self.version = self.function.current_version
        self.alias = lambda_.Alias(
            self,
            "Live",
            alias_name=LIVE_ALIAS,
            version=self.version,
            description=f"aios function {spec.name}: the version of the latest deploy",
        )
        self.schedule = self._schedule(spec, dead_letter_queue, settings) if spec.schedule else None
        acknowledge_grant_wildcards(self, what=f"function {spec.name}")

    def _schedule(
        self, spec: FunctionSpec, dead_letter_queue: sqs.IQueue, settings: DeploymentSettings
    ) -> events.Rule:
        """The rule on the default bus (the only one that runs schedules) that invokes the
        ``live`` alias; ``LambdaFunction`` adds the alias's resource policy, for
        ``events.amazonaws.com`` from this rule's ARN alone."""
        assert spec.schedule is not None
        return events.Rule(
            self,
            "Schedule",
            rule_name=schedule_rule_name(spec, settings),
            description=f"Runs {spec.name} on {spec.schedule}",
            schedule=events.Schedule.expression(spec.schedule),
            targets=[
                targets.LambdaFunction(
                    self.alias,
                    dead_letter_queue=dead_letter_queue,
                    retry_attempts=SCHEDULE_RETRY_ATTEMPTS,
                    max_event_age=Duration.seconds(SCHEDULE_MAX_EVENT_AGE_SECONDS),
                )
            ],
        )
