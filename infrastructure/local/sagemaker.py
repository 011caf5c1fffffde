"""The local mode's SageMaker runtime bridge: ``InvokeEndpoint`` answered the way the
SageMaker Triton container answers it, from the same model artifact. Written for exactly
moto 5.2.5 (one module per AWS service, DESIGN.md).

moto 5.2.5's ``SageMakerRuntimeResponse.invoke_endpoint`` (``moto/sagemakerruntime/
responses.py``) answers every call with canned data; the bridge replaces that response method,
so it works under ``mock_aws()`` and in a ``ThreadedMotoServer`` of the same process.

What serves: each endpoint maps to a model of the platform description (``ModelSpec``), served
from its package's ``artifacts/model/`` (the Triton model repository that ``model.tar.gz`` holds,
written by ``python -m <package>.build``): its ``config.pbtxt`` is parsed and checked
against ``model.onnx`` at load, and the ONNX file runs in onnxruntime on the CPU, the runtime
Triton's onnxruntime backend embeds. No Triton server installs from PyPI with that backend
(``nvidia-pytriton`` bundles ``tritonserver`` with the Python backend only; ``bench/serving.py
--triton`` uses it), so the request/response contract is reproduced here:

- ``application/vnd.sagemaker-triton.binary+json;json-header-size=N`` (the KServe v2 binary
  tensor extension as SageMaker carries it: a JSON header of N bytes, then raw tensors) and
  ``application/json`` (KServe v2 JSON tensors) in; the same form out, with Triton's
  ``model_name``/``model_version`` (the version directory: the weights that answered);
- what Triton rejects (unknown input, wrong datatype or shape, batch above
  ``max_batch_size``, a binary size that does not match) is a 400 with Triton's
  ``{"error": ...}``, which SageMaker turns into the 424 ``ModelError`` with
  ``OriginalStatusCode`` 400; a failure in the model is a 500 the same way;
- the answer carries ``x-Amzn-Invoked-Production-Variant`` (the endpoint's variant when
  moto knows the endpoint, the ``TargetVariant`` asked for, else ``AllTraffic``);
- an endpoint no model maps to is SageMaker's 400 ``ValidationError`` ("Endpoint ... not found").

``register_model_packages`` puts the local model registry (``artifacts/registry.json``) into
moto's SageMaker: the group and one model package version per built artifact, with metrics
and approval status, as the models stack registers them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Final
from urllib.parse import unquote

import moto
import numpy as np
import numpy.typing as npt

from infrastructure.platform.models import build_command
from infrastructure.platform.models import serving as model_serving
from infrastructure.platform.spec import ModelSpec

MOTO_VERSION = "5.2.5"
if moto.__version__ != MOTO_VERSION:  # pragma: no cover - a pin guard
    raise ImportError(
        f"infrastructure.local.sagemaker patches moto {MOTO_VERSION} internals, found moto "
        f"{moto.__version__}: re-check the bridge before changing the pin"
    )

from moto.core.common_types import TYPE_RESPONSE  # noqa: E402
from moto.sagemakerruntime.responses import SageMakerRuntimeResponse  # noqa: E402

DEFAULT_VARIANT = "AllTraffic"
BINARY_JSON: Final[str] = "application/vnd.sagemaker-triton.binary+json"
HEADER_SIZE_PARAMETER: Final[str] = "json-header-size"
_TARGET_VARIANT_HEADER = "X-Amzn-SageMaker-Target-Variant"
_TYPES: Final[dict[str, tuple[str, Any]]] = {"TYPE_FP32": ("FP32", np.float32)}


class TritonError(Exception):
    """What Triton answers with a non-200 status and ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str  # KServe v2 name (FP32)
    dims: tuple[int, ...]  # without the batch dimension


@dataclass(frozen=True)
class ModelConfig:
    """The parts of ``config.pbtxt`` the contract depends on."""

    name: str
    backend: str
    max_batch_size: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    raw: dict[str, Any]

    @classmethod
    def parse(cls, text: str, *, parse_pbtxt: Callable[[str], dict[str, Any]]) -> ModelConfig:
        raw = parse_pbtxt(text)

        def specs(key: str) -> tuple[TensorSpec, ...]:
            items = raw.get(key, [])
            items = items if isinstance(items, list) else [items]
            return tuple(
                TensorSpec(
                    name=item["name"],
                    datatype=_TYPES[item["data_type"]][0],
                    dims=tuple(item["dims"] if isinstance(item["dims"], list) else [item["dims"]]),
                )
                for item in items
            )

        return cls(
            name=raw["name"],
            backend=raw["backend"],
            max_batch_size=int(raw.get("max_batch_size", 0)),
            inputs=specs("input"),
            outputs=specs("output"),
            raw=raw,
        )


def check_config_against_onnx(config: ModelConfig, session: Any) -> None:
    """Triton's check at load: every configured tensor exists in the ONNX graph with its
    element type and shape (batch dimension first and dynamic when ``max_batch_size`` > 0)."""
    onnx_types = {"FP32": "tensor(float)"}

    def check(specs: tuple[TensorSpec, ...], graph: list[Any], kind: str) -> None:
        by_name = {node.name: node for node in graph}
        if {spec.name for spec in specs} != set(by_name):
            raise ValueError(f"{kind}s {sorted(s.name for s in specs)} != ONNX {sorted(by_name)}")
        for spec in specs:
            node = by_name[spec.name]
            if node.type != onnx_types[spec.datatype]:
                raise ValueError(f"{kind} {spec.name}: {node.type} in ONNX, {spec.datatype} in config")
            batch, *dims = node.shape
            if config.max_batch_size > 0 and isinstance(batch, int):
                raise ValueError(f"{kind} {spec.name}: batch dimension must be dynamic, ONNX has {batch}")
            if tuple(dims) != spec.dims:
                raise ValueError(f"{kind} {spec.name}: dims {tuple(dims)} in ONNX, {spec.dims} in config")

    check(config.inputs, session.get_inputs(), "input")
    check(config.outputs, session.get_outputs(), "output")


@dataclass
class EndpointInvocation:
    endpoint: str
    status: int
    variant: str
    rows: int = 0
    content_type: str = ""


@dataclass
class ServedModel:
    """The Triton model behind one local endpoint; loaded on the first call.

    ``serving`` is the model package's serving module (``TRITON_MODEL``, ``parse_pbtxt``);
    ``model_dir`` the Triton model repository (its ``MODEL_DIR`` unless a test says otherwise).
    """

    model_dir: Path
    serving: ModuleType
    invocations: list[EndpointInvocation] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _session: Any = None
    _config: ModelConfig | None = None
    _version: str = ""
    #: Replaced by tests to simulate a failing model (``run(inputs) -> outputs``).
    run: Callable[[dict[str, npt.NDArray[Any]]], dict[str, npt.NDArray[Any]]] | None = None

    @classmethod
    def of(cls, model: ModelSpec) -> ServedModel:
        module = model_serving(model)
        return cls(Path(module.MODEL_DIR), module)

    @property
    def config(self) -> ModelConfig:
        self._load()
        assert self._config is not None
        return self._config

    @property
    def triton_version(self) -> str:
        self._load()
        return self._version

    def _load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            model_dir = self.model_dir / self.serving.TRITON_MODEL
            config_file = model_dir / "config.pbtxt"
            versions = sorted(
                (p for p in model_dir.glob("*") if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)
            )
            if not config_file.is_file() or not versions:
                package = self.serving.__name__.rpartition(".")[0]
                raise FileNotFoundError(
                    f"{model_dir} has no Triton model: run `make model` (python -m {package}.build)"
                )
            import onnxruntime  # type: ignore[import-untyped]  # noqa: PLC0415 - on the first call only

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1
            session = onnxruntime.InferenceSession(
                str(versions[-1] / "model.onnx"), options, providers=["CPUExecutionProvider"]
            )
            config = ModelConfig.parse(config_file.read_text(), parse_pbtxt=self.serving.parse_pbtxt)
            check_config_against_onnx(config, session)
            self._config, self._version, self._session = config, versions[-1].name, session

    def _infer(self, inputs: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
        if self.run is not None:
            return self.run(inputs)
        names = [spec.name for spec in self.config.outputs]
        return dict(zip(names, self._session.run(names, inputs), strict=True))

    # -- the KServe v2 contract ------------------------------------------------------------

    def _decode(self, body: bytes, content_type: str) -> tuple[dict[str, Any], bytes]:
        media, _, params = content_type.partition(";")
        media = media.strip().lower()
        if media == BINARY_JSON:
            key, _, value = params.strip().partition("=")
            if key.strip() != HEADER_SIZE_PARAMETER or not value.strip().isdigit():
                raise TritonError(400, f"{BINARY_JSON} needs ;{HEADER_SIZE_PARAMETER}=<bytes>")
            size = int(value)
            if size > len(body):
                raise TritonError(400, f"json-header-size {size} is larger than the body ({len(body)})")
            header, binary = body[:size], body[size:]
        elif media in ("application/json", ""):
            header, binary = body, b""
        else:
            raise TritonError(400, f"unsupported content type '{content_type}'")
        try:
            request = json.loads(header)
        except ValueError as error:
            raise TritonError(400, f"failed to parse the request JSON buffer: {error}") from None
        if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
            raise TritonError(400, "the request must be a JSON object with an 'inputs' array")
        return request, binary

    def _tensor(
        self, spec: TensorSpec, item: Mapping[str, Any], binary: bytes, offset: int
    ) -> tuple[Any, int]:
        config = self.config
        datatype = item.get("datatype")
        if datatype != spec.datatype:
            raise TritonError(
                400,
                f"inference input '{spec.name}' data-type is '{datatype}', but model "
                f"'{config.name}' expects '{spec.datatype}'",
            )
        shape = item.get("shape")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise TritonError(400, f"inference input '{spec.name}' has no valid 'shape'")
        if len(shape) != len(spec.dims) + 1 or tuple(shape[1:]) != spec.dims:
            expected = "[" + ",".join(["-1", *map(str, spec.dims)]) + "]"
            raise TritonError(
                400,
                f"unexpected shape for input '{spec.name}' for model '{config.name}'. "
                f"Expected {expected}, got [{','.join(map(str, shape))}]",
            )
        if shape[0] < 1:
            raise TritonError(400, f"inference input '{spec.name}' has an empty batch")
        if shape[0] > config.max_batch_size:
            raise TritonError(
                400,
                f"inference request batch-size must be <= {config.max_batch_size} for "
                f"'{config.name}', got {shape[0]}",
            )
        count = int(np.prod(shape))
        dtype = _TYPES[next(k for k, v in _TYPES.items() if v[0] == spec.datatype)][1]
        size = (item.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            expected_bytes = count * np.dtype(dtype).itemsize
            if size != expected_bytes or offset + size > len(binary):
                raise TritonError(
                    400,
                    f"unexpected size for input '{spec.name}', expecting {expected_bytes} bytes "
                    f"for shape [{','.join(map(str, shape))}], got {size}",
                )
            array = np.frombuffer(binary, dtype="<f4", count=count, offset=offset).reshape(shape)
            return array.astype(dtype), offset + size
        data = item.get("data")
        try:
            array = np.asarray(data, dtype=dtype).reshape(shape)
        except (TypeError, ValueError):
            raise TritonError(
                400, f"unable to parse 'data' of input '{spec.name}' as {count} {spec.datatype} values"
            ) from None
        return array, offset

    def answer(self, body: bytes, *, content_type: str | None) -> tuple[int, bytes, str, int]:
        """(status, body, content type, rows) of one invocation, as Triton answers it."""
        try:
            config = self.config
            request, binary = self._decode(body, content_type or "application/json")
            specs = {spec.name: spec for spec in config.inputs}
            arrays: dict[str, npt.NDArray[Any]] = {}
            offset = 0
            for item in request["inputs"]:
                name = item.get("name") if isinstance(item, dict) else None
                if name not in specs:
                    raise TritonError(400, f"unexpected inference input '{name}' for model '{config.name}'")
                arrays[name], offset = self._tensor(specs[name], item, binary, offset)
            missing = sorted(set(specs) - set(arrays))
            if missing:
                raise TritonError(
                    400,
                    f"expected {len(specs)} inputs but got {len(arrays)} inputs for model '{config.name}'",
                )
            rows = next(iter(arrays.values())).shape[0]
            try:
                outputs = self._infer(arrays)
            except Exception as error:  # the backend failed: Triton answers 500
                raise TritonError(500, f"onnx runtime error: {type(error).__name__}: {error}") from None
            return (*self._encode(request, outputs), rows)
        except TritonError as error:
            return error.status, json.dumps({"error": error.message}).encode(), "application/json", 0

    def _encode(
        self, request: Mapping[str, Any], outputs: dict[str, npt.NDArray[Any]]
    ) -> tuple[int, bytes, str]:
        wanted = {
            item.get("name"): bool((item.get("parameters") or {}).get("binary_data"))
            for item in request.get("outputs") or []
            if isinstance(item, dict)
        }
        header: dict[str, Any] = {
            "model_name": self.config.name,
            "model_version": self.triton_version,
            "outputs": [],
        }
        blobs: list[bytes] = []
        for spec in self.config.outputs:
            if wanted and spec.name not in wanted:
                continue
            array = np.ascontiguousarray(outputs[spec.name], dtype=np.float32)
            entry: dict[str, Any] = {"name": spec.name, "datatype": spec.datatype, "shape": list(array.shape)}
            if wanted.get(spec.name):
                blob = array.astype("<f4").tobytes()
                entry["parameters"] = {"binary_data_size": len(blob)}
                blobs.append(blob)
            else:
                entry["data"] = array.reshape(-1).tolist()
            header["outputs"].append(entry)
        text = json.dumps(header, separators=(",", ":")).encode()
        if not blobs:
            return 200, text, "application/json"
        return 200, text + b"".join(blobs), f"{BINARY_JSON};{HEADER_SIZE_PARAMETER}={len(text)}"


#: Endpoint name -> the model it serves (``install_sagemaker_bridge``).
_served: dict[str, ServedModel] | None = None
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


def _not_found(response: SageMakerRuntimeResponse, endpoint_name: str) -> TYPE_RESPONSE:
    """What SageMaker answers for an endpoint that does not exist in the account."""
    message = f"Endpoint {endpoint_name} of account {response.current_account} not found."
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": "ValidationError", "status": "400"}
    return 400, headers, json.dumps({"__type": "ValidationError", "message": message})


def _invoke_endpoint(self: SageMakerRuntimeResponse) -> TYPE_RESPONSE:
    """Replacement of ``SageMakerRuntimeResponse.invoke_endpoint``."""
    assert _served is not None
    # The path is /endpoints/{EndpointName}/invocations; the body is not JSON to moto.
    endpoint_name = unquote(self.path.split("?", 1)[0].split("/")[2])
    served = _served.get(endpoint_name)
    if served is None:
        return _not_found(self, endpoint_name)
    body = self.raw_body if isinstance(self.raw_body, bytes) else str(self.raw_body or "").encode()
    variant = _variant(self, endpoint_name)
    content_type = str(self.headers.get("Content-Type") or "")
    status, output, media, rows = served.answer(body, content_type=content_type)
    served.invocations.append(
        EndpointInvocation(
            endpoint=endpoint_name, status=status, variant=variant, rows=rows, content_type=content_type
        )
    )
    if status != 200:
        message = str(json.loads(output).get("error", ""))
        return _model_error(endpoint_name, status, message)
    headers = {"Content-Type": media, "x-Amzn-Invoked-Production-Variant": variant}
    return 200, headers, output


def install_sagemaker_bridge(endpoints: Mapping[str, ModelSpec | ServedModel]) -> None:
    """Serve sagemaker-runtime ``InvokeEndpoint`` on each endpoint name with its model's Triton
    model repository (``artifacts/model/`` of the model's package, or a ``ServedModel``).
    Idempotent; a second call replaces the endpoints (keeping those that serve the same
    repository, with their invocations)."""
    global _served, _original  # noqa: PLW0603 - one patch per process, like moto's backends
    previous = _served or {}
    served: dict[str, ServedModel] = {}
    for endpoint, model in endpoints.items():
        wanted = model if isinstance(model, ServedModel) else ServedModel.of(model)
        kept = previous.get(endpoint)
        same = kept is not None and (kept.model_dir, kept.serving) == (wanted.model_dir, wanted.serving)
        served[endpoint] = kept if same and kept is not None else wanted
    _served = served
    if _original is None:
        _original = SageMakerRuntimeResponse.invoke_endpoint
        SageMakerRuntimeResponse.invoke_endpoint = _invoke_endpoint  # type: ignore[method-assign]
        # moto decodes every body as UTF-8 (``BaseResponse.setup_class``) unless told not to;
        # binary tensors are not UTF-8.
        SageMakerRuntimeResponse.use_raw_body = True


def uninstall_sagemaker_bridge() -> None:
    """Give moto its canned answers back."""
    global _served, _original
    if _original is not None:
        SageMakerRuntimeResponse.invoke_endpoint = _original  # type: ignore[method-assign,assignment]
        SageMakerRuntimeResponse.use_raw_body = False
    _served, _original = None, None


def served_model(endpoint: str | None = None) -> ServedModel:
    """The model the bridge serves on ``endpoint`` (its ``invocations`` record every call);
    without a name, the one endpoint's."""
    if _served is None:
        raise RuntimeError("the SageMaker bridge is not installed: call install_sagemaker_bridge()")
    if endpoint is None:
        if len(_served) != 1:
            raise RuntimeError(f"the bridge serves {sorted(_served)}: name the endpoint")
        return next(iter(_served.values()))
    return _served[endpoint]


# -- the local model registry -------------------------------------------------------------------


def register_model_packages(
    client: Any, *, group_name: str, model: ModelSpec, entries: list[dict[str, Any]] | None = None
) -> list[str]:
    """The registry entries the model's build wrote, as moto model package versions of
    ``group_name`` (created when missing); returns their ARNs, oldest first."""
    serving = model_serving(model)
    entries = serving.registry_entries() if entries is None else entries
    existing = client.list_model_package_groups(NameContains=group_name)["ModelPackageGroupSummaryList"]
    if not any(group["ModelPackageGroupName"] == group_name for group in existing):
        client.create_model_package_group(
            ModelPackageGroupName=group_name,
            ModelPackageGroupDescription=f"aios {model.name} (local registry, {build_command(model)})",
        )
    known = {
        package.get("ModelPackageDescription", "")
        for package in client.list_model_packages(ModelPackageGroupName=group_name)["ModelPackageSummaryList"]
    }
    arns: list[str] = []
    for entry in entries:
        description = f"model_version={entry['model_version']}"
        if description in known:
            continue
        response = client.create_model_package(
            ModelPackageGroupName=group_name,
            ModelPackageDescription=description,
            ModelApprovalStatus=entry["approval_status"],
            CustomerMetadataProperties={
                "aios:model-version": entry["model_version"],
                **{f"aios:metric:{k}": str(v) for k, v in entry["metrics"].items()},
            },
            InferenceSpecification={
                "Containers": [
                    {
                        "Image": "sagemaker-tritonserver:local",
                        "ModelDataUrl": f"file://{serving.MODEL_TARBALL}",
                        "Environment": serving.serving_environment(),
                    }
                ],
                "SupportedContentTypes": ["application/json", BINARY_JSON],
                "SupportedResponseMIMETypes": ["application/json", BINARY_JSON],
            },
        )
        arns.append(response["ModelPackageArn"])
    return arns


def register_on_server(endpoint_url: str, *, region: str, group_name: str, model: ModelSpec) -> list[str]:
    """``register_model_packages`` against the local mode's moto server."""
    import boto3  # noqa: PLC0415 - the bridge itself needs no client

    client = boto3.client(
        "sagemaker",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - moto's placeholder credentials
    )
    return register_model_packages(client, group_name=group_name, model=model)
