"""The served artifact: ONNX export, the Triton model configuration checked against the exported
model, the repository layout inside model.tar.gz, and the registry's approval gate."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime  # type: ignore[import-untyped]
import pytest
import torch

from aios.anomaly_features import N_FEATURES
from models.invoice_anomaly import build, serving
from models.invoice_anomaly.export import onnx_model, served_config, triton_version, write_repository
from models.invoice_anomaly.generate import generate
from models.invoice_anomaly.network import load_arrays, load_module
from models.invoice_anomaly.train import featurize

ONNX_TYPES = {onnx.TensorProto.FLOAT: "TYPE_FP32"}


def _exported(model_dir: Path) -> tuple[onnx.ModelProto, str]:
    arrays, meta = load_arrays(model_dir)
    version = str(meta["model_version"])
    model = onnx_model(
        arrays, model_version=version, input_name=serving.INPUT_NAME, output_name=serving.OUTPUT_NAME
    )
    return model, version


def _config(kind: Any = "KIND_GPU") -> str:
    return served_config(kind)


def _dims(value_info: onnx.ValueInfoProto) -> list[int | str]:
    return [
        d.dim_value if d.HasField("dim_value") else d.dim_param for d in value_info.type.tensor_type.shape.dim
    ]


def check_config_matches_model(config: dict[str, Any], model: onnx.ModelProto) -> None:
    """What Triton's onnxruntime backend checks at load, from the ONNX protobuf itself."""
    assert config["backend"] == "onnxruntime"
    batching = config["max_batch_size"] > 0
    for key, graph in (("input", model.graph.input), ("output", model.graph.output)):
        configured = config[key] if isinstance(config[key], list) else [config[key]]
        by_name = {value.name: value for value in graph}
        assert {item["name"] for item in configured} == set(by_name), key
        for item in configured:
            value = by_name[item["name"]]
            assert ONNX_TYPES[value.type.tensor_type.elem_type] == item["data_type"]
            batch, *dims = _dims(value)
            assert isinstance(batch, str) == batching  # a dynamic batch dimension first
            assert dims == item["dims"]


def test_config_pbtxt_parses_and_matches_the_exported_model(trained_model_dir: Path) -> None:
    # Given the exported model and the configuration build.py writes
    model, _ = _exported(trained_model_dir)
    config = serving.parse_pbtxt(_config())
    # Then names, types and shapes agree with the ONNX graph
    check_config_matches_model(config, model)
    assert config["name"] == serving.TRITON_MODEL
    assert config["input"][0]["dims"] == [N_FEATURES]
    # And every GPU serves, with dynamic batching
    assert config["instance_group"] == [{"kind": "KIND_GPU", "count": 1}]
    assert config["dynamic_batching"]["preferred_batch_size"] == list(serving.PREFERRED_BATCH_SIZES)
    assert config["dynamic_batching"]["max_queue_delay_microseconds"] == serving.MAX_QUEUE_DELAY_US
    assert max(serving.PREFERRED_BATCH_SIZES) <= config["max_batch_size"] == serving.MAX_BATCH_SIZE


def test_a_config_that_disagrees_with_the_model_is_caught(trained_model_dir: Path) -> None:
    model, _ = _exported(trained_model_dir)
    wrong = serving.parse_pbtxt(_config().replace(f"dims: [ {N_FEATURES} ]", "dims: [ 14 ]"))
    with pytest.raises(AssertionError):
        check_config_matches_model(wrong, model)
    renamed = serving.parse_pbtxt(_config().replace('name: "features"', 'name: "input"'))
    with pytest.raises(AssertionError):
        check_config_matches_model(renamed, model)


def test_the_built_artifact_config_matches_its_model() -> None:
    # The files `make model` wrote (skipped on a clean clone before the first build)
    config_file = serving.MODEL_DIR / serving.TRITON_MODEL / "config.pbtxt"
    if not config_file.is_file():
        pytest.skip("run `make model` first")
    (onnx_file,) = (serving.MODEL_DIR / serving.TRITON_MODEL).glob("*/model.onnx")
    check_config_matches_model(serving.parse_pbtxt(config_file.read_text()), onnx.load(onnx_file))
    meta = json.loads((serving.MODEL_DIR / serving.TRITON_MODEL / "metadata.json").read_text())
    assert onnx_file.parent.name == str(triton_version(meta["model_version"]))


def test_onnx_scores_equal_the_trained_network(trained_model_dir: Path) -> None:
    model, _ = _exported(trained_model_dir)
    x = featurize(generate(300, seed=9).invoices)
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (scores,) = session.run([serving.OUTPUT_NAME], {serving.INPUT_NAME: x})
    with torch.inference_mode():
        expected = load_module(trained_model_dir)(torch.from_numpy(x)).numpy()
    assert scores.shape == (300, 1)
    np.testing.assert_allclose(scores[:, 0], expected, atol=1e-6)


def test_export_is_byte_reproducible(trained_model_dir: Path) -> None:
    first, _ = _exported(trained_model_dir)
    second, _ = _exported(trained_model_dir)
    assert first.SerializeToString(deterministic=True) == second.SerializeToString(deterministic=True)


def test_repository_layout_and_tarball(trained_model_dir: Path, tmp_path: Path) -> None:
    # Given a repository written the way build.py writes it
    model, version = _exported(trained_model_dir)
    root = tmp_path / "repo"
    write_repository(
        root,
        name=serving.TRITON_MODEL,
        model=model,
        config=_config("KIND_CPU"),
        model_version=version,
        metadata=b"{}",
    )
    build._write_tarball(root, tmp_path / "a.tar.gz")
    (root / serving.TRITON_MODEL / "config.pbtxt").touch()  # a newer mtime must not change the bytes
    build._write_tarball(root, tmp_path / "b.tar.gz")
    # Then the tarball is reproducible and rooted at the Triton model repository
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress((tmp_path / "a.tar.gz").read_bytes()))) as tar:
        names = set(tar.getnames())
    triton = str(int(version, 16))
    assert names == {
        "invoice-anomaly",
        "invoice-anomaly/config.pbtxt",
        f"invoice-anomaly/{triton}",
        f"invoice-anomaly/{triton}/model.onnx",
        "invoice-anomaly/metadata.json",
    }
    assert serving.hex_version(triton) == version


def test_the_container_is_told_which_model_answers() -> None:
    assert serving.serving_environment() == {"SAGEMAKER_TRITON_DEFAULT_MODEL_NAME": serving.TRITON_MODEL}


@pytest.mark.parametrize(
    ("auc", "precision", "status"),
    [(0.99, 0.8, "Approved"), (0.97, 0.8, "Rejected"), (0.99, 0.7, "Rejected")],
)
def test_the_approval_gate(auc: float, precision: float, status: str) -> None:
    assert build.approval({"roc_auc": auc, "precision_at_review_rate": precision})[0] == status


def test_every_artifact_becomes_one_registry_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serving, "REGISTRY_FILE", tmp_path / "registry.json")
    entry = {"model_version": "a" * 12, "artifact_sha256": {"gpu": "1"}, "approval_status": "Approved"}
    first = build.register(entry)
    assert build.register(entry) == first  # the same artifact again: no new version
    second = build.register({**entry, "artifact_sha256": {"gpu": "2"}})
    assert (first["model_package_version"], second["model_package_version"]) == (1, 2)
    assert [e["model_package_version"] for e in serving.registry_entries(tmp_path / "registry.json")] == [
        1,
        2,
    ]
    assert serving.approved_entry("a" * 12, tmp_path / "registry.json") == second


def test_pbtxt_parser_handles_lists_messages_and_comments() -> None:
    text = (
        'name: "m" # comment\nmax_batch_size: 8\nx [ { a: 1 }, { a: 2 } ]\n'
        "y { z: [ 1, 2 ] ok: true }\nk: KIND_GPU\n"
    )
    assert serving.parse_pbtxt(text) == {
        "name": "m",
        "max_batch_size": 8,
        "x": [{"a": 1}, {"a": 2}],
        "y": {"z": [1, 2], "ok": True},
        "k": "KIND_GPU",
    }
