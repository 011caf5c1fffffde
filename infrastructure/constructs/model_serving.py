"""SageMaker serving of a model of the platform description (``ModelSpec``): artifact and
capture buckets (shared, a prefix per model), the model package version of the built artifact,
model, endpoint config, blue/green endpoint with alarm-driven rollback, and autoscaling.

The serving image is SageMaker's Triton Inference Server container (``sagemaker-tritonserver``
``IMAGE_VERSION``; NVIDIA's monthly Triton release, maintained by AWS for SageMaker:
https://docs.aws.amazon.com/sagemaker/latest/dg/triton.html and the image list
https://github.com/aws/deep-learning-containers/blob/master/available_images.md), resolved at
synth by the SageMaker SDK for every region it exists in (``image_regions``) into a
``CfnMapping``. A stack whose region is known at synth fails there if the image is not in it;
an environment-agnostic stack carries a template ``Rule`` that stops the deploy before any
resource with the same message.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from aws_cdk import (
    Aws,
    CfnMapping,
    CfnRule,
    CfnRuleAssertion,
    CfnTag,
    Duration,
    Fn,
    RemovalPolicy,
    Stack,
    Token,
)
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3_deployment
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct
from pydantic import BaseModel, ConfigDict, Field

from infrastructure.constructs.log_groups import encrypted_log_group
from infrastructure.constructs.storage import access_logs_bucket, encrypted_bucket
from infrastructure.nag import acknowledge
from infrastructure.platform.models import ServingChoice, model_tarball, serving
from infrastructure.platform.spec import ModelSpec
from infrastructure.settings import DeploymentSettings

#: The serving image: SageMaker Triton, pinned to a release (a test checks it is the newest
#: the SageMaker SDK knows, so an SDK upgrade flags a stale pin).
IMAGE_FRAMEWORK = "sagemaker-tritonserver"
IMAGE_VERSION = "26.05"
IMAGE_REPOSITORY = "sagemaker-tritonserver"
VARIANT = "AllTraffic"
#: Instance families with local NVMe storage. AWS encrypts it in hardware and rejects an
#: endpoint config with ``KmsKeyId`` for them (CreateEndpointConfig API reference).
_LOCAL_STORAGE_FAMILIES = frozenset(
    {"g4dn", "g5", "g6", "g6e", "gr6", "p3dn", "p4d", "p4de", "p5", "p5e", "p5en", "trn1", "trn1n"}
)


class ServingOptions(BaseModel):
    """Optional CDK context for every model of the deployment (defaults in code; none of
    these keys is in cdk.json yet). Unset capture percent and canary wait: each model's own
    (``ModelSpec.capture``, ``ModelSpec.rollout``)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    capture_percent: int | None = Field(default=None, ge=1, le=100, alias="modelCapturePercent")
    capture_retention_days: int = Field(default=30, ge=1, alias="modelCaptureRetentionDays")
    min_instances: int | None = Field(default=None, ge=1, alias="modelMinInstances")
    max_instances: int | None = Field(default=None, ge=1, alias="modelMaxInstances")
    invocations_per_instance: int = Field(default=600, ge=1, alias="modelInvocationsPerInstance")
    latency_p99_ms: int = Field(default=2_000, ge=1, alias="modelLatencyP99Ms")
    canary_wait_seconds: int | None = Field(default=None, ge=0, le=3600, alias="modelCanaryWaitSeconds")

    @classmethod
    def from_scope(cls, scope: Construct) -> ServingOptions:
        values = {
            field.alias: scope.node.try_get_context(field.alias)
            for field in cls.model_fields.values()
            if field.alias and scope.node.try_get_context(field.alias) is not None
        }
        return cls.model_validate(values)


def instance_family(instance_type: str) -> str:
    """``ml.g5.12xlarge`` -> ``g5``."""
    return instance_type.split(".")[1]


def has_local_storage(instance_type: str) -> bool:
    family = instance_family(instance_type)
    return family in _LOCAL_STORAGE_FAMILIES or family.rstrip("n").endswith("d")


def _sdk() -> Any:
    from sagemaker.core import image_uris as sdk  # type: ignore[import-untyped]  # noqa: PLC0415 - slow, synth only

    return sdk


@cache
def image_regions() -> tuple[str, ...]:
    """Every region the SageMaker SDK lists the pinned Triton image in."""
    versions = _sdk().config_for_framework(IMAGE_FRAMEWORK)["versions"]
    return tuple(sorted(versions[IMAGE_VERSION]["registries"]))


@cache
def newest_image_version() -> str:
    versions = _sdk().config_for_framework(IMAGE_FRAMEWORK)["versions"]
    return str(max(versions, key=lambda v: tuple(int(part) for part in v.split("."))))


@cache
def image_uris(instance_type: str) -> dict[str, str]:
    """Region -> serving image URI (``-cpu`` tag on CPU instances), resolved offline."""
    return {
        region: _sdk().retrieve(
            framework=IMAGE_FRAMEWORK,
            region=region,
            version=IMAGE_VERSION,
            instance_type=instance_type,
            image_scope="inference",
        )
        for region in image_regions()
    }


class UnsupportedRegionError(ValueError):
    """The serving image does not exist in the stack's region."""


def region_message(region: str) -> str:
    return (
        f"the SageMaker Triton image {IMAGE_REPOSITORY}:{IMAGE_VERSION} is not published in "
        f"{region}; deploy the models stack to one of: {', '.join(image_regions())}"
    )


@dataclass(frozen=True)
class ServingImage:
    """The image URI and its ECR repository ARN in the stack's region (tokens)."""

    uri: str
    repository_arn: str


def serving_image(scope: Construct, instance_type: str, *, mapping_id: str = "ServingImages") -> ServingImage:
    """The image for ``instance_type`` (a ``mapping_id`` per model); the region rule once a stack."""
    stack = Stack.of(scope)
    if not Token.is_unresolved(stack.region) and stack.region not in image_regions():
        raise UnsupportedRegionError(region_message(stack.region))
    mapping = CfnMapping(
        scope,
        mapping_id,
        mapping={
            region: {"uri": uri, "registry": uri.split(".", 1)[0]}
            for region, uri in image_uris(instance_type).items()
        },
    )
    # Region-agnostic synth: CloudFormation checks rules before it creates anything.
    if scope.node.try_find_child("ServingImageRegion") is None:
        CfnRule(
            scope,
            "ServingImageRegion",
            assertions=[
                CfnRuleAssertion(
                    assert_=Fn.condition_contains(list(image_regions()), Aws.REGION),
                    assert_description=region_message("this region"),
                )
            ],
        )
    registry = mapping.find_in_map(Aws.REGION, "registry")
    return ServingImage(
        uri=mapping.find_in_map(Aws.REGION, "uri"),
        repository_arn=Fn.join(
            "", [f"arn:{stack.partition}:ecr:{stack.region}:", registry, f":repository/{IMAGE_REPOSITORY}"]
        ),
    )


class ModelStorage(Construct):
    """Buckets the platform owns for its models, each model under its name's prefix:
    artifacts (what SageMaker downloads on every scale-out and replacement, and what each model
    package version points at) and data capture (inference inputs and outputs), each
    KMS-encrypted, versioned, access-logged.

    Not the CDK bootstrap staging bucket (no lifecycle of ours, shared by every CDK app in
    the account) and not the documents bucket (CloudTrail records its data events, and the
    documents and email connectors may read it whole).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        settings: DeploymentSettings,
        options: ServingOptions,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = access_logs_bucket(self, settings=settings)

        def bucket(part: str, lifecycle: list[s3.LifecycleRule]) -> s3.Bucket:
            return encrypted_bucket(
                self,
                part.title().replace("-", ""),
                name_part=part,
                key=key,
                settings=settings,
                access_logs=self.access_logs,
                lifecycle_rules=lifecycle,
            )

        # Artifacts stay while a model package version may point at them; replaced objects
        # (a rebuilt key) go after 90 days.
        self.artifacts = bucket(
            "model-artifacts", [s3.LifecycleRule(noncurrent_version_expiration=Duration.days(90))]
        )
        self.capture = bucket(
            "model-capture",
            [
                s3.LifecycleRule(
                    expiration=Duration.days(options.capture_retention_days),
                    noncurrent_version_expiration=Duration.days(1),
                )
            ],
        )
        # Captured invoices' features are inference data: no one reads them through this
        # bucket (the execution role only writes). A reader is added here when drift watching
        # needs one; until then every read is denied, whatever an identity policy says.
        self.capture.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyReadingCapturedInferenceData",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[self.capture.arn_for_objects("*")],
            )
        )
        acknowledge(
            self.access_logs,
            "AwsSolutions-S1",
            "this bucket receives the server access logs of the model buckets; logging it would loop",
        )


@dataclass(frozen=True)
class PublishedArtifact:
    """The artifact and its metrics in the artifacts bucket (keys under the model version)."""

    bucket: s3.IBucket
    model_key: str
    metrics_key: str
    deployment: s3_deployment.BucketDeployment

    @property
    def model_url(self) -> str:
        return f"s3://{self.bucket.bucket_name}/{self.model_key}"

    @property
    def metrics_url(self) -> str:
        return f"s3://{self.bucket.bucket_name}/{self.metrics_key}"


def _copy_atomically(source: Path, target: Path) -> None:
    """Parallel synths (pytest-xdist) share the staging folder: never expose a half-copied file."""
    with source.open("rb") as whole, tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as partial:
        shutil.copyfileobj(whole, partial)
    Path(partial.name).replace(target)


def publish_artifact(
    scope: Construct,
    *,
    model: ModelSpec,
    bucket: s3.IBucket,
    model_version: str,
    choice: ServingChoice,
    construct_id: str = "PublishArtifact",
) -> PublishedArtifact:
    """Copy ``model.tar.gz`` (GPU or CPU config, after the instance) and ``metrics.json`` to
    ``<model>/<version>/<kind>/`` in the artifacts bucket, at deploy time. Earlier versions
    stay (``prune=False``): their model package versions still point at them."""
    kind: Literal["gpu", "cpu"] = "gpu" if choice.is_gpu else "cpu"
    module = serving(model)
    # A fixed folder under the (git-ignored) artifacts, not a temp dir: every synth would leave
    # one behind, and the asset hash depends only on the two files' content.
    staging = Path(module.ARTIFACTS_DIR) / "publish" / kind
    staging.mkdir(parents=True, exist_ok=True)
    _copy_atomically(model_tarball(model, kind), staging / "model.tar.gz")
    _copy_atomically(module.METRICS_FILE, staging / "metrics.json")
    prefix = f"{model.name}/{model_version}/{kind}/"
    deployment = s3_deployment.BucketDeployment(
        scope,
        construct_id,
        sources=[s3_deployment.Source.asset(str(staging))],
        destination_bucket=bucket,
        destination_key_prefix=prefix,
        prune=False,
        retain_on_delete=True,
        memory_limit=256,
    )
    basic_execution = "arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    stack = Stack.of(scope)
    account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
    region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
    cdk_assets = f"arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-{account}-{region}/*"
    for rule_id, reason in {
        f"AwsSolutions-IAM4[Policy::{basic_execution}]": (
            "CDK's BucketDeployment handler (copies the model artifact at deploy time); only its own logs"
        ),
        "AwsSolutions-IAM5[Action::s3:GetBucket*]": "BucketDeployment: read the CDK asset it copies from",
        "AwsSolutions-IAM5[Action::s3:GetObject*]": "BucketDeployment: read the CDK asset it copies from",
        "AwsSolutions-IAM5[Action::s3:List*]": "BucketDeployment: list the asset and the artifacts bucket",
        "AwsSolutions-IAM5[Action::s3:DeleteObject*]": "BucketDeployment: writes the artifacts bucket only",
        "AwsSolutions-IAM5[Action::s3:Abort*]": "BucketDeployment: multipart uploads to the artifacts bucket",
        "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]": "BucketDeployment: the platform key of the bucket",
        "AwsSolutions-IAM5[Action::kms:ReEncrypt*]": "BucketDeployment: the platform key of the bucket",
        "AwsSolutions-L1": "BucketDeployment's handler runtime is chosen by aws-cdk-lib",
        f"AwsSolutions-IAM5[Resource::{cdk_assets}]": (
            "BucketDeployment: reads its source asset from the CDK asset bucket"
        ),
        f"AwsSolutions-IAM5[Resource::{_nag_arn(bucket.arn_for_objects('*'), Stack.of(scope))}]": (
            "BucketDeployment: writes artifacts under versioned keys of the artifacts bucket"
        ),
    }.items():
        acknowledge(Stack.of(scope), rule_id, reason)
    return PublishedArtifact(
        bucket=bucket,
        model_key=f"{prefix}model.tar.gz",
        metrics_key=f"{prefix}metrics.json",
        deployment=deployment,
    )


class ModelRegistry(Construct):
    """The model package group, and the built artifact as a version in it: the image and
    artifact it runs, its held-out metrics (``evaluate.py``: ROC-AUC, precision at the review
    rate) and the approval status build.py's gate gave it. Versions are retained when a new
    artifact replaces the resource, so the group keeps every deployed version."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        model: ModelSpec,
        settings: DeploymentSettings,
        model_version: str,
        entry: dict[str, Any],
        image: ServingImage,
        artifact: PublishedArtifact,
        choice: ServingChoice,
    ) -> None:
        super().__init__(scope, construct_id)
        version_tag = [CfnTag(key="aios:model-version", value=model_version)]
        self.group = sagemaker.CfnModelPackageGroup(
            self,
            "Group",
            model_package_group_name=settings.name(model.name),
            # Update requires: Replacement (and the group is named): the text stays put
            # (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-sagemaker-modelpackagegroup.html).
            model_package_group_description=(
                f"aios {model.description}; one version per built artifact, the endpoint serves "
                "the approved one named by the aios:model-version tag"
            ),
            tags=version_tag,
        )
        metrics: dict[str, Any] = entry["metrics"]
        content_types = ["application/json", "application/vnd.sagemaker-triton.binary+json"]
        self.package = sagemaker.CfnModelPackage(
            self,
            "Version",
            model_package_group_name=self.group.attr_model_package_group_arn,
            model_package_description=f"model_version={model_version}",
            model_approval_status=str(entry["approval_status"]),
            customer_metadata_properties={
                "aios:model-version": model_version,
                "aios:approval-reason": _metadata_value(str(entry["approval_reason"])),
                **{f"aios:metric:{name}": str(value) for name, value in metrics.items()},
            },
            inference_specification=sagemaker.CfnModelPackage.InferenceSpecificationProperty(
                containers=[
                    sagemaker.CfnModelPackage.ModelPackageContainerDefinitionProperty(
                        image=image.uri,
                        model_data_url=artifact.model_url,
                        environment=serving(model).serving_environment(),
                    )
                ],
                supported_content_types=content_types,
                supported_response_mime_types=content_types,
                supported_realtime_inference_instance_types=[choice.instance_type],
            ),
            model_metrics=sagemaker.CfnModelPackage.ModelMetricsProperty(
                model_quality=sagemaker.CfnModelPackage.ModelQualityProperty(
                    statistics=sagemaker.CfnModelPackage.MetricsSourceProperty(
                        content_type="application/json", s3_uri=artifact.metrics_url
                    )
                )
            ),
            tags=version_tag,
        )
        self.package.apply_removal_policy(RemovalPolicy.RETAIN)
        self.package.node.add_dependency(artifact.deployment)

    @property
    def package_arn(self) -> str:
        return self.package.attr_model_package_arn


class ModelEndpoint(Construct):
    """Model (from the approved package version), endpoint config (data capture, storage
    key), blue/green endpoint, alarms that roll a deployment back, and target-tracking
    autoscaling on invocations per instance."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        model: ModelSpec,
        endpoint_name: str,
        model_version: str,
        key: kms.IKey,
        storage: ModelStorage,
        image: ServingImage,
        artifact: PublishedArtifact,
        registry: ModelRegistry,
        choice: ServingChoice,
        settings: DeploymentSettings,
        options: ServingOptions,
    ) -> None:
        super().__init__(scope, construct_id)
        self.spec = model
        self.endpoint_name = endpoint_name
        self.model_version = model_version
        self.choice = choice
        instance_type = choice.instance_type
        log_group = encrypted_log_group(
            self,
            "Logs",
            key=key,
            settings=settings,
            name=f"/aws/sagemaker/Endpoints/{endpoint_name}",
        )
        self.role = self._execution_role(
            image=image, artifact=artifact, log_group=log_group, key=key, capture_bucket=storage.capture
        )
        version_tag = [CfnTag(key="aios:model-version", value=model_version)]
        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.role.role_arn,
            # The approved model package version: its image, artifact and environment.
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                model_package_name=registry.package_arn
            ),
            # No VPC: the container needs no network and reaches no VPC resource; network
            # isolation denies it any outbound call. SageMaker itself fetches artifact and image.
            enable_network_isolation=True,
            tags=version_tag,
        )
        self.model.node.add_dependency(self.role)
        local_storage = has_local_storage(instance_type)
        self.config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT,
                    model_name=self.model.attr_model_name,
                    instance_type=instance_type,
                    initial_instance_count=choice.instance_count,
                    initial_variant_weight=1.0,
                )
            ],
            # Instances with local NVMe storage (g5 among them) encrypt it in hardware, and
            # CreateEndpointConfig rejects a KmsKeyId for them; captured data is KMS-encrypted.
            kms_key_id=None if local_storage else key.key_arn,
            data_capture_config=None
            if not model.capture.enabled
            else sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
                enable_capture=True,
                initial_sampling_percentage=options.capture_percent or model.capture.percent,
                destination_s3_uri=f"s3://{storage.capture.bucket_name}/{model.name}",
                kms_key_id=key.key_arn,
                capture_options=[
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Input"),
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Output"),
                ],
                capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                    json_content_types=["application/json"]
                ),
            ),
            tags=version_tag,
        )

        self.alarms = self._rollback_alarms(options)
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=self.config.attr_endpoint_config_name,
            deployment_config=sagemaker.CfnEndpoint.DeploymentConfigProperty(
                blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                    traffic_routing_configuration=self._traffic(model, choice, options),
                    termination_wait_in_seconds=model.rollout.termination_wait_seconds,
                    maximum_execution_timeout_in_seconds=model.rollout.max_execution_timeout_seconds,
                ),
                auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
                    alarms=[
                        sagemaker.CfnEndpoint.AlarmProperty(alarm_name=alarm.alarm_name)
                        for alarm in self.alarms
                    ]
                ),
            ),
            tags=version_tag,
        )
        # SageMaker writes to the log group: it must exist (with its key and retention) first.
        self.endpoint.node.add_dependency(log_group)
        self.endpoint.node.add_dependency(self.role)
        for alarm in self.alarms:
            self.endpoint.node.add_dependency(alarm)
        self._autoscaling(choice, options)

    @property
    def endpoint_arn(self) -> str:
        return self.endpoint.ref

    @staticmethod
    def _traffic(
        model: ModelSpec, choice: ServingChoice, options: ServingOptions
    ) -> sagemaker.CfnEndpoint.TrafficRoutingConfigProperty:
        """Canary (``rollout.canary_instances`` first) where that is at most half the fleet;
        all at once otherwise. Both bake for the rollout's wait and roll back on the alarms."""
        wait = options.canary_wait_seconds
        if wait is None:
            wait = model.rollout.wait_seconds
        if choice.traffic == "CANARY":
            return sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
                type="CANARY",
                canary_size=sagemaker.CfnEndpoint.CapacitySizeProperty(
                    type="INSTANCE_COUNT", value=model.rollout.canary_instances
                ),
                wait_interval_in_seconds=wait,
            )
        return sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
            type="ALL_AT_ONCE", wait_interval_in_seconds=wait
        )

    def _execution_role(
        self,
        *,
        image: ServingImage,
        artifact: PublishedArtifact,
        log_group: logs.ILogGroup,
        key: kms.IKey,
        capture_bucket: s3.IBucket,
    ) -> iam.Role:
        """Least privilege: this artifact object, this image repository, this log group,
        the capture prefix, and the platform key.

        ECR: SageMaker pulls the image with the execution role's credentials, which needs
        ``ecr:GetAuthorizationToken`` (an action that accepts only ``"Resource": "*"``) plus
        the pull actions on the repository
        (https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html#sagemaker-roles-createmodel-perms,
        https://docs.aws.amazon.com/AmazonECR/latest/userguide/security_iam_id-based-policy-examples.html).
        """
        capture_objects = capture_bucket.arn_for_objects(f"{self.spec.name}/*")
        policy = iam.PolicyDocument(
            statements=[
                iam.PolicyStatement(
                    sid="ModelArtifact",
                    actions=["s3:GetObject"],
                    resources=[artifact.bucket.arn_for_objects(artifact.model_key)],
                ),
                iam.PolicyStatement(
                    sid="ServingImageAuthorization",
                    actions=["ecr:GetAuthorizationToken"],
                    resources=["*"],
                ),
                iam.PolicyStatement(
                    sid="ServingImage",
                    actions=[
                        "ecr:BatchGetImage",
                        "ecr:GetDownloadUrlForLayer",
                        "ecr:BatchCheckLayerAvailability",
                    ],
                    resources=[image.repository_arn],
                ),
                iam.PolicyStatement(
                    sid="EndpointLogs",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                    resources=[log_group.log_group_arn],
                ),
                *(
                    [
                        iam.PolicyStatement(
                            sid="DataCapture", actions=["s3:PutObject"], resources=[capture_objects]
                        )
                    ]
                    if self.spec.capture.enabled
                    else []
                ),
                iam.PolicyStatement(
                    sid="PlatformKey",
                    actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                    resources=[key.key_arn],
                ),
                iam.PolicyStatement(
                    sid="PlatformKeyGrantsForSageMaker",
                    actions=["kms:CreateGrant"],
                    resources=[key.key_arn],
                    conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
                ),
            ]
        )
        role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"aios SageMaker execution role of {self.endpoint_name}",
            inline_policies={"Serving": policy},
        )
        if self.spec.capture.enabled:
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::{_nag_arn(capture_objects, Stack.of(self))}]",
                "data capture writes objects with generated names under the model's capture prefix only",
            )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken alone, which AWS accepts only on '*'; the image pull "
            "actions are on the serving image's repository",
        )
        return role

    def _rollback_alarms(self, options: ServingOptions) -> list[cloudwatch.Alarm]:
        dimensions = {"EndpointName": self.endpoint_name, "VariantName": VARIANT}
        errors = cloudwatch.Alarm(
            self,
            "Invocation5xxAlarm",
            alarm_name=f"{self.endpoint_name}-invocation-5xx",
            alarm_description="The model answered 5xx: rolls a blue/green deployment back",
            metric=cloudwatch.Metric(
                namespace="AWS/SageMaker",
                metric_name="Invocation5XXErrors",
                dimensions_map=dimensions,
                statistic="Sum",
                period=Duration.minutes(1),
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        latency = cloudwatch.Alarm(
            self,
            "LatencyP99Alarm",
            alarm_name=f"{self.endpoint_name}-model-latency-p99",
            alarm_description=(
                f"ModelLatency p99 above {options.latency_p99_ms} ms: rolls a blue/green deployment back"
            ),
            metric=cloudwatch.Metric(
                namespace="AWS/SageMaker",
                metric_name="ModelLatency",  # microseconds
                dimensions_map=dimensions,
                statistic="p99",
                period=Duration.minutes(1),
            ),
            threshold=options.latency_p99_ms * 1000,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        return [errors, latency]

    def _autoscaling(self, choice: ServingChoice, options: ServingOptions) -> None:
        """Target tracking on invocations per instance; Application Auto Scaling uses its
        service-linked role for SageMaker (no RoleARN)."""
        from aws_cdk import aws_applicationautoscaling as autoscaling  # noqa: PLC0415

        minimum = max(options.min_instances or choice.instance_count, choice.instance_count)
        maximum = max(options.max_instances or 4 * minimum, minimum)
        target = autoscaling.CfnScalableTarget(
            self,
            "ScalableTarget",
            service_namespace="sagemaker",
            resource_id=f"endpoint/{self.endpoint_name}/variant/{VARIANT}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=minimum,
            max_capacity=maximum,
        )
        target.add_resource_dependency(self.endpoint)
        policy = autoscaling.CfnScalingPolicy(
            self,
            "InvocationsPerInstance",
            policy_name=f"{self.endpoint_name}-invocations-per-instance",
            policy_type="TargetTrackingScaling",
            scaling_target_id=target.ref,
            target_tracking_scaling_policy_configuration=autoscaling.CfnScalingPolicy.TargetTrackingScalingPolicyConfigurationProperty(
                target_value=float(options.invocations_per_instance),
                predefined_metric_specification=autoscaling.CfnScalingPolicy.PredefinedMetricSpecificationProperty(
                    predefined_metric_type="SageMakerVariantInvocationsPerInstance"
                ),
                scale_in_cooldown=600,
                scale_out_cooldown=120,
            ),
        )
        self.scalable_target, self.scaling_policy = target, policy


def _metadata_value(text: str) -> str:
    """A model package metadata value: letters, digits, spaces and ``_.:/=+-@``, 256 at most
    (the ``CustomerMetadataProperties`` pattern)."""
    text = text.replace(">=", "at least").replace("<", "below").replace(">", "above")
    return "".join(c if c.isalnum() or c in " _.:/=+-@" else " " for c in text)[:256]


def _nag_arn(arn: str, stack: Stack) -> str:
    """An ARN as cdk-nag spells it in finding ids (``<AWS::Region>`` for pseudo parameters)."""
    resolved: Any = stack.resolve(arn)
    if isinstance(resolved, str):
        return resolved
    parts = resolved["Fn::Join"][1]

    def spelled(part: Any) -> str:
        if isinstance(part, str):
            return part
        if "Fn::GetAtt" in part:
            return "<{}.{}>".format(*part["Fn::GetAtt"])
        return f"<{part['Ref']}>"

    return "".join(spelled(part) for part in parts)
