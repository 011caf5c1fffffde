"""Serving settings for the invoice anomaly endpoint, importable without torch.

The CDK models stack imports this file for the container environment and the request limits;
the local mode uses ``load_inference_module`` to run ``code/inference.py`` in-process. The
directory name has a hyphen, so load it by path::

    spec = importlib.util.spec_from_file_location("invoice_anomaly_serving", path_to_this_file)
    serving = importlib.util.module_from_spec(spec); spec.loader.exec_module(serving)
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Final

MODEL_NAME: Final[str] = "invoice-anomaly"
ARTIFACTS_DIR: Final[Path] = Path(__file__).resolve().parent / "artifacts"
MODEL_TARBALL: Final[Path] = ARTIFACTS_DIR / "model.tar.gz"
MODEL_DIR: Final[Path] = ARTIFACTS_DIR / "model"  # model.tar.gz unpacked, for the local mode

# SageMaker real-time endpoints: 6 MB request payload, 60 s per invocation.
MAX_REQUEST_BYTES: Final[int] = 6 * 1024 * 1024
INVOCATION_TIMEOUT_SECONDS: Final[int] = 60
# Rows per request (mirrors code/features.py MAX_ROWS; a test keeps them equal). ~450 bytes per
# JSON invoice, so 10 000 rows stay under MAX_REQUEST_BYTES.
MAX_ROWS_PER_REQUEST: Final[int] = 10_000

CONTENT_TYPES: Final[tuple[str, ...]] = ("application/json", "application/jsonlines", "application/x-npy")
ACCEPT_TYPES: Final[tuple[str, ...]] = ("application/json", "application/x-npy")

# Environment variable names read by the SageMaker PyTorch inference container.
ENV_PROGRAM: Final[str] = "SAGEMAKER_PROGRAM"
ENV_SUBMIT_DIRECTORY: Final[str] = "SAGEMAKER_SUBMIT_DIRECTORY"
ENV_MODEL_SERVER_WORKERS: Final[str] = "SAGEMAKER_MODEL_SERVER_WORKERS"
ENV_MODEL_SERVER_TIMEOUT: Final[str] = "SAGEMAKER_MODEL_SERVER_TIMEOUT"
ENV_DEFAULT_ACCEPT: Final[str] = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"
ENV_TS_MIN_WORKERS: Final[str] = "SAGEMAKER_TS_MIN_WORKERS"
ENV_TS_MAX_WORKERS: Final[str] = "SAGEMAKER_TS_MAX_WORKERS"
ENV_TS_BATCH_SIZE: Final[str] = "SAGEMAKER_TS_BATCH_SIZE"
ENV_TS_MAX_BATCH_DELAY: Final[str] = "SAGEMAKER_TS_MAX_BATCH_DELAY"
ENV_TS_RESPONSE_TIMEOUT: Final[str] = "SAGEMAKER_TS_RESPONSE_TIMEOUT"


def serving_environment(gpu_count: int) -> dict[str, str]:
    """Container environment for the SageMaker PyTorch inference image on an instance with
    ``gpu_count`` GPUs (0 for a CPU instance).

    Setting any ``SAGEMAKER_TS_*`` variable makes the toolkit write a per-model TorchServe
    config whose ``minWorkers``/``maxWorkers`` default to 1, and one worker uses one GPU. So on
    a GPU instance both are pinned to the GPU count: TorchServe then starts one worker per GPU,
    hands each its ``gpu_id`` round-robin, and ``model_fn`` places the model on
    ``cuda:{gpu_id}``. Server-side batching stays at 1: the toolkit runs ``input_fn`` per
    request even inside a TorchServe batch, so it would add delay without a larger tensor;
    callers batch rows into one request instead (up to ``MAX_ROWS_PER_REQUEST``).
    """
    if gpu_count < 0:
        raise ValueError("gpu_count must be 0 or more")
    env = {
        ENV_PROGRAM: "inference.py",
        ENV_SUBMIT_DIRECTORY: "/opt/ml/model/code",
        ENV_DEFAULT_ACCEPT: "application/json",
        ENV_MODEL_SERVER_TIMEOUT: str(INVOCATION_TIMEOUT_SECONDS),
    }
    if gpu_count == 0:
        # CPU: leave the TorchServe model config alone (one worker per vCPU by default).
        return env
    workers = str(gpu_count)
    env |= {
        ENV_MODEL_SERVER_WORKERS: workers,
        ENV_TS_MIN_WORKERS: workers,
        ENV_TS_MAX_WORKERS: workers,
        ENV_TS_BATCH_SIZE: "1",
        ENV_TS_MAX_BATCH_DELAY: "1",
        ENV_TS_RESPONSE_TIMEOUT: str(INVOCATION_TIMEOUT_SECONDS),
    }
    return env


def load_inference_module(model_dir: Path = MODEL_DIR) -> ModuleType:
    """Import ``<model_dir>/code/inference.py`` in-process (local mode), as the container does:
    ``code/`` goes on ``sys.path`` so its ``import features`` resolves. Then call
    ``module.model_fn(str(model_dir))`` once and ``input_fn``/``predict_fn``/``output_fn`` per
    request; ``InferenceClientError.status_code`` is the HTTP status of a rejected request.
    """
    code_dir = model_dir / "code"
    if str(code_dir) not in sys.path:
        sys.path.insert(0, str(code_dir))
    name = "invoice_anomaly_inference"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, code_dir / "inference.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {code_dir / 'inference.py'}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
