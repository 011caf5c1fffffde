"""SageMaker serving of the invoice anomaly model: registry group, model, endpoint config,
blue/green endpoint with alarm-driven rollback, and autoscaling.

The serving image is the SageMaker PyTorch inference image, resolved at synth by the SageMaker
SDK for every region in ``IMAGE_REGIONS`` into a ``CfnMapping``; the template picks the entry
of the region it is deployed to, so the stack stays environment-agnostic.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from aws_cdk import Aws, CfnMapping, CfnTag, Duration, Fn, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct
from pydantic import BaseModel, ConfigDict, Field

from infrastructure.constructs.log_groups import encrypted_log_group
from infrastructure.nag import acknowledge
from infrastructure.platform.models import MODEL_NAME, model_tarball, serving
from infrastructure.settings import DeploymentSettings

#: The serving image: SageMaker PyTorch inference, the last PyTorch release AWS publishes for it
#: (models/invoice-anomaly/README.md, "Serving stack decision").
IMAGE_FRAMEWORK = "pytorch"
IMAGE_VERSION = "2.6"
IMAGE_PY_VERSION = "py312"
IMAGE_REPOSITORY = "pytorch-inference"
#: Commercial regions with SageMaker hosting; a deployment elsewhere fails at FindInMap.
IMAGE_REGIONS: tuple[str, ...] = (
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "sa-east-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-east-1",
    "me-south-1",
    "me-central-1",
    "af-south-1",
    "il-central-1",
)
VARIANT = "AllTraffic"
CAPTURE_PREFIX = f"model-capture/{MODEL_NAME}"
#: Instance families with local NVMe storage. AWS encrypts it in hardware and rejects an
#: endpoint config with ``KmsKeyId`` for them (CreateEndpointConfig API reference).
_LOCAL_STORAGE_FAMILIES = frozenset(
    {"g4dn", "g5", "g6", "g6e", "gr6", "p3dn", "p4d", "p4de", "p5", "p5e", "p5en", "trn1", "trn1n"}
)
_GPU_FAMILY_PREFIXES = ("g", "p")


class ServingOptions(BaseModel):
    """Optional CDK context (defaults in code; none of these keys is in cdk.json yet)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    capture_percent: int = Field(default=100, ge=1, le=100, alias="modelCapturePercent")
    min_instances: int | None = Field(default=None, ge=1, alias="modelMinInstances")
    max_instances: int | None = Field(default=None, ge=1, alias="modelMaxInstances")
    invocations_per_instance: int = Field(default=600, ge=1, alias="modelInvocationsPerInstance")
    latency_p99_ms: int = Field(default=2_000, ge=1, alias="modelLatencyP99Ms")
    canary_percent: int = Field(default=10, ge=1, le=50, alias="modelCanaryPercent")
    canary_wait_seconds: int = Field(default=600, ge=0, le=3600, alias="modelCanaryWaitSeconds")

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


def gpu_count(instance_type: str, settings: DeploymentSettings) -> int:
    """GPUs the container should use: the context's count on a GPU instance, else 0."""
    return settings.model_gpu_count if instance_family(instance_type).startswith(_GPU_FAMILY_PREFIXES) else 0


@cache
def image_uris(instance_type: str) -> dict[str, str]:
    """Region -> serving image URI (resolved offline by the SageMaker SDK; imported here only,
    since the import takes seconds)."""
    from sagemaker.core import image_uris as sdk  # type: ignore[import-untyped]  # noqa: PLC0415 - slow, synth only

    return {
        region: sdk.retrieve(
            framework=IMAGE_FRAMEWORK,
            region=region,
            version=IMAGE_VERSION,
            py_version=IMAGE_PY_VERSION,
            instance_type=instance_type,
            image_scope="inference",
        )
        for region in IMAGE_REGIONS
    }


@dataclass(frozen=True)
class ServingImage:
    """The image URI and its ECR repository ARN in the stack's region (tokens)."""

    uri: str
    repository_arn: str


def serving_image(scope: Construct, instance_type: str) -> ServingImage:
    stack = Stack.of(scope)
    mapping = CfnMapping(
        scope,
        "ServingImages",
        mapping={
            region: {"uri": uri, "registry": uri.split(".", 1)[0]}
            for region, uri in image_uris(instance_type).items()
        },
    )
    registry = mapping.find_in_map(Aws.REGION, "registry")
    return ServingImage(
        uri=mapping.find_in_map(Aws.REGION, "uri"),
        repository_arn=Fn.join(
            "", [f"arn:{stack.partition}:ecr:{stack.region}:", registry, f":repository/{IMAGE_REPOSITORY}"]
        ),
    )


class ModelRegistry(Construct):
    """The model package group of the model; its tag names the version deployed."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploymentSettings, model_version: str
    ) -> None:
        super().__init__(scope, construct_id)
        self.group = sagemaker.CfnModelPackageGroup(
            self,
            "Group",
            model_package_group_name=settings.name(MODEL_NAME),
            model_package_group_description=(
                "aios invoice anomaly scorer (models/invoice-anomaly); the deployed version is "
                "the aios:model-version tag"
            ),
            tags=[CfnTag(key="aios:model-version", value=model_version)],
        )


class ModelEndpoint(Construct):
    """Model, endpoint config (data capture, storage key), blue/green endpoint, alarms that
    roll a deployment back, and target-tracking autoscaling on invocations per instance."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        model_version: str,
        key: kms.IKey,
        capture_bucket: s3.IBucket,
        settings: DeploymentSettings,
        options: ServingOptions,
    ) -> None:
        super().__init__(scope, construct_id)
        self.endpoint_name = endpoint_name
        self.model_version = model_version
        instance_type = settings.model_instance_type
        image = serving_image(self, instance_type)
        artifact = s3_assets.Asset(self, "ModelData", path=str(model_tarball()))
        log_group = encrypted_log_group(
            self,
            "Logs",
            key=key,
            settings=settings,
            name=f"/aws/sagemaker/Endpoints/{endpoint_name}",
        )
        self.role = self._execution_role(
            image=image, artifact=artifact, log_group=log_group, key=key, capture_bucket=capture_bucket
        )
        version_tag = [CfnTag(key="aios:model-version", value=model_version)]

        environment = {
            **serving().serving_environment(gpu_count(instance_type, settings)),
            "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        }
        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image.uri,
                model_data_url=artifact.s3_object_url,
                environment=environment,
                mode="SingleModel",
            ),
            # No VPC: the container needs no network (torch and numpy are in the image,
            # code/requirements.txt is empty) and reaches no VPC resource; network isolation
            # denies it any outbound call. SageMaker itself fetches the artifact and image.
            # (cdk-nag 3.0.2's SM1-SM3 check notebook instances only: nothing to acknowledge.)
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
                    initial_instance_count=settings.model_instance_count,
                    initial_variant_weight=1.0,
                )
            ],
            # Instances with local NVMe storage (g5 among them) encrypt it in hardware, and
            # CreateEndpointConfig rejects a KmsKeyId for them; captured data is KMS-encrypted.
            kms_key_id=None if local_storage else key.key_arn,
            data_capture_config=sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
                enable_capture=True,
                initial_sampling_percentage=options.capture_percent,
                destination_s3_uri=f"s3://{capture_bucket.bucket_name}/{CAPTURE_PREFIX}",
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
                    traffic_routing_configuration=sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
                        type="CANARY",
                        canary_size=sagemaker.CfnEndpoint.CapacitySizeProperty(
                            type="CAPACITY_PERCENT", value=options.canary_percent
                        ),
                        wait_interval_in_seconds=options.canary_wait_seconds,
                    ),
                    termination_wait_in_seconds=300,
                    maximum_execution_timeout_in_seconds=3600,
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
        self._autoscaling(settings, options)

    @property
    def endpoint_arn(self) -> str:
        return self.endpoint.ref

    def _execution_role(
        self,
        *,
        image: ServingImage,
        artifact: s3_assets.Asset,
        log_group: logs.ILogGroup,
        key: kms.IKey,
        capture_bucket: s3.IBucket,
    ) -> iam.Role:
        """Least privilege: this artifact object, this image repository, this log group,
        the capture prefix, and the platform key."""
        capture_objects = capture_bucket.arn_for_objects(f"{CAPTURE_PREFIX}/*")
        policy = iam.PolicyDocument(
            statements=[
                iam.PolicyStatement(
                    sid="ModelArtifact",
                    actions=["s3:GetObject"],
                    resources=[artifact.bucket.arn_for_objects(artifact.s3_object_key)],
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
                iam.PolicyStatement(
                    sid="DataCapture",
                    actions=["s3:PutObject"],
                    resources=[capture_objects],
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
        stack = Stack.of(self)
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{_nag_arn(capture_objects, stack)}]",
            "data capture writes objects with generated names under the model's capture prefix only",
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

    def _autoscaling(self, settings: DeploymentSettings, options: ServingOptions) -> None:
        """Target tracking on invocations per instance; Application Auto Scaling uses its
        service-linked role for SageMaker (no RoleARN)."""
        from aws_cdk import aws_applicationautoscaling as autoscaling  # noqa: PLC0415

        minimum = options.min_instances or settings.model_instance_count
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


def _nag_arn(arn: str, stack: Stack) -> str:
    """An ARN as cdk-nag spells it in finding ids (``<AWS::Region>`` for pseudo parameters)."""
    resolved: Any = stack.resolve(arn)
    if isinstance(resolved, str):
        return resolved
    parts = resolved["Fn::Join"][1]
    return "".join(part if isinstance(part, str) else f"<{part['Ref']}>" for part in parts)
