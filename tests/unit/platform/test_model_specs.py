"""``ModelSpec`` and ``Platform.models``: what the description refuses before any renderer runs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from infrastructure.platform import PLATFORM
from infrastructure.platform.models import INVOICE_ANOMALY, MODEL_INVOKE, ServingChoice
from infrastructure.platform.spec import (
    FunctionSpec,
    ModelRolloutSpec,
    ModelSpec,
    Platform,
    StageServingSpec,
)

CPU = StageServingSpec(instance_type="ml.c6i.large", instance_count=1)
GPU = StageServingSpec(instance_type="ml.g5.xlarge", instance_count=1)


def _platform(**changes: object) -> Platform:
    return Platform.model_validate({**dict(PLATFORM), **changes})


def test_the_default_platform_declares_the_model_its_function_invokes() -> None:
    assert PLATFORM.model(MODEL_INVOKE.model or "") == INVOICE_ANOMALY
    assert [f.name for f in PLATFORM.functions if f.model] == ["model-invoke"]


def test_a_function_naming_an_unknown_model_is_refused_naming_both() -> None:
    scorer = FunctionSpec(name="vendor-score", description="d", code="model_invoke", model="vendor-risk")
    with pytest.raises(ValidationError, match=r"function vendor-score invokes unknown model vendor-risk"):
        _platform(functions=(*PLATFORM.functions, scorer))


def test_a_platform_without_models_refuses_model_invoke() -> None:
    with pytest.raises(ValidationError, match=r"function model-invoke invokes unknown model invoice-anomaly"):
        _platform(models=())


def test_a_model_declared_twice_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"model declared twice: \['invoice-anomaly'\]"):
        _platform(models=(INVOICE_ANOMALY, INVOICE_ANOMALY))


def test_every_stage_needs_a_serving_choice() -> None:
    with pytest.raises(ValidationError, match=r"model m-1 has no serving for stages \['prod'\]"):
        ModelSpec(name="m-1", description="d", package="models.invoice_anomaly", stages={"dev": CPU})


def test_a_cpu_only_model_refuses_a_gpu_instance() -> None:
    with pytest.raises(ValidationError, match=r"serves on CPU only; stage prod asks for ml.g5.xlarge"):
        ModelSpec(
            name="m-1",
            description="d",
            package="models.invoice_anomaly",
            stages={"dev": CPU, "prod": GPU},
            gpus="none",
        )
    # The anomaly model ships a GPU config too: a GPU stage is fine
    ModelSpec(name="m-1", description="d", package="models.invoice_anomaly", stages={"dev": CPU, "prod": GPU})


def test_the_package_must_be_importable_by_name() -> None:
    with pytest.raises(ValidationError, match="package"):
        ModelSpec(
            name="m-1", description="d", package="models/invoice-anomaly", stages={"dev": CPU, "prod": CPU}
        )


@pytest.mark.parametrize(
    ("canary", "instances", "traffic"),
    [(1, 1, "ALL_AT_ONCE"), (1, 2, "CANARY"), (2, 3, "ALL_AT_ONCE"), (2, 4, "CANARY")],
)
def test_a_canary_is_at_most_half_the_fleet(canary: int, instances: int, traffic: str) -> None:
    # https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green-canary.html
    assert ModelRolloutSpec(canary_instances=canary).traffic(instances) == traffic
    assert ServingChoice("ml.c6i.large", instances, canary_instances=canary).traffic == traffic
