"""Serving settings of the invoice anomaly endpoint, importable without torch or onnx.

The CDK models stack imports this module (``models.invoice_anomaly.serving``) for the
artifact paths, the container environment and the request limits; the local mode for the
model repository it serves and the ``config.pbtxt`` parser; ``build.py`` for the names.

Serving stack: SageMaker's Triton Inference Server container (``sagemaker-tritonserver``,
resolved at synth by ``sagemaker.core.image_uris``), ONNX Runtime backend, dynamic batching.
Why not the SageMaker PyTorch container: TorchServe is in limited maintenance (no fixes or
security patches, pytorch/serve README) and AWS publishes no PyTorch inference images after
2.6 (aws/deep-learning-containers#5239), supported until 2026-06-30.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Final

MODEL_NAME: Final[str] = "invoice-anomaly"
#: The model's name inside the Triton repository (and ``SAGEMAKER_TRITON_DEFAULT_MODEL_NAME``).
TRITON_MODEL: Final[str] = MODEL_NAME
INPUT_NAME: Final[str] = "features"
OUTPUT_NAME: Final[str] = "score"
ARTIFACTS_DIR: Final[Path] = Path(__file__).resolve().parent / "artifacts"
#: The Triton model repository for GPU instances, unpacked (the local mode serves it).
MODEL_DIR: Final[Path] = ARTIFACTS_DIR / "model"
#: ``model.tar.gz`` per instance kind: identical but for ``instance_group`` in config.pbtxt.
MODEL_TARBALLS: Final[dict[str, Path]] = {
    "gpu": ARTIFACTS_DIR / "model.tar.gz",
    "cpu": ARTIFACTS_DIR / "model-cpu.tar.gz",
}
MODEL_TARBALL: Final[Path] = MODEL_TARBALLS["gpu"]
#: What build.py registers: one entry per built artifact (the local model registry).
REGISTRY_FILE: Final[Path] = ARTIFACTS_DIR / "registry.json"
METRICS_FILE: Final[Path] = ARTIFACTS_DIR / "metrics.json"
METADATA_NAME: Final[str] = "metadata.json"

# SageMaker real-time endpoints: 6 MB request payload, 60 s per invocation.
MAX_REQUEST_BYTES: Final[int] = 6 * 1024 * 1024
INVOCATION_TIMEOUT_SECONDS: Final[int] = 60
#: Rows per request (Triton's ``max_batch_size``; larger requests get a 400). 4096 rows are
#: 240 KB as binary FP32 and about 700 KB as JSON, far below the payload limit.
MAX_BATCH_SIZE: Final[int] = 4096
#: Dynamic batching, chosen with ``bench/serving.py --triton`` on CPU (README, "Model serving").
PREFERRED_BATCH_SIZES: Final[tuple[int, ...]] = (16, 64)
MAX_QUEUE_DELAY_US: Final[int] = 500

#: Approval gate of ``build.py``: an artifact below either metric is registered ``Rejected``.
MIN_ROC_AUC: Final[float] = 0.98
MIN_PRECISION_AT_REVIEW_RATE: Final[float] = 0.75

ENV_DEFAULT_MODEL: Final[str] = "SAGEMAKER_TRITON_DEFAULT_MODEL_NAME"


def serving_environment() -> dict[str, str]:
    """Container environment of the SageMaker Triton image: the model to answer
    ``/invocations`` with. Nothing per GPU: ``instance_group { kind: KIND_GPU count: 1 }``
    already starts one model instance on every GPU."""
    return {ENV_DEFAULT_MODEL: TRITON_MODEL}


def hex_version(triton_model_version: str | int) -> str:
    """Triton's integer version directory -> the 12-hex model version."""
    return format(int(triton_model_version), "012x")


def registry_entries(path: Path | None = None) -> list[dict[str, Any]]:
    """The local model registry ``build.py`` keeps: every artifact built, newest last."""
    path = path or REGISTRY_FILE
    if not path.is_file():
        return []
    entries: list[dict[str, Any]] = json.loads(path.read_text())["model_packages"]
    return entries


def approved_entry(model_version: str, path: Path | None = None) -> dict[str, Any] | None:
    return next(
        (
            entry
            for entry in reversed(registry_entries(path))
            if entry["model_version"] == model_version and entry["approval_status"] == "Approved"
        ),
        None,
    )


# -- config.pbtxt ---------------------------------------------------------------------------

_TOKEN = re.compile(r'\s*(?:(#[^\n]*)|("(?:[^"\\]|\\.)*")|([{}\[\]:,])|([^\s{}\[\]:,"#]+))')


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            if text[position:].strip():
                snippet = text[position : position + 20]
                raise ValueError(f"config.pbtxt: cannot parse at {position}: {snippet!r}")
            break
        position = match.end()
        if match.group(1) is None:
            out.append(next(group for group in match.groups()[1:] if group is not None))
    return out


def _scalar(token: str) -> Any:
    if token.startswith('"'):
        return json.loads(token)
    if re.fullmatch(r"-?\d+", token):
        return int(token)
    if re.fullmatch(r"-?\d+\.\d*(e-?\d+)?", token):
        return float(token)
    return {"true": True, "false": False}.get(token, token)  # enum names stay strings


def parse_pbtxt(text: str) -> dict[str, Any]:  # noqa: C901 - one small recursive-descent parser
    """Protobuf text format -> nested dicts. A field given twice, or with ``[ ... ]``,
    becomes a list; messages are dicts, enum values their names."""
    tokens = _tokens(text)
    position = 0

    def value() -> Any:
        nonlocal position
        lexeme = tokens[position]
        if lexeme == "{":
            position += 1
            return message("}")
        if lexeme == "[":
            position += 1
            items: list[Any] = []
            while tokens[position] != "]":
                items.append(value())
                if tokens[position] == ",":
                    position += 1
            position += 1
            return items
        position += 1
        return _scalar(lexeme)

    def message(end: str | None) -> dict[str, Any]:
        nonlocal position
        fields: dict[str, Any] = {}
        while position < len(tokens) and tokens[position] != end:
            name = tokens[position]
            position += 1
            if tokens[position] == ":":
                position += 1
            item = value()
            if tokens[position : position + 1] in ([","], [";"]):
                position += 1
            if name in fields:
                previous = fields[name]
                fields[name] = [*previous, item] if isinstance(previous, list) else [previous, item]
            else:
                fields[name] = item
        position += 1
        return fields

    return message(None)
