"""Evaluate the served model on a held-out set generated with a different seed.

    .venv/bin/python -m models.invoice_anomaly.evaluate [--model PATH/model.onnx]

Prints ROC-AUC (rank statistic, numpy only), precision and recall at a fixed review rate (the
top ``--review-rate`` fraction of invoices by score, 5% by default) and recall per anomaly kind.
Scores come from the exported ONNX file through onnxruntime (the runtime Triton's backend
embeds) on the shared feature rows, i.e. what the endpoint answers. ``build.py`` registers
these metrics with every model package version.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime  # type: ignore[import-untyped]

from models.invoice_anomaly import serving
from models.invoice_anomaly.generate import ANOMALY_KINDS, generate
from models.invoice_anomaly.train import featurize

HOLDOUT_SEED = 20_250_101
DEFAULT_N_HOLDOUT = 20_000
DEFAULT_REVIEW_RATE = 0.05


def roc_auc(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Area under the ROC curve = P(score of a positive > score of a negative), ties count 1/2."""
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC-AUC needs both classes")
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(len(s), dtype=np.float64)
    # Average ranks over ties (1-based).
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def precision_at_rate(labels: npt.ArrayLike, scores: npt.ArrayLike, rate: float) -> tuple[float, float]:
    """Precision and recall when the top ``rate`` fraction by score is sent to review."""
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    k = max(1, round(len(s) * rate))
    top = np.argsort(-s, kind="mergesort")[:k]
    hits = int(y[top].sum())
    return hits / k, hits / max(int(y.sum()), 1)


@dataclass(frozen=True, slots=True)
class Report:
    auc: float
    precision: float
    recall: float
    review_rate: float
    n: int
    recall_by_kind: dict[str, float]

    def metrics(self) -> dict[str, float | int]:
        """What the model package version records (``ModelQuality`` statistics)."""
        return {
            "roc_auc": round(self.auc, 6),
            "precision_at_review_rate": round(self.precision, 6),
            "recall_at_review_rate": round(self.recall, 6),
            "review_rate": self.review_rate,
            "holdout_invoices": self.n,
        }


def onnx_scores(model: Path, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Scores of a feature matrix through onnxruntime on the CPU."""
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (out,) = session.run([serving.OUTPUT_NAME], {serving.INPUT_NAME: x})
    return np.asarray(out, dtype=np.float32).reshape(-1)


def evaluate(
    model: Path,
    *,
    n: int = DEFAULT_N_HOLDOUT,
    seed: int = HOLDOUT_SEED,
    review_rate: float = DEFAULT_REVIEW_RATE,
) -> Report:
    data = generate(n, seed=seed)
    scores = onnx_scores(model, featurize(data.invoices))
    auc = roc_auc(data.labels, scores)
    precision, recall = precision_at_rate(data.labels, scores, review_rate)
    k = max(1, round(n * review_rate))
    flagged = np.zeros(n, dtype=bool)
    flagged[np.argsort(-scores, kind="mergesort")[:k]] = True
    kinds = np.array(data.kinds)
    by_kind = {kind: float(flagged[kinds == kind].mean()) for kind in ANOMALY_KINDS if (kinds == kind).any()}
    return Report(auc, precision, recall, review_rate, n, by_kind)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate the invoice anomaly scorer.")
    parser.add_argument("--model", type=Path, default=None, help="model.onnx (default: the built one)")
    parser.add_argument("--n", type=int, default=DEFAULT_N_HOLDOUT)
    parser.add_argument("--seed", type=int, default=HOLDOUT_SEED)
    parser.add_argument("--review-rate", type=float, default=DEFAULT_REVIEW_RATE)
    args = parser.parse_args(argv)
    model = args.model or next((serving.MODEL_DIR / serving.TRITON_MODEL).glob("*/model.onnx"))
    r = evaluate(model, n=args.n, seed=args.seed, review_rate=args.review_rate)
    out = [
        f"held-out invoices: {r.n} (seed {args.seed})",
        f"ROC-AUC: {r.auc:.4f}",
        f"precision@{r.review_rate:.0%} review rate: {r.precision:.4f} (recall {r.recall:.4f})",
        *(f"  recall[{k}]: {v:.3f}" for k, v in r.recall_by_kind.items()),
    ]
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
