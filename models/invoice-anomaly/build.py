"""Build the SageMaker artifact for the invoice anomaly scorer.

    .venv/bin/python models/invoice-anomaly/build.py [--force]

Trains (unless the artifacts are current), then writes

    artifacts/model/            model.npz, metadata.json, code/{inference,features}.py,
                                code/requirements.txt   (used in-process by the local mode)
    artifacts/model.tar.gz      the same tree in SageMaker's layout (byte-reproducible)
    artifacts/build.json        the source hash the artifacts were built from

"Current" means build.json holds the sha256 of the training/serving sources, the training
config and the torch version, and both outputs exist. Prints the model version.
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

_HERE = Path(__file__).resolve().parent
for _p in (_HERE, _HERE / "code"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import torch  # noqa: E402
from inference import METADATA_FILE, WEIGHTS_FILE  # noqa: E402
from train import TrainConfig, train  # noqa: E402

ARTIFACTS = _HERE / "artifacts"
MODEL_DIR = ARTIFACTS / "model"
TARBALL = ARTIFACTS / "model.tar.gz"
STAMP = ARTIFACTS / "build.json"
CODE_FILES = ("inference.py", "features.py", "requirements.txt")
SOURCES = ("generate.py", "train.py", "build.py", *(f"code/{f}" for f in CODE_FILES))


def source_hash(cfg: TrainConfig) -> str:
    digest = hashlib.sha256()
    for rel in SOURCES:
        digest.update(rel.encode())
        digest.update((_HERE / rel).read_bytes())
    digest.update(json.dumps(asdict(cfg), sort_keys=True).encode())
    digest.update(torch.__version__.encode())
    return digest.hexdigest()


def _current_version(expected_hash: str) -> str | None:
    try:
        stamp = json.loads(STAMP.read_text())
    except (OSError, ValueError):
        return None
    if stamp.get("source_hash") != expected_hash or not TARBALL.is_file():
        return None
    if not all((MODEL_DIR / f).is_file() for f in (WEIGHTS_FILE, METADATA_FILE)):
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


def build(*, force: bool = False, cfg: TrainConfig | None = None) -> str:
    """Make the artifacts current; returns the model version."""
    cfg = cfg or TrainConfig()
    expected = source_hash(cfg)
    if not force and (version := _current_version(expected)) is not None:
        sys.stdout.write(f"artifacts current: model_version={version}\n")
        return version
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ARTIFACTS) as tmp:
        staging = Path(tmp) / "model"
        result = train(staging, cfg)
        (staging / "code").mkdir()
        for name in CODE_FILES:
            shutil.copyfile(_HERE / "code" / name, staging / "code" / name)
        _write_tarball(staging, TARBALL)
        if MODEL_DIR.exists():
            shutil.rmtree(MODEL_DIR)
        staging.replace(MODEL_DIR)
    STAMP.write_text(
        json.dumps({"source_hash": expected, "model_version": result.model_version}, indent=2) + "\n"
    )
    sys.stdout.write(
        f"built {TARBALL.relative_to(_HERE.parent.parent)} "
        f"model_version={result.model_version} train_seconds={result.train_seconds:.1f}\n"
    )
    return result.model_version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the invoice anomaly SageMaker artifact.")
    parser.add_argument("--force", action="store_true", help="retrain even if the artifacts are current")
    args = parser.parse_args(argv)
    build(force=args.force)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
