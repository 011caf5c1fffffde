"""Train the invoice anomaly scorer (supervised MLP, class-weighted BCE) on CPU, deterministically.

    .venv/bin/python -m models.invoice_anomaly.train --out /tmp/invoice-model

Writes ``model.npz`` (weights + feature standardisation, float32, no pickle) and
``metadata.json`` (model version = first 12 hex of the weights' sha256, features, seed, sizes,
training time) into ``--out``. Same seed, same data size, same torch build -> same bytes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

# The shared feature code lives in the aios layer (model-invoke computes the same rows).
from aios.anomaly_features import FEATURE_NAMES, N_FEATURES, feature_rows
from models.invoice_anomaly.generate import generate
from models.invoice_anomaly.network import (
    HIDDEN,
    METADATA_FILE,
    WEIGHTS_FILE,
    InvoiceScorer,
    state_arrays,
    weights_version,
)

DEFAULT_SEED = 7
DEFAULT_N_TRAIN = 60_000


@dataclass(frozen=True)
class TrainConfig:
    seed: int = DEFAULT_SEED
    n_train: int = DEFAULT_N_TRAIN
    epochs: int = 25
    batch_size: int = 512
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4


@dataclass(frozen=True, slots=True)
class TrainResult:
    model_version: str
    train_seconds: float
    final_loss: float
    out_dir: Path


def _set_determinism(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.use_deterministic_algorithms(True)


def featurize(invoices: list[dict[str, Any]]) -> npt.NDArray[np.float32]:
    """The shared feature rows as the float32 matrix the network and the endpoint see."""
    return np.asarray(feature_rows(invoices), dtype=np.float32).reshape(len(invoices), N_FEATURES)


def fit(x: npt.NDArray[np.float32], y: npt.NDArray[np.int8], cfg: TrainConfig) -> tuple[InvoiceScorer, float]:
    """Fit the scorer on features ``x`` and labels ``y``; returns the model and the last loss."""
    _set_determinism(cfg.seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # reductions in a fixed order: identical weights on any host
    try:
        model = InvoiceScorer(N_FEATURES, HIDDEN)
        mean = x.mean(axis=0)
        std = x.std(axis=0)
        model.feature_mean.copy_(torch.from_numpy(mean))
        model.feature_scale.copy_(torch.from_numpy(1.0 / np.where(std > 1e-6, std, 1.0)))
        xt = torch.from_numpy(x)
        yt = torch.from_numpy(y.astype(np.float32))
        pos = float(y.sum())
        pos_weight = torch.tensor((len(y) - pos) / max(pos, 1.0))
        loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
        gen = torch.Generator().manual_seed(cfg.seed)
        loss_value = float("nan")
        model.train()
        for _ in range(cfg.epochs):
            order = torch.randperm(len(xt), generator=gen)
            total, batches = 0.0, 0
            for start in range(0, len(xt), cfg.batch_size):
                idx = order[start : start + cfg.batch_size]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model.logits(xt[idx]), yt[idx])
                loss.backward()
                opt.step()
                total += float(loss.detach())
                batches += 1
            sched.step()
            loss_value = total / max(batches, 1)
        return model.eval(), loss_value
    finally:
        torch.set_num_threads(threads)


def save(model: InvoiceScorer, out_dir: Path, extra: dict[str, Any]) -> str:
    """Write weights and metadata; returns the model version."""
    out_dir.mkdir(parents=True, exist_ok=True)
    arrays = state_arrays(model)
    version = weights_version(arrays)
    with (out_dir / WEIGHTS_FILE).open("wb") as fh:
        np.savez(fh, allow_pickle=False, **arrays)
    meta = {
        "model_version": version,
        "n_features": N_FEATURES,
        "feature_names": list(FEATURE_NAMES),
        "hidden": list(HIDDEN),
        "torch_version": torch.__version__,
        **extra,
    }
    (out_dir / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return version


def train(out_dir: Path, cfg: TrainConfig | None = None) -> TrainResult:
    cfg = cfg or TrainConfig()
    started = time.perf_counter()
    data = generate(cfg.n_train, seed=cfg.seed)
    x = featurize(data.invoices)
    model, loss = fit(x, data.labels, cfg)
    seconds = time.perf_counter() - started
    version = save(model, out_dir, {"train_config": asdict(cfg)})
    return TrainResult(model_version=version, train_seconds=seconds, final_loss=loss, out_dir=out_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the invoice anomaly scorer.")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--n-train", type=int, default=DEFAULT_N_TRAIN)
    parser.add_argument("--epochs", type=int, default=TrainConfig().epochs)
    args = parser.parse_args(argv)
    result = train(args.out, TrainConfig(seed=args.seed, n_train=args.n_train, epochs=args.epochs))
    sys.stdout.write(
        f"model_version={result.model_version} train_seconds={result.train_seconds:.1f} "
        f"final_loss={result.final_loss:.4f} out={result.out_dir}\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
