"""The real model-invoke handler on moto, with the local mode's SageMaker bridge serving the
endpoint from ``models/invoice_anomaly/artifacts/model`` (the Triton model repository of
``model.tar.gz``) through onnxruntime, in-process (CPU), with Triton's request contract."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import onnxruntime  # type: ignore[import-untyped]
import pytest
from moto import mock_aws

from aios.anomaly_features import feature_rows
from aios.config import settings, variable
from aios.errors import ModelUnavailable, ValidationFailed
from aios.scoring import lineage_fields
from functions.model_invoke import handler as model_invoke
from infrastructure.local import sagemaker as sagemaker_bridge
from infrastructure.local.sagemaker import install_sagemaker_bridge, served_model
from infrastructure.platform.models import INVOICE_ANOMALY
from models.invoice_anomaly import generate, serving
from tests.integration.moto_env import fake_aws_environment
from tests.lambda_context import LambdaContext

ENDPOINT = "aios-dev-invoice-anomaly"
REGION = "eu-west-1"

MODEL = serving.MODEL_DIR / serving.TRITON_MODEL
pytestmark = pytest.mark.skipif(
    not (MODEL / "config.pbtxt").is_file(), reason="model artifacts missing: run `make model`"
)


CONTEXT = LambdaContext(function_name="model-invoke")


@pytest.fixture(scope="module")
def dataset() -> Any:
    return generate.generate(2_000, seed=20250101)


@pytest.fixture
def model_version() -> str:
    return str(json.loads((MODEL / "metadata.json").read_text())["model_version"])


@pytest.fixture
def local_aws(monkeypatch: pytest.MonkeyPatch, model_version: str) -> Iterator[None]:
    for name, value in {
        **fake_aws_environment(REGION),
        "POWERTOOLS_SERVICE_NAME": "model-invoke",
        "POWERTOOLS_METRICS_NAMESPACE": "aios",
        variable("model_endpoint"): ENDPOINT,
        variable("model_version"): model_version,
        variable("circuit_table"): "aios-dev-circuit",
    }.items():
        monkeypatch.setenv(name, value)
    settings.cache_clear()
    model_invoke.endpoint.cache_clear()
    with mock_aws():
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName="aios-dev-circuit",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        install_sagemaker_bridge({ENDPOINT: INVOICE_ANOMALY})
        try:
            yield
        finally:
            sagemaker_bridge.uninstall_sagemaker_bridge()
            model_invoke.endpoint.cache_clear()
            settings.cache_clear()


def _event(invoices: list[dict[str, Any]]) -> dict[str, Any]:
    return {"items": [{"business_key": f"erp:INV-{i}", "invoice": inv} for i, inv in enumerate(invoices)]}


def test_a_batch_is_scored_with_the_model_version_and_variant(
    local_aws: None, dataset: Any, model_version: str
) -> None:
    # Given 500 generated invoices, about 5% of them planted anomalies
    invoices = dataset.invoices[:500]
    labels = dataset.labels[:500]
    # When the handler scores them
    result = model_invoke.handler(_event(invoices), CONTEXT)
    # Then every invoice has a score with its lineage, from one call
    assert result["invocations"] == 1 == len(served_model().invocations)
    scores = result["scores"]
    assert [s["business_key"] for s in scores] == [f"erp:INV-{i}" for i in range(500)]
    assert {(s["endpoint"], s["variant"], s["model_version"]) for s in scores} == {
        (ENDPOINT, "AllTraffic", model_version)
    }
    values = np.array([s["score"] for s in scores])
    # and anomalies score higher than clean invoices
    assert values[labels == 1].mean() > values[labels == 0].mean() + 0.5
    assert np.median(values[labels == 1]) > np.quantile(values[labels == 0], 0.95)


def test_the_variant_moto_knows_is_reported(local_aws: None, dataset: Any) -> None:
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sagemaker.create_model(
        ModelName="m",
        PrimaryContainer={"Image": "sagemaker-tritonserver:26.05-py3-cpu"},
        ExecutionRoleArn="arn:aws:iam::123456789012:role/m",
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="c",
        ProductionVariants=[
            {
                "VariantName": "blue",
                "ModelName": "m",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.c5.xlarge",
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="c")
    result = model_invoke.handler(_event(dataset.invoices[:3]), CONTEXT)
    assert {s["variant"] for s in result["scores"]} == {"blue"}


def test_a_big_batch_is_split_into_several_calls(local_aws: None, dataset: Any) -> None:
    # Given a request limit that holds 300 invoices (the endpoint's real one holds 4096)
    model_invoke.endpoint().max_rows = 300
    # When 1 000 invoices are scored
    result = model_invoke.handler(_event(dataset.invoices[:1000]), CONTEXT)
    # Then four calls carry them and every invoice gets its own score, in order
    assert result["invocations"] == 4 == len(served_model().invocations)
    assert [s["business_key"] for s in result["scores"]] == [f"erp:INV-{i}" for i in range(1000)]


def test_a_model_failure_is_model_unavailable(
    local_aws: None, dataset: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a model whose backend fails (Triton answers 500)
    def broken(_inputs: Any) -> Any:
        raise RuntimeError("CUDA error: device-side assert triggered")

    monkeypatch.setattr(served_model(), "run", broken)
    # When the handler is invoked, then Model.Unavailable is raised for the workflow to retry
    with pytest.raises(ModelUnavailable) as raised:
        model_invoke.handler(_event(dataset.invoices[:5]), CONTEXT)
    assert type(raised.value).__name__ == "Model.Unavailable"
    assert served_model().invocations[-1].status == 500


def test_a_request_the_model_rejects_is_validation_failed_with_tritons_message(local_aws: None) -> None:
    # Given a tensor of the wrong width (the function's own encoding bypassed)
    endpoint = model_invoke.endpoint()
    header = json.dumps(
        {"inputs": [{"name": "features", "shape": [3, 14], "datatype": "FP32", "data": [0.0] * 42}]}
    ).encode()
    # When it is sent, then the container answers 400 and the message names the tensor
    with pytest.raises(ValidationFailed) as raised:
        endpoint.invoke_raw(header, content_type="application/json", rows=3)
    assert served_model().invocations[-1].status == 400
    assert "unexpected shape for input 'features'" in str(raised.value)
    assert "Expected [-1,15], got [3,14]" in str(raised.value)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            {"name": "x", "shape": [1, 15], "datatype": "FP32", "data": [0.0] * 15},
            "unexpected inference input 'x'",
        ),
        (
            {"name": "features", "shape": [1, 15], "datatype": "FP64", "data": [0.0] * 15},
            "data-type is 'FP64'",
        ),
        (
            {"name": "features", "shape": [5000, 15], "datatype": "FP32", "data": [0.0] * 75000},
            "batch-size must be <= 4096",
        ),
        (
            {"name": "features", "shape": [2, 15], "datatype": "FP32", "parameters": {"binary_data_size": 8}},
            "unexpected size",
        ),
    ],
)
def test_triton_rejections(local_aws: None, item: dict[str, Any], message: str) -> None:
    body = json.dumps({"inputs": [item]}).encode()
    with pytest.raises(ValidationFailed) as raised:
        model_invoke.endpoint().invoke_raw(body, content_type="application/json", rows=1)
    assert message in str(raised.value)


def test_binary_and_json_paths_give_the_same_scores(local_aws: None, dataset: Any) -> None:
    # Given the same invoices sent as binary tensors (the default) and as JSON tensors
    binary = model_invoke.handler(_event(dataset.invoices[:50]), CONTEXT)
    model_invoke.endpoint().encoding = "json"
    text = model_invoke.handler(_event(dataset.invoices[:50]), CONTEXT)
    # Then the endpoint saw both content types and scored identically
    kinds = {call.content_type.split(";")[0] for call in served_model().invocations}
    assert kinds == {"application/vnd.sagemaker-triton.binary+json", "application/json"}
    assert [s["score"] for s in text["scores"]] == pytest.approx(
        [s["score"] for s in binary["scores"]], abs=1e-6
    )


def test_the_scores_are_the_evaluated_models(local_aws: None, dataset: Any) -> None:
    # The endpoint answers with the ONNX file evaluate.py measured, on the shared features.
    session = onnxruntime.InferenceSession(str(next(MODEL.glob("*/model.onnx"))))
    expected = session.run(
        ["score"], {"features": np.asarray(feature_rows(dataset.invoices[:20]), np.float32)}
    )
    result = model_invoke.handler(_event(dataset.invoices[:20]), CONTEXT)
    assert [s["score"] for s in result["scores"]] == pytest.approx(expected[0].reshape(-1).tolist(), abs=1e-6)


def test_the_registry_holds_the_built_version_and_lineage_names_it(
    local_aws: None, dataset: Any, model_version: str
) -> None:
    # Given the local registry written by build.py, registered in moto's SageMaker
    group = "aios-dev-invoice-anomaly"
    sagemaker_bridge.register_model_packages(
        boto3.client("sagemaker", region_name=REGION), group_name=group, model=INVOICE_ANOMALY
    )
    client = boto3.client("sagemaker", region_name=REGION)
    packages = client.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
    described = [client.describe_model_package(ModelPackageName=p["ModelPackageArn"]) for p in packages]
    approved = [d for d in described if d["ModelApprovalStatus"] == "Approved"]
    # Then the deployed artifact is an approved version with its metrics
    (package,) = [
        d for d in approved if d["CustomerMetadataProperties"]["aios:model-version"] == model_version
    ]
    assert float(package["CustomerMetadataProperties"]["aios:metric:roc_auc"]) >= 0.98
    assert float(package["CustomerMetadataProperties"]["aios:metric:precision_at_review_rate"]) >= 0.75
    # And a score's lineage names that version
    result = model_invoke.handler(_event(dataset.invoices[:2]), CONTEXT)
    assert lineage_fields(result)["model_version"] == model_version


def test_the_local_mode_refuses_a_config_that_disagrees_with_the_model(tmp_path: Path) -> None:
    # Given the built repository with config.pbtxt expecting 14 features
    repository = tmp_path / "model"
    shutil.copytree(serving.MODEL_DIR, repository)
    config = repository / serving.TRITON_MODEL / "config.pbtxt"
    config.write_text(config.read_text().replace("dims: [ 15 ]", "dims: [ 14 ]"))
    # When the bridge loads it, then it fails as Triton would at load, naming the tensor
    with pytest.raises(ValueError, match="input features: dims"):
        _ = sagemaker_bridge.ServedModel(repository, serving).config


def test_registering_twice_adds_no_version(local_aws: None) -> None:
    client = boto3.client("sagemaker", region_name=REGION)
    first = sagemaker_bridge.register_model_packages(client, group_name="g", model=INVOICE_ANOMALY)
    assert len(first) == len(serving.registry_entries()) >= 1
    assert sagemaker_bridge.register_model_packages(client, group_name="g", model=INVOICE_ANOMALY) == []
    assert len(client.list_model_packages(ModelPackageGroupName="g")["ModelPackageSummaryList"]) == len(first)


def test_each_endpoint_serves_its_own_model_and_an_unknown_one_is_not_found(
    local_aws: None, dataset: Any, tmp_path: Path
) -> None:
    # Given a second endpoint mapped to its own copy of the repository
    repository = tmp_path / "model"
    shutil.copytree(serving.MODEL_DIR, repository)
    other = sagemaker_bridge.ServedModel(repository, serving)
    install_sagemaker_bridge({ENDPOINT: INVOICE_ANOMALY, "aios-dev-vendor-risk": other})
    runtime = boto3.client("sagemaker-runtime", region_name=REGION)
    body = json.dumps(
        {
            "inputs": [
                {
                    "name": serving.INPUT_NAME,
                    "datatype": "FP32",
                    "shape": [1, 15],
                    "data": feature_rows(dataset.invoices[:1])[0],
                }
            ]
        }
    )
    # When each is invoked, then each records its own call
    for endpoint in (ENDPOINT, "aios-dev-vendor-risk"):
        runtime.invoke_endpoint(EndpointName=endpoint, ContentType="application/json", Body=body)
    assert [len(served_model(e).invocations) for e in (ENDPOINT, "aios-dev-vendor-risk")] == [1, 1]
    assert served_model("aios-dev-vendor-risk") is other
    # And an endpoint no model maps to is SageMaker's ValidationError, not a canned answer
    with pytest.raises(runtime.exceptions.ClientError) as raised:
        runtime.invoke_endpoint(EndpointName="aios-dev-nothing", ContentType="application/json", Body=body)
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert "Endpoint aios-dev-nothing of account" in raised.value.response["Error"]["Message"]
