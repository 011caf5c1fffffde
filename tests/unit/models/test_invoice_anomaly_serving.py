"""Serving settings (imported by the CDK stack) and the artifact layout."""

from __future__ import annotations

import gzip
import json
import shutil
import tarfile
from pathlib import Path

import features
import inference
import pytest
import serving
from generate import generate

import build


@pytest.mark.parametrize("gpus", [1, 4, 8])
def test_every_gpu_gets_a_worker_when_ts_variables_are_set(gpus: int) -> None:
    env = serving.serving_environment(gpus)
    assert any(k.startswith("SAGEMAKER_TS_") for k in env)
    assert env["SAGEMAKER_TS_MIN_WORKERS"] == env["SAGEMAKER_TS_MAX_WORKERS"] == str(gpus)
    assert env["SAGEMAKER_MODEL_SERVER_WORKERS"] == str(gpus)
    assert env["SAGEMAKER_PROGRAM"] == "inference.py"
    assert all(isinstance(v, str) for v in env.values())


def test_cpu_environment_sets_no_torchserve_model_config() -> None:
    env = serving.serving_environment(0)
    assert not any(k.startswith("SAGEMAKER_TS_") for k in env)
    with pytest.raises(ValueError, match="gpu_count"):
        serving.serving_environment(-1)


def test_limits_agree_with_the_container_code() -> None:
    assert serving.MAX_REQUEST_BYTES == inference.MAX_REQUEST_BYTES == 6 * 1024 * 1024
    assert serving.MAX_ROWS_PER_REQUEST == features.MAX_ROWS


def test_tarball_is_reproducible_and_rooted(tmp_path: Path) -> None:
    src = tmp_path / "model"
    (src / "code").mkdir(parents=True)
    (src / "model.npz").write_bytes(b"weights")
    (src / "code" / "inference.py").write_text("x = 1\n")
    build._write_tarball(src, tmp_path / "a.tar.gz")
    (src / "model.npz").touch()  # a newer mtime must not change the bytes
    build._write_tarball(src, tmp_path / "b.tar.gz")
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    with tarfile.open(tmp_path / "a.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["code", "code/inference.py", "model.npz"]
    assert gzip.decompress((tmp_path / "a.tar.gz").read_bytes())


def test_load_inference_module_runs_in_process(trained_model_dir: Path) -> None:
    # Given an unpacked artifact (weights at the root, code/ beside them)
    code = trained_model_dir.parent / "local-model" / "code"
    shutil.copytree(trained_model_dir, code.parent, dirs_exist_ok=True)
    shutil.copytree(Path(features.__file__).parent, code, dirs_exist_ok=True)
    # When the local mode loads it the way the container does
    module = serving.load_inference_module(code.parent)
    model = module.model_fn(str(code.parent))
    request = json.dumps(generate(3, seed=5).invoices)
    body = module.output_fn(module.predict_fn(module.input_fn(request, "application/json"), model), None)
    # Then it answers like the container would
    assert json.loads(body)["model_version"] == model.version
    assert len(json.loads(body)["scores"]) == 3
