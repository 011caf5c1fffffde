"""Install the shared layer's third-party dependencies for the Lambda platform, without Docker.

``make setup`` runs this once; synth stays offline and only copies the result. pip's
``--platform``/``--only-binary`` options fetch the ARM64 manylinux wheels (pydantic-core is
compiled), whatever the host is. Versions come from pyproject.toml, so a pin is written once.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LAYER_SOURCE = REPO_ROOT / "layers" / "aios" / "python"
LAYER_DEPENDENCIES = REPO_ROOT / "build" / "layer-dependencies" / "python"
#: The Lambda runtime the functions use (infrastructure/constructs/functions.py) and its platform.
LAMBDA_PYTHON_VERSION = "3.14"
LAMBDA_PLATFORMS = ("manylinux_2_28_aarch64", "manylinux2014_aarch64")
#: Distributions of pyproject.toml that the functions need at run time. boto3 is included
#: although the runtime has one: the runtime's boto3 lags the pinned one, and the functions
#: must run what the tests ran.
LAYER_DISTRIBUTIONS = ("aws-lambda-powertools", "pydantic", "httpx", "boto3")


def layer_requirements() -> list[str]:
    dependencies = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    by_name = {
        re.split(r"[\[=<>~ ]", requirement, maxsplit=1)[0]: requirement for requirement in dependencies
    }
    return [by_name[name] for name in LAYER_DISTRIBUTIONS]


def build(*, force: bool = False) -> Path:
    requirements = layer_requirements()
    fingerprint = hashlib.sha256(
        "\n".join([LAMBDA_PYTHON_VERSION, *LAMBDA_PLATFORMS, *requirements]).encode()
    ).hexdigest()
    stamp = LAYER_DEPENDENCIES.parent / "fingerprint"
    if not force and stamp.exists() and stamp.read_text() == fingerprint:
        return LAYER_DEPENDENCIES
    shutil.rmtree(LAYER_DEPENDENCIES.parent, ignore_errors=True)
    LAYER_DEPENDENCIES.mkdir(parents=True)
    platforms = [argument for platform in LAMBDA_PLATFORMS for argument in ("--platform", platform)]
    subprocess.run(  # noqa: S603 - fixed arguments, our own interpreter
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--target", str(LAYER_DEPENDENCIES), "--implementation", "cp",
            "--python-version", LAMBDA_PYTHON_VERSION, "--only-binary=:all:", *platforms,
            *requirements,
        ],
        check=True,
    )  # fmt: skip
    stamp.write_text(fingerprint)
    return LAYER_DEPENDENCIES


if __name__ == "__main__":
    print(f"layer dependencies ready in {build(force='--force' in sys.argv).relative_to(REPO_ROOT)}")
