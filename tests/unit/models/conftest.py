"""Fixtures for the model tests: the invoice anomaly sources on ``sys.path``, no sockets."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
MODEL_ROOT = REPO / "models" / "invoice-anomaly"
for _path in (MODEL_ROOT, REPO / "layers" / "aios" / "python"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import train  # noqa: E402


@pytest.fixture(autouse=True)
def _no_sockets(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(*_args: Any, **_kwargs: Any) -> socket.socket:
        raise RuntimeError("unit tests must not open sockets")

    monkeypatch.setattr(socket, "socket", refuse)
    yield


@pytest.fixture(scope="session")
def trained_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scorer trained on a smaller set than the release build (seconds, not tens)."""
    out = tmp_path_factory.mktemp("invoice-model")
    train.train(out, train.TrainConfig(n_train=20_000, epochs=12))
    return out
