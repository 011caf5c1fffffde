"""The models stack: Triton image, artifact and capture buckets, the model package version of the
built artifact, model from the approved version, blue/green endpoint per stage, autoscaling."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from infrastructure.constructs.model_serving import (
    IMAGE_VERSION,
    UnsupportedRegionError,
    has_local_storage,
    image_regions,
    newest_image_version,
    serving_image,
)
from infrastructure.iam.policy import Request, allows, evaluate, statements_of
from infrastructure.platform import PLATFORM, models
from infrastructure.platform.models import (
    INVOICE_ANOMALY,
    ModelArtifactMissingError,
    ServingChoice,
)
from infrastructure.platform.models import artifact_version as version_of
from tests.infrastructure.policy_contracts import ACCOUNT, PARTITION, REGION, DeployedPolicies
from tests.infrastructure.synth import Synthesized, synthesize

ENDPOINT = "aios-dev-invoice-anomaly"
STAGE_SERVING = INVOICE_ANOMALY.stages


def artifact_version() -> str:
    return version_of(INVOICE_ANOMALY)


REPO = Path(__file__).resolve().parents[2]


def _one(template: Template, resource_type: str) -> dict[str, Any]:
    resources = template.find_resources(resource_type)
    assert len(resources) == 1, resources
    properties: dict[str, Any] = next(iter(resources.values()))["Properties"]
    return properties


def _key_arn(synthesized: Synthesized) -> Any:
    return synthesized.stacks.models.resolve(synthesized.stacks.data.key.key_arn)


@pytest.fixture(scope="module")
def overridden(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Synthesized]:
    """The app as ``cdk synth -c stage=prod`` and ``-c modelInstanceType=ml.g5.12xlarge`` would
    synthesize it (cdk-nag enforced)."""
    return {
        "prod": synthesize(tmp_path_factory.mktemp("cdk.out"), context={"stage": "prod"}),
        "gpu": synthesize(
            tmp_path_factory.mktemp("cdk.out"), context={"modelInstanceType": "ml.g5.12xlarge"}
        ),
    }


def _resolved(synthesized: Synthesized) -> DeployedPolicies:
    return DeployedPolicies(synthesized.templates())


# -- serving image and regions ------------------------------------------------------------------


def test_no_torchserve_image_anywhere_and_the_container_is_triton(synthesized: Synthesized) -> None:
    text = json.dumps(synthesized.templates())
    assert "pytorch-inference" not in text and "SAGEMAKER_TS_" not in text and "SAGEMAKER_PROGRAM" not in text
    mapping = synthesized.templates()["aios-dev-models"]["Mappings"]["ServingImages"]
    assert {entry["uri"].rsplit("/", 1)[1] for entry in mapping.values()} == {
        f"sagemaker-tritonserver:{IMAGE_VERSION}-py3-cpu"
    }


def test_the_pinned_triton_release_is_the_newest_the_sdk_knows() -> None:
    assert newest_image_version() == IMAGE_VERSION


def test_every_region_of_the_image_is_mapped_and_others_are_refused_before_deploy(
    synthesized: Synthesized,
) -> None:
    template = synthesized.templates()["aios-dev-models"]
    assert set(template["Mappings"]["ServingImages"]) == set(image_regions())
    assert {"eu-west-1", "us-east-1", "ap-southeast-2"} <= set(image_regions())
    (assertion,) = template["Rules"]["ServingImageRegion"]["Assertions"]
    regions, region = assertion["Assert"]["Fn::Contains"]
    assert set(regions) == set(image_regions()) and region == {"Ref": "AWS::Region"}
    assert "is not published in" in assertion["AssertDescription"]


def test_a_region_without_the_image_fails_at_synth_with_a_clear_message() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "s", env=cdk.Environment(account=ACCOUNT, region="xx-nowhere-1"))
    with pytest.raises(
        UnsupportedRegionError, match="not published in xx-nowhere-1; deploy the models stack to one of"
    ):
        serving_image(stack, "ml.c6i.large")
    known = cdk.Stack(app, "k", env=cdk.Environment(account=ACCOUNT, region="eu-west-1"))
    serving_image(known, "ml.c6i.large")  # a region of the image: fine


def test_gpu_instances_get_the_gpu_image_and_the_gpu_config(overridden: dict[str, Synthesized]) -> None:
    gpu = overridden["gpu"]
    mapping = gpu.templates()["aios-dev-models"]["Mappings"]["ServingImages"]
    assert mapping["eu-west-1"]["uri"].endswith(f"/sagemaker-tritonserver:{IMAGE_VERSION}-py3")
    config = _published_config(gpu)
    assert "kind: KIND_GPU" in config and "count: 1" in config


# -- artifact, registry, model ------------------------------------------------------------------


def _published(synthesized: Synthesized) -> tuple[dict[str, Any], Path]:
    """The BucketDeployment custom resource and its source asset folder/zip."""
    deployment = _one(synthesized.models, "Custom::CDKBucketDeployment")
    manifest = json.loads((synthesized.outdir / "aios-dev-models.assets.json").read_text())
    key = deployment["SourceObjectKeys"][0]
    (asset,) = [
        f for f in manifest["files"].values() if next(iter(f["destinations"].values()))["objectKey"] == key
    ]
    return deployment, synthesized.outdir / asset["source"]["path"]


def _published_config(synthesized: Synthesized) -> str:
    _, source = _published(synthesized)
    tarball = (
        (source / "model.tar.gz").read_bytes()
        if source.is_dir()
        else zipfile.ZipFile(source).read("model.tar.gz")
    )
    with tarfile.open(fileobj=io.BytesIO(tarball)) as tar:
        member = tar.extractfile("invoice-anomaly/config.pbtxt")
        assert member is not None
        return member.read().decode()


def test_the_artifact_is_published_to_the_platforms_bucket_not_the_bootstrap_bucket(
    synthesized: Synthesized,
) -> None:
    deployment, _ = _published(synthesized)
    policies = _resolved(synthesized)
    destination = policies.resolve("aios-dev-models", deployment["DestinationBucketName"])
    assert destination == f"aios-dev-model-artifacts-{ACCOUNT}-{REGION}"
    assert deployment["DestinationBucketKeyPrefix"] == f"invoice-anomaly/{artifact_version()}/cpu/"
    assert deployment.get("Prune") is False
    assert "KIND_CPU" in _published_config(synthesized)
    package = _one(synthesized.models, "AWS::SageMaker::ModelPackage")
    (container,) = package["InferenceSpecification"]["Containers"]
    url = policies.resolve("aios-dev-models", container["ModelDataUrl"])
    assert url == f"s3://{destination}/invoice-anomaly/{artifact_version()}/cpu/model.tar.gz"
    assert "cdk-" not in json.dumps(_one(synthesized.models, "AWS::SageMaker::Model"))


def test_the_built_artifact_is_an_approved_package_version_with_its_metrics(synthesized: Synthesized) -> None:
    version = artifact_version()
    entry = models.approved_package(INVOICE_ANOMALY, version)
    package = _one(synthesized.models, "AWS::SageMaker::ModelPackage")
    assert package["ModelApprovalStatus"] == "Approved" == entry["approval_status"]
    properties = package["CustomerMetadataProperties"]
    assert properties["aios:model-version"] == version
    assert float(properties["aios:metric:roc_auc"]) >= 0.98
    assert float(properties["aios:metric:precision_at_review_rate"]) >= 0.75
    statistics = package["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics["ContentType"] == "application/json"
    policies = _resolved(synthesized)
    assert policies.resolve("aios-dev-models", statistics["S3Uri"]).endswith(f"/{version}/cpu/metrics.json")
    (container,) = package["InferenceSpecification"]["Containers"]
    assert container["Environment"] == {"SAGEMAKER_TRITON_DEFAULT_MODEL_NAME": "invoice-anomaly"}
    assert (
        "application/vnd.sagemaker-triton.binary+json"
        in package["InferenceSpecification"]["SupportedContentTypes"]
    )
    # Versions outlive a replacement: the registry keeps every deployed artifact
    (resource,) = synthesized.models.find_resources("AWS::SageMaker::ModelPackage").values()
    assert resource["DeletionPolicy"] == "Retain"
    group = _one(synthesized.models, "AWS::SageMaker::ModelPackageGroup")
    assert group["ModelPackageGroupName"] == ENDPOINT
    assert {"Key": "aios:model-version", "Value": version} in group["Tags"]


def test_the_endpoint_deploys_the_approved_package_version(synthesized: Synthesized) -> None:
    model = _one(synthesized.models, "AWS::SageMaker::Model")
    (package_id,) = synthesized.models.find_resources("AWS::SageMaker::ModelPackage")
    assert model["PrimaryContainer"] == {"ModelPackageName": {"Fn::GetAtt": [package_id, "ModelPackageArn"]}}
    assert model["EnableNetworkIsolation"] is True
    assert {"Key": "aios:model-version", "Value": artifact_version()} in _one(
        synthesized.models, "AWS::SageMaker::Endpoint"
    )["Tags"]


def test_synth_refuses_an_artifact_the_gate_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models.serving(INVOICE_ANOMALY), "approved_entry", lambda _version: None)
    with pytest.raises(ModelArtifactMissingError, match="approved versions only"):
        models.approved_package(INVOICE_ANOMALY, "f" * 12)


def test_synth_without_the_artifact_says_how_to_build_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(
        models.serving(INVOICE_ANOMALY), "MODEL_TARBALLS", {"gpu": tmp_path / "a", "cpu": tmp_path / "b"}
    )
    with pytest.raises(ModelArtifactMissingError, match="make model"):
        models.model_tarball(INVOICE_ANOMALY, "cpu")


# -- execution role, evaluated ---------------------------------------------------------------------


def _execution_role(synthesized: Synthesized) -> list[dict[str, Any]]:
    policies = _resolved(synthesized)
    roles = synthesized.models.find_resources(
        "AWS::IAM::Role",
        {
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Statement": [Match.object_like({"Principal": {"Service": "sagemaker.amazonaws.com"}})]
                }
            }
        },
    )
    (role,) = roles.values()
    return [
        statement
        for policy in role["Properties"]["Policies"]
        for statement in statements_of(policies.resolve("aios-dev-models", policy["PolicyDocument"]))
    ]


def test_execution_role_can_pull_the_image_and_read_only_its_artifact(synthesized: Synthesized) -> None:
    statements = _execution_role(synthesized)
    repository = f"arn:{PARTITION}:ecr:{REGION}:763104351884:repository/sagemaker-tritonserver"
    artifacts = f"aios-dev-model-artifacts-{ACCOUNT}-{REGION}"
    version = artifact_version()
    can = lambda action, resource: allows(statements, Request(action=action, resource=resource))  # noqa: E731
    # https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html#sagemaker-roles-createmodel-perms:
    # the token action on "*", the pull actions on the image's repository
    assert can("ecr:GetAuthorizationToken", "*")
    for action in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"):
        assert can(action, repository)
        assert not can(action, f"arn:{PARTITION}:ecr:{REGION}:763104351884:repository/pytorch-inference")
    assert can("s3:GetObject", f"arn:aws:s3:::{artifacts}/invoice-anomaly/{version}/cpu/model.tar.gz")
    assert not can("s3:GetObject", f"arn:aws:s3:::{artifacts}/invoice-anomaly/000000000000/cpu/model.tar.gz")
    assert not can("s3:GetObject", f"arn:aws:s3:::aios-dev-documents-{ACCOUNT}-{REGION}/anything")
    capture = f"aios-dev-model-capture-{ACCOUNT}-{REGION}"
    assert can("s3:PutObject", f"arn:aws:s3:::{capture}/invoice-anomaly/AllTraffic/2026/01/01/00/x.jsonl")
    assert not can("s3:GetObject", f"arn:aws:s3:::{capture}/invoice-anomaly/x")
    assert not can("s3:PutObject", f"arn:aws:s3:::aios-dev-documents-{ACCOUNT}-{REGION}/model-capture/x")
    star = [s for s in statements if s["Resource"] in ("*", ["*"])]
    assert [s["Action"] for s in star] in (["ecr:GetAuthorizationToken"], [["ecr:GetAuthorizationToken"]])


# -- data capture --------------------------------------------------------------------------------


def test_data_capture_has_its_own_bucket_that_nothing_reads(synthesized: Synthesized) -> None:
    policies = _resolved(synthesized)
    capture = _one(synthesized.models, "AWS::SageMaker::EndpointConfig")["DataCaptureConfig"]
    assert capture["EnableCapture"] is True and capture["KmsKeyId"] == _key_arn(synthesized)
    assert {option["CaptureMode"] for option in capture["CaptureOptions"]} == {"Input", "Output"}
    bucket = f"aios-dev-model-capture-{ACCOUNT}-{REGION}"
    assert (
        policies.resolve("aios-dev-models", capture["DestinationS3Uri"]) == f"s3://{bucket}/invoice-anomaly"
    )
    assert "documents" not in json.dumps(synthesized.templates()["aios-dev-models"]["Resources"])
    # The bucket's own policy denies every read, whoever asks (the documents connectors included)
    (stack, _, bucket_policy) = next(
        (s, lid, r)
        for s, lid, r in policies.resources("AWS::S3::BucketPolicy")
        if policies.resolve(s, r["Properties"]["Bucket"]) == bucket
    )
    statements = statements_of(policies.resolve(stack, bucket_policy["Properties"]["PolicyDocument"]))
    reader = {"AWS": f"arn:aws:iam::{ACCOUNT}:role/aios-dev-documents-connector"}
    read = Request(
        action="s3:GetObject",
        resource=f"arn:aws:s3:::{bucket}/invoice-anomaly/x",
        principal=reader,
        context={"aws:SecureTransport": "true"},
    )
    assert evaluate(statements, read) == "ExplicitDeny"
    buckets = {
        policies.resolve("aios-dev-models", {"Ref": lid}): r
        for lid, r in synthesized.models.find_resources("AWS::S3::Bucket").items()
    }
    rules = buckets[bucket]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert any(rule.get("ExpirationInDays") == 30 for rule in rules)
    encryption = buckets[bucket]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"


# -- per-stage instances and rollouts --------------------------------------------------------------


def test_each_stage_defaults_to_its_choice(
    synthesized: Synthesized, overridden: dict[str, Synthesized]
) -> None:
    for synth, stage in ((synthesized, "dev"), (overridden["prod"], "prod")):
        (variant,) = _one(synth.models, "AWS::SageMaker::EndpointConfig")["ProductionVariants"]
        assert variant["InstanceType"] == STAGE_SERVING[stage].instance_type
        assert variant["InitialInstanceCount"] == STAGE_SERVING[stage].instance_count
    # The 15 KB model serves on CPU by default; a GPU instance is one context value away
    assert not any(choice.is_gpu for choice in STAGE_SERVING.values())
    (variant,) = _one(overridden["gpu"].models, "AWS::SageMaker::EndpointConfig")["ProductionVariants"]
    assert variant["InstanceType"] == "ml.g5.12xlarge"


def _cost() -> Any:
    spec = importlib.util.spec_from_file_location("aios_bench_cost", REPO / "bench" / "cost.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while decorating
    spec.loader.exec_module(module)
    return module


def test_stage_defaults_are_the_cost_tables_choice() -> None:
    # The default instance of each stage is the cheapest one the table finds covering the peak
    cost = _cost()
    for stage, choice in STAGE_SERVING.items():
        assert cost.cheapest(choice.instance_count).name == choice.instance_type, stage
    # and a 4-GPU instance costs many times the default for a dev stage (issue 10)
    big = next(i for i in cost.CANDIDATES if i.name == "ml.g5.12xlarge")
    default = next(i for i in cost.CANDIDATES if i.name == STAGE_SERVING["dev"].instance_type)
    assert cost.endpoint_cost_per_day(big, 1) > 40 * cost.endpoint_cost_per_day(default, 1)
    assert {row.invoices_per_day for row in cost.table(1)} == {1_000, 10_000, 1_000_000}


def test_rollouts_canary_only_with_two_instances(
    synthesized: Synthesized, overridden: dict[str, Synthesized]
) -> None:
    dev = _one(synthesized.models, "AWS::SageMaker::Endpoint")["DeploymentConfig"]
    assert dev["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "ALL_AT_ONCE"
    assert len(dev["AutoRollbackConfiguration"]["Alarms"]) == 2
    prod = _one(overridden["prod"].models, "AWS::SageMaker::Endpoint")["DeploymentConfig"]
    routing = prod["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    (variant,) = _one(overridden["prod"].models, "AWS::SageMaker::EndpointConfig")["ProductionVariants"]
    # https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green-canary.html:
    # the canary is at most half the fleet
    assert routing["Type"] == "CANARY" and routing["CanarySize"]["Type"] == "INSTANCE_COUNT"
    assert 2 * routing["CanarySize"]["Value"] <= variant["InitialInstanceCount"]
    assert len(prod["AutoRollbackConfiguration"]["Alarms"]) == 2
    assert ServingChoice("ml.c6i.large", 1).traffic == "ALL_AT_ONCE"
    assert ServingChoice("ml.c6i.large", 2).traffic == "CANARY"


def test_storage_key_only_where_aws_accepts_one(
    synthesized: Synthesized, overridden: dict[str, Synthesized]
) -> None:
    # g5 has hardware-encrypted local NVMe storage: CreateEndpointConfig rejects a KmsKeyId.
    assert has_local_storage("ml.g5.12xlarge") and not has_local_storage("ml.c6i.large")
    assert "KmsKeyId" not in _one(overridden["gpu"].models, "AWS::SageMaker::EndpointConfig")
    assert _one(synthesized.models, "AWS::SageMaker::EndpointConfig")["KmsKeyId"] == _key_arn(synthesized)


def test_rollback_alarms_exist_and_watch_the_variant(synthesized: Synthesized) -> None:
    endpoint = _one(synthesized.models, "AWS::SageMaker::Endpoint")
    assert endpoint["EndpointName"] == ENDPOINT
    alarms = synthesized.models.find_resources("AWS::CloudWatch::Alarm")
    rollback = endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    assert {alarm["AlarmName"]["Ref"] for alarm in rollback} == set(alarms)
    by_metric = {alarm["Properties"]["MetricName"]: alarm["Properties"] for alarm in alarms.values()}
    assert set(by_metric) == {"Invocation5XXErrors", "ModelLatency"}
    for alarm in by_metric.values():
        assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {
            "EndpointName": ENDPOINT,
            "VariantName": "AllTraffic",
        }


def test_autoscaling_never_goes_below_the_rollout_fleet(overridden: dict[str, Synthesized]) -> None:
    target = _one(overridden["prod"].models, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert target["ResourceId"] == "endpoint/aios-prod-invoice-anomaly/variant/AllTraffic"
    assert 2 <= target["MinCapacity"] <= target["MaxCapacity"]


@pytest.mark.skipif(
    "model-invoke" not in {f.name for f in PLATFORM.functions},
    reason="model-invoke is not in the platform description",
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
