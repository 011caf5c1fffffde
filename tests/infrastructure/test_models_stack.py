"""The models stack: registry group, model, endpoint config, blue/green endpoint, autoscaling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infrastructure.constructs.model_serving import IMAGE_REGIONS, has_local_storage
from infrastructure.platform import PLATFORM, models
from infrastructure.platform.models import ModelArtifactMissingError, artifact_version
from tests.infrastructure.synth import Synthesized, synthesize

ENDPOINT = "aios-dev-invoice-anomaly"


def _one(template: Template, resource_type: str) -> dict[str, Any]:
    resources = template.find_resources(resource_type)
    assert len(resources) == 1, resources
    properties: dict[str, Any] = next(iter(resources.values()))["Properties"]
    return properties


def _key_arn(synthesized: Synthesized) -> Any:
    return synthesized.stacks.models.resolve(synthesized.stacks.data.key.key_arn)


@pytest.fixture(scope="module")
def overridden(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Synthesized]:
    """The app synthesized as ``cdk synth -c modelInstanceType=...`` would (cdk-nag enforced)."""
    return {
        instance_type: synthesize(
            tmp_path_factory.mktemp("cdk.out"), context={"modelInstanceType": instance_type}
        )
        for instance_type in ("ml.g5.48xlarge", "ml.m5.4xlarge")
    }


def test_endpoint_config_uses_the_context_instance_type_and_count(synthesized: Synthesized) -> None:
    synthesized.models.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [
                Match.object_like(
                    {"InstanceType": "ml.g5.12xlarge", "InitialInstanceCount": 1, "VariantName": "AllTraffic"}
                )
            ]
        },
    )


def test_a_context_override_changes_the_instance_type(overridden: dict[str, Synthesized]) -> None:
    config = _one(overridden["ml.g5.48xlarge"].models, "AWS::SageMaker::EndpointConfig")
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.g5.48xlarge"


def test_storage_key_only_where_aws_accepts_one(
    synthesized: Synthesized, overridden: dict[str, Synthesized]
) -> None:
    # g5 has hardware-encrypted local NVMe storage: CreateEndpointConfig rejects a KmsKeyId.
    assert has_local_storage("ml.g5.12xlarge") and not has_local_storage("ml.m5.4xlarge")
    assert "KmsKeyId" not in _one(synthesized.models, "AWS::SageMaker::EndpointConfig")
    cpu = overridden["ml.m5.4xlarge"]
    assert _one(cpu.models, "AWS::SageMaker::EndpointConfig")["KmsKeyId"] == _key_arn(cpu)


def test_data_capture_goes_to_its_prefix_encrypted_with_the_platform_key(synthesized: Synthesized) -> None:
    capture = _one(synthesized.models, "AWS::SageMaker::EndpointConfig")["DataCaptureConfig"]
    assert capture["EnableCapture"] is True
    assert capture["InitialSamplingPercentage"] == 100
    assert capture["KmsKeyId"] == _key_arn(synthesized)
    assert {option["CaptureMode"] for option in capture["CaptureOptions"]} == {"Input", "Output"}
    destination = capture["DestinationS3Uri"]["Fn::Join"][1]
    assert destination[0] == "s3://aios-dev-documents-"
    assert destination[-1] == "/model-capture/invoice-anomaly"


def test_blue_green_canary_rolls_back_on_alarms_that_exist(synthesized: Synthesized) -> None:
    endpoint = _one(synthesized.models, "AWS::SageMaker::Endpoint")
    assert endpoint["EndpointName"] == ENDPOINT
    policy = endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    routing = policy["TrafficRoutingConfiguration"]
    assert routing["Type"] == "CANARY"
    assert routing["CanarySize"] == {"Type": "CAPACITY_PERCENT", "Value": 10}
    assert routing["WaitIntervalInSeconds"] > 0
    assert policy["MaximumExecutionTimeoutInSeconds"] >= 600
    assert "TerminationWaitInSeconds" in policy

    alarms = synthesized.models.find_resources("AWS::CloudWatch::Alarm")
    rollback = endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    referenced = {alarm["AlarmName"]["Ref"] for alarm in rollback}
    assert referenced == set(alarms)
    by_metric = {alarm["Properties"]["MetricName"]: alarm["Properties"] for alarm in alarms.values()}
    assert set(by_metric) == {"Invocation5XXErrors", "ModelLatency"}
    errors, latency = by_metric["Invocation5XXErrors"], by_metric["ModelLatency"]
    assert errors["Threshold"] == 0 and errors["ComparisonOperator"] == "GreaterThanThreshold"
    assert latency["ExtendedStatistic"] == "p99" and latency["Threshold"] > 0
    for alarm in (errors, latency):
        assert alarm["Namespace"] == "AWS/SageMaker"
        assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {
            "EndpointName": ENDPOINT,
            "VariantName": "AllTraffic",
        }


def test_autoscaling_tracks_invocations_per_instance(synthesized: Synthesized) -> None:
    target_id, target = next(
        iter(synthesized.models.find_resources("AWS::ApplicationAutoScaling::ScalableTarget").items())
    )
    properties = target["Properties"]
    assert properties["ResourceId"] == f"endpoint/{ENDPOINT}/variant/AllTraffic"
    assert properties["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert 1 <= properties["MinCapacity"] <= properties["MaxCapacity"]
    synthesized.models.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "ScalingTargetId": {"Ref": target_id},
            "TargetTrackingScalingPolicyConfiguration": Match.object_like(
                {
                    "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                    }
                }
            ),
        },
    )


def test_container_serves_on_every_gpu(synthesized: Synthesized, overridden: dict[str, Synthesized]) -> None:
    gpus = str(synthesized.stacks.models.node.try_get_context("modelGpuCount"))
    container = _one(synthesized.models, "AWS::SageMaker::Model")["PrimaryContainer"]
    environment = container["Environment"]
    assert environment["SAGEMAKER_PROGRAM"] == "inference.py"
    for variable in (
        "SAGEMAKER_MODEL_SERVER_WORKERS",
        "SAGEMAKER_TS_MIN_WORKERS",
        "SAGEMAKER_TS_MAX_WORKERS",
    ):
        assert environment[variable] == gpus
    cpu = _one(overridden["ml.m5.4xlarge"].models, "AWS::SageMaker::Model")["PrimaryContainer"]
    assert "SAGEMAKER_TS_MIN_WORKERS" not in cpu["Environment"]


def test_image_is_resolved_per_region_and_model_data_is_the_artifact(synthesized: Synthesized) -> None:
    template = synthesized.templates()["aios-dev-models"]
    (mapping_id, mapping) = next(iter(template["Mappings"].items()))
    assert set(mapping) == set(IMAGE_REGIONS)
    assert mapping["eu-west-1"]["uri"].endswith(".amazonaws.com/pytorch-inference:2.6-gpu-py312")
    container = _one(synthesized.models, "AWS::SageMaker::Model")["PrimaryContainer"]
    assert container["Image"] == {"Fn::FindInMap": [mapping_id, {"Ref": "AWS::Region"}, "uri"]}
    assert container["ModelDataUrl"]["Fn::Sub"].startswith("s3://cdk-")
    model = _one(synthesized.models, "AWS::SageMaker::Model")
    assert model["EnableNetworkIsolation"] is True


def test_the_deployed_version_is_recorded(synthesized: Synthesized) -> None:
    version = artifact_version()
    assert len(version) == 12 and int(version, 16) >= 0
    group = _one(synthesized.models, "AWS::SageMaker::ModelPackageGroup")
    assert group["ModelPackageGroupName"] == ENDPOINT
    assert {"Key": "aios:model-version", "Value": version} in group["Tags"]
    assert {"Key": "aios:model-version", "Value": version} in _one(
        synthesized.models, "AWS::SageMaker::Endpoint"
    )["Tags"]


def test_execution_role_reads_only_the_artifact_object(synthesized: Synthesized) -> None:
    role = _one(synthesized.models, "AWS::IAM::Role")
    statements = {s["Sid"]: s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]}
    artifact = statements["ModelArtifact"]
    assert artifact["Action"] == "s3:GetObject"
    assert artifact["Resource"]["Fn::Join"][1][-1].endswith(".gz")
    assert statements["DataCapture"]["Action"] == "s3:PutObject"
    assert statements["DataCapture"]["Resource"]["Fn::Join"][1][-1] == "/model-capture/invoice-anomaly/*"
    assert all(statement.get("Resource") != "*" for statement in statements.values())


def test_synth_without_the_artifact_says_how_to_build_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(models.serving(), "MODEL_TARBALL", tmp_path / "model.tar.gz")
    with pytest.raises(ModelArtifactMissingError, match="make model"):
        models.model_tarball()


@pytest.mark.skipif(
    "model-invoke" not in {f.name for f in PLATFORM.functions},
    reason="model-invoke is not in the platform description yet (see infrastructure/platform/models.py)",
)
def test_model_invoke_knows_the_endpoint_and_version_and_may_invoke_only_it(synthesized: Synthesized) -> None:
    synthesized.platform.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": "aios-dev-model-invoke",
            "Environment": {
                "Variables": Match.object_like(
                    {"AIOS_MODEL_ENDPOINT": ENDPOINT, "AIOS_MODEL_VERSION": artifact_version()}
                )
            },
        },
    )
    template = synthesized.templates()["aios-dev-platform"]
    invoke = [
        statement
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        if "sagemaker:InvokeEndpoint" in json.dumps(statement["Action"])
    ]
    assert len(invoke) == 1
    assert invoke[0]["Resource"]["Fn::Join"][1][-1] == f":endpoint/{ENDPOINT}"
