"""Local mode: SageMaker runtime ``InvokeEndpoint`` served by our own inference code.

Written for exactly moto 5.2.5, where ``SageMakerRuntimeResponse.invoke_endpoint``
(``moto/sagemakerruntime/responses.py``) answers every call with canned data from
``SageMakerRuntimeBackend.invoke_endpoint`` (``models.py``; a result queue or the literal
``"body"``). The bridge replaces that response method, so it works both under ``mock_aws()``
and in a ``ThreadedMotoServer`` of the same process.

The endpoint is served in-process on the CPU by ``models/invoice-anomaly/code/inference.py``
(the copy in ``artifacts/model/``, i.e. what ``model.tar.gz`` deploys), the way the SageMaker
PyTorch container runs it: ``model_fn`` once, then ``input_fn -> predict_fn -> output_fn``
per call. The answer looks like AWS's:

- 200 with the body, ``Content-Type`` and ``x-Amzn-Invoked-Production-Variant`` (the
  endpoint's variant when moto knows the endpoint, the ``TargetVariant`` asked for, else
  ``AllTraffic``);
- a rejected request (``InferenceClientError``: 400, 406, 413, 415) becomes the 424
  ``ModelError`` AWS returns for a container's non-200 answer, with ``OriginalStatusCode``
  and ``OriginalMessage``; any other exception in the inference code becomes a ``ModelError``
  with ``OriginalStatusCode`` 500, as the inference toolkit turns it into a 500.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from moto.core.common_types import TYPE_RESPONSE
from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

SERVING_FILE = Path(__file__).resolve().parents[2] / "models" / "invoice-anomaly" / "serving.py"
NPY_MAGIC = b"\x93NUMPY"
DEFAULT_VARIANT = "AllTraffic"
_TARGET_VARIANT_HEADER = "X-Amzn-SageMaker-Target-Variant"


def _load_serving() -> ModuleType:
    spec = importlib.util.spec_from_file_location("invoice_anomaly_serving", SERVING_FILE)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {SERVING_FILE}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


serving = _load_serving()


@dataclass
class Invocation:
    endpoint: str
    status: int
    variant: str


@dataclass
class ServedModel:
    """The model behind every local endpoint; loaded on the first call (torch is slow to import)."""

    model_dir: Path
    invocations: list[Invocation] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _inference: ModuleType | None = None
    _model: Any = None

    @property
    def inference(self) -> ModuleType:
        self._load()
        assert self._inference is not None
        return self._inference

    def _load(self) -> None:
        with self._lock:
            if self._inference is None:
                if not (self.model_dir / "code" / "inference.py").is_file():
                    raise FileNotFoundError(
                        f"{self.model_dir} has no model: run `make model` "
                        "(models/invoice-anomaly/build.py) first"
                    )
                inference = serving.load_inference_module(self.model_dir)
                self._model = inference.model_fn(str(self.model_dir))
                self._inference = inference

    def answer(self, body: bytes, *, content_type: str | None, accept: str | None) -> tuple[int, bytes, str]:
        """(status, body, content type) of one invocation, as the container answers it."""
        inference = self.inference
        try:
            output: bytes = inference.output_fn(
                inference.predict_fn(inference.input_fn(body, content_type), self._model), accept
            )
        except inference.InferenceClientError as error:
            return int(error.status_code), str(error.message).encode(), "text/plain"
        except Exception as error:
            return 500, f"{type(error).__name__}: {error}".encode(), "text/plain"
        media = "application/x-npy" if output.startswith(NPY_MAGIC) else "application/json"
        return 200, output, media


_served: ServedModel | None = None
_original: Callable[[SageMakerRuntimeResponse], TYPE_RESPONSE] | None = None


def _variant(response: SageMakerRuntimeResponse, endpoint_name: str) -> str:
    target = response.headers.get(_TARGET_VARIANT_HEADER)
    if target:
        return str(target)
    from moto.sagemaker.models import sagemaker_backends  # noqa: PLC0415 - moto's registry

    endpoint = sagemaker_backends[response.current_account][response.region].endpoints.get(endpoint_name)
    variants = getattr(endpoint, "production_variants", None) or []
    return str(variants[0]["VariantName"]) if variants else DEFAULT_VARIANT


def _model_error(endpoint_name: str, status: int, message: str) -> TYPE_RESPONSE:
    """What SageMaker returns when the container answers ``status`` != 200."""
    kind = "client" if status < 500 else "server"
    body = {
        "__type": "ModelError",
        "message": (
            f'Received {kind} error ({status}) from primary with message "{message}". '
            f"See the local log of endpoint {endpoint_name}."
        ),
        "OriginalStatusCode": status,
        "OriginalMessage": message,
        "LogStreamArn": f"arn:aws:logs:local:000000000000:log-group:/aws/sagemaker/Endpoints/{endpoint_name}",
    }
    # moto takes the status from the "status" header (``BaseResponse._transform_response``).
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": "ModelError", "status": "424"}
    return 424, headers, json.dumps(body)


def _invoke_endpoint(self: SageMakerRuntimeResponse) -> TYPE_RESPONSE:
    """Replacement of ``SageMakerRuntimeResponse.invoke_endpoint``."""
    assert _served is not None
    endpoint_name = str(self._get_params().get("EndpointName") or self.path.split("/")[2])
    body = self.raw_body if isinstance(self.raw_body, bytes) else str(self.raw_body or "").encode()
    variant = _variant(self, endpoint_name)
    status, output, media = _served.answer(
        body, content_type=self.headers.get("Content-Type"), accept=self.headers.get("Accept")
    )
    _served.invocations.append(Invocation(endpoint=endpoint_name, status=status, variant=variant))
    if status != 200:
        return _model_error(endpoint_name, status, output.decode("utf-8", "replace"))
    headers = {"Content-Type": media, "x-Amzn-Invoked-Production-Variant": variant}
    return 200, headers, output


def install_sagemaker_bridge(model_dir: Path = serving.MODEL_DIR) -> None:
    """Serve every sagemaker-runtime ``InvokeEndpoint`` with the model in ``model_dir``
    (``artifacts/model/``, written by ``build.py``). Idempotent; a second call switches the
    model directory."""
    global _served, _original  # noqa: PLW0603 - one patch per process, like moto's backends
    if _served is None or _served.model_dir != Path(model_dir):
        _served = ServedModel(Path(model_dir))
    if _original is None:
        _original = SageMakerRuntimeResponse.invoke_endpoint
        SageMakerRuntimeResponse.invoke_endpoint = _invoke_endpoint  # type: ignore[method-assign]


def uninstall_sagemaker_bridge() -> None:
    """Give moto its canned answers back."""
    global _served, _original
    if _original is not None:
        SageMakerRuntimeResponse.invoke_endpoint = _original  # type: ignore[method-assign,assignment]
    _served, _original = None, None


def served_model() -> ServedModel:
    """The model the bridge serves (its ``invocations`` record every call)."""
    if _served is None:
        raise RuntimeError("the SageMaker bridge is not installed: call install_sagemaker_bridge()")
    return _served
