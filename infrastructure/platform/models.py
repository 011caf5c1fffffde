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
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

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


def model_tarball() -> Path:
    """``artifacts/model.tar.gz``; raises with the command that builds it when absent."""
    tarball: Path = serving().MODEL_TARBALL
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
        member = archive.extractfile("metadata.json")
        if member is None:
            raise ModelArtifactMissingError(f"{path} has no metadata.json: rebuild it with `make model`")
        version: str = json.loads(member.read())["model_version"]
    return version


def endpoint_name(settings: DeploymentSettings) -> str:
    return settings.name(MODEL_NAME)
