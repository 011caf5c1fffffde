"""The invoice anomaly network (PyTorch, training only) and its weight files.

Serving never imports this module: ``export.py`` turns the saved weights into ONNX, which
Triton's onnxruntime backend serves (and the local mode, through onnxruntime itself).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from aios.anomaly_features import N_FEATURES

WEIGHTS_FILE: Final[str] = "model.npz"
METADATA_FILE: Final[str] = "metadata.json"
HIDDEN: Final[tuple[int, ...]] = (64, 32)


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


def load_arrays(model_dir: Path) -> tuple[dict[str, npt.NDArray[np.float32]], dict[str, object]]:
    """``model.npz`` + ``metadata.json``; the version is checked against the weights."""
    meta = json.loads((model_dir / METADATA_FILE).read_text())
    with np.load(model_dir / WEIGHTS_FILE, allow_pickle=False) as npz:
        arrays = {k: npz[k].astype(np.float32) for k in npz.files}
    if weights_version(arrays) != meta["model_version"]:
        raise RuntimeError(f"weights hash {weights_version(arrays)} != metadata {meta['model_version']}")
    return arrays, meta


def load_module(model_dir: Path) -> InvoiceScorer:
    arrays, meta = load_arrays(model_dir)
    hidden = tuple(int(h) for h in meta["hidden"])  # type: ignore[attr-defined]
    module = InvoiceScorer(N_FEATURES, hidden)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()})
    return module.eval()
