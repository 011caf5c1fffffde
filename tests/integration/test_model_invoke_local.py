"""The real model-invoke handler on moto, with the local mode's SageMaker bridge serving the
endpoint from ``models/invoice-anomaly/artifacts/model`` in-process (CPU)."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import numpy as np
import pytest
from moto import mock_aws

from aios.config import EnvVar, settings
from aios.errors import ModelUnavailable, ValidationFailed
from functions.model_invoke import handler as model_invoke
from infrastructure.local import bridges as sagemaker_bridge
from infrastructure.local.bridges import install_sagemaker_bridge, served_model

MODEL_ROOT = Path(__file__).resolve().parents[2] / "models" / "invoice-anomaly"
ENDPOINT = "aios-dev-invoice-anomaly"
REGION = "eu-west-1"

pytestmark = pytest.mark.skipif(
    not (sagemaker_bridge.serving.MODEL_DIR / "model.npz").is_file(),
    reason="model artifacts missing: run `make model`",
)


@dataclass
class LambdaContext:
    function_name: str = "model-invoke"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:model-invoke"
    aws_request_id: str = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("invoice_anomaly_generate", MODEL_ROOT / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while decorating
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dataset() -> Any:
    return _generator().generate(2_000, seed=20250101)


@pytest.fixture
def model_version() -> str:
    return str(
        json.loads((sagemaker_bridge.serving.MODEL_DIR / "metadata.json").read_text())["model_version"]
    )


@pytest.fixture
def local_aws(monkeypatch: pytest.MonkeyPatch, model_version: str) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_SERVICE_NAME": "model-invoke",
        "POWERTOOLS_METRICS_NAMESPACE": "aios",
        EnvVar.MODEL_ENDPOINT.value: ENDPOINT,
        EnvVar.MODEL_VERSION.value: model_version,
        EnvVar.CIRCUIT_TABLE.value: "aios-dev-circuit",
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
        install_sagemaker_bridge()
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
    result = model_invoke.handler(_event(invoices), LambdaContext())
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
        PrimaryContainer={"Image": "pytorch-inference:2.6-cpu-py312"},
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
    result = model_invoke.handler(_event(dataset.invoices[:3]), LambdaContext())
    assert {s["variant"] for s in result["scores"]} == {"blue"}


def test_a_big_batch_is_split_into_several_calls(local_aws: None, dataset: Any) -> None:
    # Given a request limit that holds 300 invoices (the endpoint's real one holds 10 000)
    model_invoke.endpoint().max_rows = 300
    # When 1 000 invoices are scored
    result = model_invoke.handler(_event(dataset.invoices[:1000]), LambdaContext())
    # Then four calls carry them and every invoice gets its own score, in order
    assert result["invocations"] == 4 == len(served_model().invocations)
    assert [s["business_key"] for s in result["scores"]] == [f"erp:INV-{i}" for i in range(1000)]


def test_a_model_failure_is_model_unavailable(
    local_aws: None, dataset: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a model container that fails (the toolkit answers 500)
    inference = served_model().inference

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("CUDA error: device-side assert triggered")

    monkeypatch.setattr(inference, "predict_fn", broken)
    # When the handler is invoked, then Model.Unavailable is raised for the workflow to retry
    with pytest.raises(ModelUnavailable) as raised:
        model_invoke.handler(_event(dataset.invoices[:5]), LambdaContext())
    assert type(raised.value).__name__ == "Model.Unavailable"
    assert served_model().invocations[-1].status == 500


def test_a_request_the_model_rejects_is_validation_failed(local_aws: None) -> None:
    # Invoices without the model's fields (the function's own validation bypassed)
    endpoint = model_invoke.endpoint()
    body = b"[" + b",".join([b"{}"] * 3) + b"]"
    with pytest.raises(ValidationFailed):
        endpoint.invoke(body, rows=3)  # missing fields: the container answers 400
    assert served_model().invocations[-1].status == 400
