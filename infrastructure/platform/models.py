"""The anomaly model's part of the platform description: the function that calls its endpoint,
the endpoint's name and the version of the artifact it serves.

The endpoint is named from the stage (``aios-<stage>-invoice-anomaly``), and the model version
is read at synth from the artifact that ``models/invoice-anomaly/build.py`` wrote (``make
model``), so the function knows both without a reference to the models stack.
"""

from __future__ import annotations

import importlib.util
import json
import tarfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Literal

from infrastructure.platform.model import REPO_ROOT, Access, FunctionSpec

if TYPE_CHECKING:
    from infrastructure.settings import DeploymentSettings

MODEL_NAME = "invoice-anomaly"
SERVING_FILE = REPO_ROOT / "models" / MODEL_NAME / "serving.py"

MODEL_INVOKE = FunctionSpec(
    name="model-invoke",
    description="Scores invoices with the anomaly model's SageMaker endpoint (batched, behind a breaker).",
    code="model_invoke",
    memory_mb=1024,
    # One InvokeEndpoint may take 60 s in the container; the client tries twice.
    timeout_seconds=180,
    tables={"circuit": Access.READ_WRITE, "lineage": Access.WRITE},
    # Gets AIOS_MODEL_ENDPOINT/AIOS_MODEL_VERSION and InvokeEndpoint on that endpoint alone.
    model=MODEL_NAME,
)


@dataclass(frozen=True)
class ServingChoice:
    """Where a stage's endpoint runs: instance type and count, and how a rollout shifts."""

    instance_type: str
    instance_count: int
    why: str = ""

    @property
    def traffic(self) -> Literal["CANARY", "ALL_AT_ONCE"]:
        """Canary only with two instances or more: SageMaker needs the canary to be at most
        half the fleet (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green-canary.html);
        one instance shifts all at once, rolled back on the same alarms."""
        return "CANARY" if self.instance_count >= 2 else "ALL_AT_ONCE"

    @property
    def is_gpu(self) -> bool:
        return self.instance_type.split(".")[1].startswith(("g", "p"))


#: Each stage's default, chosen from ``bench/cost.py``'s table (README, "Cost per 1,000
#: invoices"): the 15 KB MLP needs no GPU at any volume in the table (1M invoices a day is 12
#: a second on average; one CPU instance serves thousands of rows a second through Triton), so
#: the cheapest CPU instance wins. Prod runs two for the canary and a second Availability Zone.
#: A multi-GPU instance stays one context value away (``-c modelInstanceType=ml.g5.12xlarge``):
#: the artifact's GPU config then serves on every GPU.
STAGE_SERVING: dict[str, ServingChoice] = {
    "dev": ServingChoice("ml.c6i.large", 1, "cheapest instance in the cost table; one is enough for dev"),
    "prod": ServingChoice("ml.c6i.large", 2, "two for a canary rollout and two Availability Zones"),
}


def serving_choice(settings: DeploymentSettings) -> ServingChoice:
    """The stage's default, with ``modelInstanceType``/``modelInstanceCount`` overriding it."""
    default = STAGE_SERVING[settings.stage]
    return ServingChoice(
        instance_type=settings.model_instance_type or default.instance_type,
        instance_count=settings.model_instance_count or default.instance_count,
        why=default.why if settings.model_instance_type is None else "set by context",
    )


class ModelArtifactMissingError(FileNotFoundError):
    """The model artifact is not built; synth cannot deploy or describe a model without it."""


@cache
def serving() -> ModuleType:
    """``models/invoice-anomaly/serving.py`` (a folder with a hyphen: loaded by path; no torch)."""
    spec = importlib.util.spec_from_file_location("invoice_anomaly_serving", SERVING_FILE)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {SERVING_FILE}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def model_tarball(kind: Literal["gpu", "cpu"] = "gpu") -> Path:
    """``artifacts/model.tar.gz`` (``model-cpu.tar.gz``); raises with the command that builds
    it when absent."""
    tarball: Path = serving().MODEL_TARBALLS[kind]
    if not tarball.is_file():
        raise ModelArtifactMissingError(
            f"{tarball} is missing: run `make model` (models/invoice-anomaly/build.py) before synth"
        )
    return tarball


@cache
def artifact_version(tarball: Path | None = None) -> str:
    """The model version inside the artifact that is deployed (``metadata.json`` of
    ``model.tar.gz``: the first 12 hex digits of the weights' sha256, as build.py prints it)."""
    path = tarball or model_tarball()
    with tarfile.open(path, mode="r:gz") as archive:
        member = archive.extractfile(f"{serving().TRITON_MODEL}/metadata.json")
        if member is None:
            raise ModelArtifactMissingError(f"{path} has no metadata.json: rebuild it with `make model`")
        version: str = json.loads(member.read())["model_version"]
    return version


def endpoint_name(settings: DeploymentSettings) -> str:
    return settings.name(MODEL_NAME)


def approved_package(model_version: str) -> dict[str, object]:
    """The registry entry (``artifacts/registry.json``) of the artifact to deploy; synth
    refuses an artifact the approval gate rejected."""
    entry: dict[str, object] | None = serving().approved_entry(model_version)
    if entry is None:
        raise ModelArtifactMissingError(
            f"model version {model_version} has no Approved entry in {serving().REGISTRY_FILE}: "
            "its held-out metrics are below the gate (models/invoice-anomaly/serving.py) or "
            "`make model` was not run; the endpoint deploys approved versions only"
        )
    return entry
