"""The shared layer holds Lambda's ARM64 wheels, not the host's, and the aios package."""

from __future__ import annotations

import json
from pathlib import Path

from infrastructure.layer_build import LAMBDA_PYTHON_VERSION, LAYER_DEPENDENCIES
from tests.infrastructure.synth import Synthesized

ELF_MACHINE_AARCH64 = 183  # e_machine of an ARM64 ELF file
ELF_MACHINE_X86_64 = 62


def _elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{path} is not an ELF file"
    return int.from_bytes(header[18:20], "little")


def _layer_asset(synthesized: Synthesized) -> Path:
    assets = json.loads((synthesized.outdir / "aios-dev-platform.assets.json").read_text())["files"]
    folders = [
        synthesized.outdir / a["source"]["path"]
        for a in assets.values()
        if a["source"].get("packaging") == "zip"
    ]
    layer = [folder for folder in folders if (folder / "python" / "aios").is_dir()]
    assert len(layer) == 1, "exactly one asset is the shared layer"
    return layer[0]


def test_layer_dependencies_are_arm64_wheels() -> None:
    wheels = list(LAYER_DEPENDENCIES.glob("*.dist-info/WHEEL"))
    compiled = [w for w in wheels if "Root-Is-Purelib: false" in w.read_text()]
    assert compiled, "pydantic-core at least is compiled"
    for wheel in compiled:
        tags = [line.split(": ", 1)[1] for line in wheel.read_text().splitlines() if line.startswith("Tag: ")]
        assert tags and all(tag.endswith("aarch64") for tag in tags), f"{wheel.parent.name}: {tags}"
        cp = f"cp{LAMBDA_PYTHON_VERSION.replace('.', '')}"
        assert all(tag.startswith((cp, "cp3")) for tag in tags)


def test_synthesized_layer_holds_arm64_binaries_and_the_aios_package(synthesized: Synthesized) -> None:
    layer = _layer_asset(synthesized) / "python"
    shared_objects = list(layer.rglob("*.so"))
    assert any("pydantic_core" in str(path) for path in shared_objects)
    assert {_elf_machine(path) for path in shared_objects} == {ELF_MACHINE_AARCH64}
    assert (layer / "aios" / "config.py").is_file()
    assert not list(layer.rglob("__pycache__"))
