"""Build, evaluate and register the invoice anomaly model.

    .venv/bin/python -m models.invoice_anomaly.build [--force]

Trains (unless the artifacts are current), exports ONNX, evaluates the exported model, then
writes

    artifacts/model/              the Triton model repository (GPU config), for the local mode
    artifacts/model.tar.gz        that repository in SageMaker's layout (GPU instances)
    artifacts/model-cpu.tar.gz    the same with ``instance_group { kind: KIND_CPU }``
    artifacts/metrics.json        evaluate.py's metrics (the model package's ModelQuality)
    artifacts/registry.json       the local model registry: one model package version per
                                  artifact built, with metrics and an approval status
    artifacts/build.json          the source hash the artifacts were built from

"Current" means build.json holds the sha256 of the sources, the training config and the
torch/onnx versions, and the outputs exist. Tarballs are byte-reproducible (sorted entries,
zeroed owners and times, gzip mtime 0). Prints the model version and its approval.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import shutil
import sys
import tarfile
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import onnx
import torch

from models.invoice_anomaly import serving
from models.invoice_anomaly.evaluate import evaluate
from models.invoice_anomaly.export import onnx_model, served_config, write_repository
from models.invoice_anomaly.network import METADATA_FILE, load_arrays
from models.invoice_anomaly.train import TrainConfig, train

_HERE = Path(__file__).resolve().parent
_LAYER = _HERE.parents[1] / "layers" / "aios" / "python"

ARTIFACTS = serving.ARTIFACTS_DIR
MODEL_DIR = serving.MODEL_DIR
STAMP = ARTIFACTS / "build.json"
SOURCES = (
    _HERE / "generate.py",
    _HERE / "network.py",
    _HERE / "train.py",
    _HERE / "export.py",
    _HERE / "evaluate.py",
    _HERE / "serving.py",
    _HERE / "build.py",
    _LAYER / "aios" / "anomaly_features.py",
)
KINDS = {"gpu": "KIND_GPU", "cpu": "KIND_CPU"}


def source_hash(cfg: TrainConfig) -> str:
    digest = hashlib.sha256()
    for path in SOURCES:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    digest.update(json.dumps(asdict(cfg), sort_keys=True).encode())
    digest.update(f"torch {torch.__version__} onnx {onnx.__version__}".encode())
    return digest.hexdigest()


def _current_version(expected_hash: str) -> str | None:
    try:
        stamp = json.loads(STAMP.read_text())
    except (OSError, ValueError):
        return None
    outputs = [*serving.MODEL_TARBALLS.values(), serving.REGISTRY_FILE, serving.METRICS_FILE]
    if stamp.get("source_hash") != expected_hash or not all(p.is_file() for p in outputs):
        return None
    if not (MODEL_DIR / serving.TRITON_MODEL / serving.METADATA_NAME).is_file():
        return None
    version: str = stamp["model_version"]
    return version


def _write_tarball(src: Path, dest: Path) -> None:
    """Deterministic tar.gz of ``src``'s contents at the archive root (sorted, zeroed metadata)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in src.rglob("*") if "__pycache__" not in p.parts):
            info = tar.gettarinfo(str(path), arcname=path.relative_to(src).as_posix())
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            info.mode = 0o755 if path.is_dir() else 0o644
            if path.is_file():
                with path.open("rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)
    tmp = dest.with_suffix(".tmp")
    with tmp.open("wb") as out, gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz:
        gz.write(raw.getvalue())
    tmp.replace(dest)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def approval(metrics: dict[str, Any]) -> tuple[str, str]:
    """The registry's approval status of an artifact, from its held-out metrics."""
    auc, precision = metrics["roc_auc"], metrics["precision_at_review_rate"]
    if auc >= serving.MIN_ROC_AUC and precision >= serving.MIN_PRECISION_AT_REVIEW_RATE:
        return "Approved", (
            f"ROC-AUC {auc:.4f} >= {serving.MIN_ROC_AUC} and precision@review rate "
            f"{precision:.4f} >= {serving.MIN_PRECISION_AT_REVIEW_RATE}"
        )
    return "Rejected", (
        f"below the gate: ROC-AUC {auc:.4f} (min {serving.MIN_ROC_AUC}), precision@review rate "
        f"{precision:.4f} (min {serving.MIN_PRECISION_AT_REVIEW_RATE})"
    )


def model_quality(metrics: dict[str, Any]) -> dict[str, Any]:
    """metrics.json in the layout SageMaker shows for binary classifiers (ModelQuality)."""
    return {
        "version": 0.0,
        "binary_classification_metrics": {
            "auc": {"value": metrics["roc_auc"], "standard_deviation": "NaN"},
            "precision": {"value": metrics["precision_at_review_rate"], "standard_deviation": "NaN"},
            "recall": {"value": metrics["recall_at_review_rate"], "standard_deviation": "NaN"},
        },
        "aios": metrics,
    }


def register(entry: dict[str, Any]) -> dict[str, Any]:
    """Append a model package version to the local registry (once per artifact)."""
    entries = serving.registry_entries()
    for existing in entries:
        if existing["artifact_sha256"] == entry["artifact_sha256"]:
            return existing
    entry = {**entry, "model_package_version": len(entries) + 1}
    serving.REGISTRY_FILE.write_text(
        json.dumps({"model_package_group": serving.MODEL_NAME, "model_packages": [*entries, entry]}, indent=2)
        + "\n"
    )
    return entry


def build(*, force: bool = False, cfg: TrainConfig | None = None) -> str:
    """Make the artifacts current; returns the model version."""
    cfg = cfg or TrainConfig()
    expected = source_hash(cfg)
    if not force and (version := _current_version(expected)) is not None:
        sys.stdout.write(f"artifacts current: model_version={version}\n")
        return version
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ARTIFACTS) as tmp:
        trained = Path(tmp) / "trained"
        result = train(trained, cfg)
        arrays, _ = load_arrays(trained)
        model = onnx_model(
            arrays,
            model_version=result.model_version,
            input_name=serving.INPUT_NAME,
            output_name=serving.OUTPUT_NAME,
        )
        metadata = (trained / METADATA_FILE).read_bytes()
        repositories = {}
        for kind, instance_kind in KINDS.items():
            root = Path(tmp) / f"repository-{kind}"
            write_repository(
                root,
                name=serving.TRITON_MODEL,
                model=model,
                model_version=result.model_version,
                metadata=metadata,
                config=served_config(instance_kind),  # type: ignore[arg-type]
            )
            _write_tarball(root, serving.MODEL_TARBALLS[kind])
            repositories[kind] = root
        onnx_file = next((repositories["gpu"] / serving.TRITON_MODEL).glob("*/model.onnx"))
        metrics = evaluate(onnx_file).metrics()
        if MODEL_DIR.exists():
            shutil.rmtree(MODEL_DIR)
        repositories["gpu"].replace(MODEL_DIR)
    serving.METRICS_FILE.write_text(json.dumps(model_quality(metrics), indent=2) + "\n")
    status, reason = approval(metrics)
    entry = register(
        {
            "model_version": result.model_version,
            "source_hash": expected,
            "artifact_sha256": {kind: sha256(path) for kind, path in serving.MODEL_TARBALLS.items()},
            "metrics": metrics,
            "approval_status": status,
            "approval_reason": reason,
        }
    )
    STAMP.write_text(
        json.dumps({"source_hash": expected, "model_version": result.model_version}, indent=2) + "\n"
    )
    sys.stdout.write(
        f"built {serving.MODEL_TARBALL.relative_to(_HERE.parents[1])} model_version={result.model_version} "
        f"train_seconds={result.train_seconds:.1f} roc_auc={metrics['roc_auc']:.4f} "
        f"precision@{metrics['review_rate']:.0%}={metrics['precision_at_review_rate']:.4f} "
        f"model_package_version={entry['model_package_version']} {status}\n"
    )
    return result.model_version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the invoice anomaly model artifacts.")
    parser.add_argument("--force", action="store_true", help="retrain even if the artifacts are current")
    args = parser.parse_args(argv)
    build(force=args.force)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
