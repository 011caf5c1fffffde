"""Fixtures for the model tests (``models.invoice_anomaly``; sockets: tests/unit/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.invoice_anomaly import train


@pytest.fixture(scope="session")
def trained_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scorer trained on a smaller set than the release build (seconds, not tens)."""
    out = tmp_path_factory.mktemp("invoice-model")
    train.train(out, train.TrainConfig(n_train=20_000, epochs=12))
    return out
