"""SageMaker PyTorch serving contract for the invoice anomaly scorer.

The SageMaker PyTorch inference toolkit imports this module (``SAGEMAKER_PROGRAM=inference.py``)
and calls ``model_fn`` once per worker, then ``input_fn -> predict_fn -> output_fn`` per request.
The local mode imports it in-process (``serving.load_inference_module``) and calls the same
functions, so both paths share one implementation.

Requests:
    application/json        an array of invoice objects, or one object (see features.py)
    application/jsonlines   one invoice object per line
    application/x-npy       a float32 (n, N_FEATURES) feature matrix in .npy format
Responses (Accept):
    application/json        {"model_version": "...", "scores": [...]}  (default)
    application/x-npy       the float32 scores as a 1-D .npy array

Client errors raise ``InferenceClientError`` (``status_code``, ``message``). The toolkit's
``Transformer.transform`` turns any ``sagemaker_inference.errors.BaseInferenceToolkitError``
into a response with that status code and maps every other exception to 500. So when the
toolkit is importable (inside the container) our error subclasses its
``GenericInferenceToolkitError``; elsewhere it subclasses a local mirror with the same
attributes, and the local mode maps ``status_code`` itself. Note that the toolkit's own
``UnsupportedFormatError`` is a plain ``Exception`` and would surface as 500, which is why
unsupported content types raise ``InferenceClientError(415, ...)`` here instead.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt
import torch
from features import N_FEATURES, InvalidInvoiceError, featurize, validate_matrix
from torch import nn

WEIGHTS_FILE: Final[str] = "model.npz"
METADATA_FILE: Final[str] = "metadata.json"
HIDDEN: Final[tuple[int, ...]] = (64, 32)

JSON: Final[str] = "application/json"
JSONLINES: Final[str] = "application/jsonlines"
NPY: Final[str] = "application/x-npy"
_JSONLINES_ALIASES: Final[frozenset[str]] = frozenset(
    {JSONLINES, "application/x-jsonlines", "application/jsonl", "application/x-ndjson"}
)
MAX_REQUEST_BYTES: Final[int] = 6 * 1024 * 1024  # SageMaker real-time payload limit


class _GenericInferenceToolkitError(Exception):
    """Mirror of ``sagemaker_inference.errors.GenericInferenceToolkitError`` (same attributes)."""

    def __init__(self, status_code: int, message: str | None = None, phrase: str | None = None) -> None:
        self.status_code = status_code
        self.message = message or "Invalid Request"
        self.phrase = phrase or self.message
        super().__init__(status_code, self.message, self.phrase)


if TYPE_CHECKING:
    _ToolkitError = _GenericInferenceToolkitError
else:
    try:  # inside the SageMaker container: the toolkit maps this base class to its status code
        from sagemaker_inference.errors import GenericInferenceToolkitError as _ToolkitError
    except ImportError:
        _ToolkitError = _GenericInferenceToolkitError


class InferenceClientError(_ToolkitError):
    """A request the client must fix; ``status_code`` is 4xx, ``message`` is safe to return."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(status_code, message, message)

    def __str__(self) -> str:
        return f"{self.status_code}: {self.message}"


def bad_request(message: str) -> InferenceClientError:
    return InferenceClientError(400, message)


class InvoiceScorer(nn.Module):
    """MLP on standardised features; returns the anomaly probability per row."""

    feature_mean: torch.Tensor
    feature_scale: torch.Tensor

    def __init__(self, n_features: int = N_FEATURES, hidden: tuple[int, ...] = HIDDEN) -> None:
        super().__init__()
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_scale", torch.ones(n_features))  # 1 / std
        layers: list[nn.Module] = []
        width = n_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net((x - self.feature_mean) * self.feature_scale).squeeze(-1)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))


def state_arrays(model: InvoiceScorer) -> dict[str, npt.NDArray[np.float32]]:
    """The model's parameters and buffers as float32 numpy arrays, in a fixed order."""
    return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in sorted(model.state_dict().items())}


def weights_version(arrays: dict[str, npt.NDArray[np.float32]]) -> str:
    """sha256 over names, shapes and bytes of the arrays; first 12 hex digits."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        arr = np.ascontiguousarray(arrays[name], dtype=np.float32)
        digest.update(name.encode())
        digest.update(repr(arr.shape).encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()[:12]


@dataclass
class LoadedModel:
    """What ``model_fn`` returns: the module on its device plus reusable transfer buffers."""

    module: InvoiceScorer
    device: torch.device
    version: str
    _pinned_in: torch.Tensor | None = None
    _pinned_out: torch.Tensor | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def score(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Anomaly probabilities for a validated (n, N_FEATURES) float32 matrix."""
        n = features.shape[0]
        with torch.inference_mode():
            if self.device.type != "cuda":
                result: npt.NDArray[np.float32] = self.module(torch.from_numpy(features)).numpy()
                return result
            with self._lock:  # the pinned buffers are shared by the calls of this worker
                if self._pinned_in is None or self._pinned_in.shape[0] < n:
                    rows = max(n, 1024)
                    self._pinned_in = torch.empty((rows, N_FEATURES), dtype=torch.float32).pin_memory()
                    self._pinned_out = torch.empty((rows,), dtype=torch.float32).pin_memory()
                assert self._pinned_out is not None
                staged = self._pinned_in[:n]
                staged.numpy()[...] = features  # one host memcpy into page-locked memory
                scores = self.module(staged.to(self.device, non_blocking=True))
                out = self._pinned_out[:n]
                out.copy_(scores, non_blocking=True)
                torch.cuda.current_stream(self.device).synchronize()
                return out.numpy().copy()


def _device(context: Any | None) -> torch.device:
    if not torch.cuda.is_available():
        return torch.device("cpu")
    props = getattr(context, "system_properties", None) or {}
    gpu_id = props.get("gpu_id")
    return torch.device(f"cuda:{int(gpu_id)}") if gpu_id is not None else torch.device("cuda")


def load_module(model_dir: str | Path) -> tuple[InvoiceScorer, str]:
    """Read ``model.npz`` + ``metadata.json`` on CPU; verify the version against the weights."""
    model_dir = Path(model_dir)
    meta = json.loads((model_dir / METADATA_FILE).read_text())
    with np.load(model_dir / WEIGHTS_FILE, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    version = weights_version(arrays)
    if version != meta["model_version"]:
        raise RuntimeError(f"weights hash {version} does not match metadata {meta['model_version']}")
    module = InvoiceScorer(int(meta["n_features"]), tuple(meta["hidden"]))
    module.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()})
    return module.eval(), version


def model_fn(model_dir: str, context: Any | None = None) -> LoadedModel:
    """Load the model onto this worker's GPU (``context.system_properties["gpu_id"]``),
    else the default CUDA device, else the CPU."""
    module, version = load_module(model_dir)
    device = _device(context)
    module = module.to(device)
    for p in module.parameters():
        p.requires_grad_(False)
    return LoadedModel(module=module, device=device, version=version)


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def _reject_constant(token: str) -> Any:
    raise bad_request(f"non-finite number {token} in JSON")


def _as_text(body: Any) -> str | bytes:
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    if isinstance(body, str | bytes):
        return body
    raise bad_request("request body must be bytes or text")


def _decode_json(body: str | bytes) -> list[Any]:
    try:
        doc = json.loads(body, parse_constant=_reject_constant)
    except ValueError as exc:  # includes UnicodeDecodeError
        raise bad_request(f"malformed JSON: {exc}") from None
    if isinstance(doc, dict):
        return [doc]
    if isinstance(doc, list):
        return doc
    raise bad_request("expected a JSON object or an array of objects")


def _decode_jsonlines(body: str | bytes) -> list[Any]:
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError:
        raise bad_request("request body is not valid UTF-8") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise bad_request("empty request body")
    # One parse for the whole batch: the lines joined into a JSON array. A line holding more
    # than one value would change the count, so the count is checked against the lines.
    try:
        rows = json.loads("[" + ",".join(lines) + "]", parse_constant=_reject_constant)
    except ValueError:
        for i, line in enumerate(lines):
            try:
                json.loads(line, parse_constant=_reject_constant)
            except ValueError:
                raise bad_request(f"malformed JSON on line {i + 1}") from None
        raise bad_request("malformed JSON lines") from None
    if len(rows) != len(lines):
        raise bad_request("each line must hold exactly one JSON object")
    result: list[Any] = rows
    return result


def _decode_npy(body: Any) -> npt.NDArray[np.float32]:
    if isinstance(body, str):
        raise bad_request("application/x-npy body must be binary")
    try:
        matrix = np.load(io.BytesIO(body), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise bad_request(f"malformed .npy payload: {exc}") from None
    try:
        return validate_matrix(matrix)
    except InvalidInvoiceError as exc:
        raise bad_request(str(exc)) from None


def input_fn(request_body: Any, request_content_type: str | None) -> npt.NDArray[np.float32]:
    """Decode and validate a request into a float32 ``(n, N_FEATURES)`` matrix."""
    media = _media_type(request_content_type)
    if request_body is None or len(request_body) == 0:
        raise bad_request("empty request body")
    if len(request_body) > MAX_REQUEST_BYTES:
        raise InferenceClientError(413, f"request body larger than {MAX_REQUEST_BYTES} bytes")
    if media == NPY:
        return _decode_npy(request_body)
    if media == JSON:
        rows = _decode_json(_as_text(request_body))
    elif media in _JSONLINES_ALIASES:
        rows = _decode_jsonlines(_as_text(request_body))
    else:
        raise InferenceClientError(
            415, f"content type '{request_content_type}' is not supported; use {JSON}, {JSONLINES} or {NPY}"
        )
    try:
        return featurize(rows)
    except InvalidInvoiceError as exc:
        raise bad_request(str(exc)) from None


@dataclass(frozen=True, slots=True)
class Prediction:
    scores: npt.NDArray[np.float32]
    model_version: str


def predict_fn(input_data: npt.NDArray[np.float32], model: LoadedModel) -> Prediction:
    """Score a validated feature matrix."""
    return Prediction(scores=model.score(input_data), model_version=model.version)


def output_fn(prediction: Prediction, accept: str | None) -> bytes:
    """Serialise to the first supported type in ``accept`` (JSON when absent or ``*/*``)."""
    for candidate in (accept or JSON).split(","):
        media = _media_type(candidate)
        if media in {JSON, "*/*", "application/*", ""}:
            # Six decimals keep the float reprs short, which is most of json.dumps' cost.
            scores = np.round(prediction.scores.astype(np.float64), 6).tolist()
            return json.dumps({"model_version": prediction.model_version, "scores": scores}).encode()
        if media == NPY:
            buf = io.BytesIO()
            np.save(buf, np.ascontiguousarray(prediction.scores, dtype=np.float32), allow_pickle=False)
            return buf.getvalue()
    raise InferenceClientError(406, f"accept type '{accept}' is not supported; use {JSON} or {NPY}")
