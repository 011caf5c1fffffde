"""The platform's served models, the functions that call them, and what a renderer reads from
a model's built artifact.

Each ``ModelSpec`` names an importable ML package (``models.invoice_anomaly``); its endpoint is
``aios-<stage>-<name>``, and its version is read at synth from the artifact the package's
``build`` wrote (``make model``), so a function that declares the model knows both without a
reference to the models stack. ``default.py`` takes ``MODELS`` and ``MODEL_FUNCTIONS`` as they
are: a second model is one ``ModelSpec`` (and the function that calls it) here.
"""

from __future__ import annotations

import importlib
import json
import tarfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Literal

from infrastructure.platform.spec import (
    Access,
    FunctionSpec,
    ModelSpec,
    StageServingSpec,
    is_gpu_instance,
)

if TYPE_CHECKING:
    from infrastructure.settings import DeploymentSettings

#: Each stage's default, chosen from ``bench/cost.py``'s table (README, "Cost per 1,000
#: invoices"): the 15 KB MLP needs no GPU at any volume in the table (1M invoices a day is 12
#: a second on average; one CPU instance serves thousands of rows a second through Triton), so
#: the cheapest CPU instance wins. Prod runs two for the canary and a second Availability Zone.
#: A multi-GPU instance stays one context value away (``-c modelInstanceType=ml.g5.12xlarge``):
#: the artifact's GPU config then serves on every GPU.
INVOICE_ANOMALY = ModelSpec(
    name="invoice-anomaly",
    # The registry group's description: CloudFormation replaces a group whose description
    # changes, so it keeps the folder name it was created with.
    description="invoice anomaly scorer (models/invoice-anomaly)",
    package="models.invoice_anomaly",
    stages={
        "dev": StageServingSpec(
            instance_type="ml.c6i.large",
            instance_count=1,
            why="cheapest instance in the cost table; one is enough for dev",
        ),
        "prod": StageServingSpec(
            instance_type="ml.c6i.large",
            instance_count=2,
            why="two for a canary rollout and two Availability Zones",
        ),
    },
)

MODEL_INVOKE = FunctionSpec(
    name="model-invoke",
    description="Scores invoices with the anomaly model's SageMaker endpoint (batched, behind a breaker).",
    code="model_invoke",
    memory_mb=1024,
    # One InvokeEndpoint may take 60 s in the container; the client tries twice.
    timeout_seconds=180,
    tables={"circuit": Access.READ_WRITE, "lineage": Access.WRITE},
    # Gets AIOS_MODEL_ENDPOINT/AIOS_MODEL_VERSION and InvokeEndpoint on that endpoint alone.
    model=INVOICE_ANOMALY.name,
)

#: Every served model, and the functions that call one (``Platform.models``/``functions``).
MODELS: tuple[ModelSpec, ...] = (INVOICE_ANOMALY,)
MODEL_FUNCTIONS: tuple[FunctionSpec, ...] = (MODEL_INVOKE,)


@dataclass(frozen=True)
class ServingChoice:
    """Where a deployment's endpoint runs: instance type and count, and how a rollout shifts."""

    instance_type: str
    instance_count: int
    why: str = ""
    canary_instances: int = 1

    @property
    def traffic(self) -> Literal["CANARY", "ALL_AT_ONCE"]:
        """Canary only where the canary is at most half the fleet (SageMaker's rule:
        https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green-canary.html);
        a smaller fleet shifts all at once, rolled back on the same alarms."""
        return "CANARY" if self.instance_count >= 2 * self.canary_instances else "ALL_AT_ONCE"

    @property
    def is_gpu(self) -> bool:
        return is_gpu_instance(self.instance_type)


def serving_choice(model: ModelSpec, settings: DeploymentSettings) -> ServingChoice:
    """The model's stage default, with ``modelInstanceType``/``modelInstanceCount`` (context,
    every model of the deployment) overriding it."""
    default = model.stages[settings.stage]
    if settings.model_instance_type is not None:
        model.check_instance(settings.model_instance_type, where="-c modelInstanceType")
    return ServingChoice(
        instance_type=settings.model_instance_type or default.instance_type,
        instance_count=settings.model_instance_count or default.instance_count,
        why=default.why if settings.model_instance_type is None else "set by context",
        canary_instances=model.rollout.canary_instances,
    )


class ModelArtifactMissingError(FileNotFoundError):
    """The model artifact is not built; synth cannot deploy or describe a model without it."""


def serving(model: ModelSpec) -> ModuleType:
    """The model package's ``serving`` module (artifact paths, Triton names; no torch)."""
    return importlib.import_module(model.serving_module)


def build_command(model: ModelSpec) -> str:
    return f"python -m {model.package}.build"


def model_tarball(model: ModelSpec, kind: Literal["gpu", "cpu"] = "gpu") -> Path:
    """``artifacts/model.tar.gz`` (``model-cpu.tar.gz``); raises with the command that builds
    it when absent."""
    tarball: Path = serving(model).MODEL_TARBALLS[kind]
    if not tarball.is_file():
        raise ModelArtifactMissingError(
            f"{tarball} is missing: run `make model` ({build_command(model)}) before synth"
        )
    return tarball


def artifact_version(model: ModelSpec) -> str:
    """The model version inside the artifact that is deployed (``metadata.json`` of
    ``model.tar.gz``: the first 12 hex digits of the weights' sha256, as build prints it)."""
    return _version_in(model_tarball(model), serving(model).TRITON_MODEL)


@cache
def _version_in(tarball: Path, triton_model: str) -> str:
    with tarfile.open(tarball, mode="r:gz") as archive:
        member = archive.extractfile(f"{triton_model}/metadata.json")
        if member is None:
            raise ModelArtifactMissingError(f"{tarball} has no metadata.json: rebuild it with `make model`")
        version: str = json.loads(member.read())["model_version"]
    return version


def endpoint_name(model: ModelSpec, settings: DeploymentSettings) -> str:
    return settings.name(model.name)


def approved_package(model: ModelSpec, model_version: str) -> dict[str, object]:
    """The registry entry (``artifacts/registry.json``) of the artifact to deploy; synth
    refuses an artifact the approval gate rejected."""
    module = serving(model)
    entry: dict[str, object] | None = module.approved_entry(model_version)
    if entry is None:
        raise ModelArtifactMissingError(
            f"model {model.name} version {model_version} has no Approved entry in {module.REGISTRY_FILE}: "
            f"its held-out metrics are below the gate ({model.serving_module}) or "
            "`make model` was not run; the endpoint deploys approved versions only"
        )
    return entry
