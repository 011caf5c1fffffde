"""The served form of the invoice anomaly model: ONNX plus a Triton model repository.

``onnx_model`` writes the MLP from ``model.npz`` as an ONNX graph directly (Sub, Mul, Gemm,
Relu, Sigmoid; opset 17), so the file is byte-reproducible and needs no exporter tracing.
``write_repository`` lays out the Triton model repository SageMaker's Triton container loads
from ``/opt/ml/model`` (https://docs.aws.amazon.com/sagemaker/latest/dg/triton.html)::

    invoice-anomaly/config.pbtxt
    invoice-anomaly/<triton version>/model.onnx
    invoice-anomaly/metadata.json        (ignored by Triton: not a version directory)

Triton versions are integers, so the directory is the model version (12 hex digits of the
weights' sha256) read as an integer: the ``model_version`` of every Triton response names the
weights that answered, and ``aios.scoring`` turns it back into hex.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from aios.anomaly_features import N_FEATURES
from models.invoice_anomaly import serving

OPSET: Final[int] = 17
IR_VERSION: Final[int] = 8  # readable by every onnxruntime a current Triton image embeds
ONNX_FILE: Final[str] = "model.onnx"
CONFIG_FILE: Final[str] = "config.pbtxt"
InstanceKind = Literal["KIND_GPU", "KIND_CPU"]


def triton_version(model_version: str) -> int:
    """``f17b3e08bd97`` -> its integer (Triton version directories are int64)."""
    return int(model_version, 16)


def onnx_model(
    arrays: dict[str, npt.NDArray[np.float32]], *, model_version: str, input_name: str, output_name: str
) -> onnx.ModelProto:
    """The network as an ONNX graph: features (batch, N_FEATURES) -> score (batch, 1)."""
    layers = sorted({int(name.split(".")[1]) for name in arrays if name.startswith("net.")})
    initializers = [
        numpy_helper.from_array(np.ascontiguousarray(arrays[name], dtype=np.float32), name)
        for name in sorted(arrays)
    ]
    nodes = [
        helper.make_node("Sub", [input_name, "feature_mean"], ["centred"]),
        helper.make_node("Mul", ["centred", "feature_scale"], ["h"]),
    ]
    current = "h"
    for position, index in enumerate(layers):
        out = f"linear{index}"
        nodes.append(
            helper.make_node("Gemm", [current, f"net.{index}.weight", f"net.{index}.bias"], [out], transB=1)
        )
        current = out
        if position < len(layers) - 1:
            nodes.append(helper.make_node("Relu", [current], [f"relu{index}"]))
            current = f"relu{index}"
    nodes.append(helper.make_node("Sigmoid", [current], [output_name]))
    graph = helper.make_graph(
        nodes,
        "invoice_anomaly",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", N_FEATURES])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", 1])],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        # Inside the artifact: kept from before the package rename so the bytes stay the same.
        producer_name="aios models/invoice-anomaly/export.py",
        ir_version=IR_VERSION,
    )
    helper.set_model_props(model, {"model_version": model_version})
    onnx.checker.check_model(model, full_check=True)
    return model


def config_pbtxt(
    *,
    name: str,
    input_name: str,
    output_name: str,
    max_batch_size: int,
    preferred_batch_sizes: tuple[int, ...],
    max_queue_delay_us: int,
    kind: InstanceKind,
) -> str:
    """Triton model configuration (protobuf text format, ``model_config.proto``).

    ``instance_group { kind: KIND_GPU, count: 1 }`` without a ``gpus`` list puts one model
    instance on every GPU the container sees, so a multi-GPU instance serves on all of them;
    ``dynamic_batching`` fuses concurrent one-row requests into one ONNX Runtime run.
    """
    preferred = ", ".join(str(size) for size in preferred_batch_sizes)
    return f"""name: "{name}"
backend: "onnxruntime"
max_batch_size: {max_batch_size}
input [
  {{
    name: "{input_name}"
    data_type: TYPE_FP32
    dims: [ {N_FEATURES} ]
  }}
]
output [
  {{
    name: "{output_name}"
    data_type: TYPE_FP32
    dims: [ 1 ]
  }}
]
dynamic_batching {{
  preferred_batch_size: [ {preferred} ]
  max_queue_delay_microseconds: {max_queue_delay_us}
}}
instance_group [
  {{
    kind: {kind}
    count: 1
  }}
]
"""


def served_config(kind: InstanceKind) -> str:
    """The configuration the artifact ships: the serving choices of ``serving``."""
    return config_pbtxt(
        name=serving.TRITON_MODEL,
        input_name=serving.INPUT_NAME,
        output_name=serving.OUTPUT_NAME,
        max_batch_size=serving.MAX_BATCH_SIZE,
        preferred_batch_sizes=serving.PREFERRED_BATCH_SIZES,
        max_queue_delay_us=serving.MAX_QUEUE_DELAY_US,
        kind=kind,
    )


def write_repository(
    root: Path, *, name: str, model: onnx.ModelProto, config: str, model_version: str, metadata: bytes
) -> Path:
    """The Triton model repository under ``root``; returns the model directory."""
    model_dir = root / name
    version_dir = model_dir / str(triton_version(model_version))
    version_dir.mkdir(parents=True)
    (version_dir / ONNX_FILE).write_bytes(model.SerializeToString(deterministic=True))
    (model_dir / CONFIG_FILE).write_text(config)
    (model_dir / "metadata.json").write_bytes(metadata)
    return model_dir
