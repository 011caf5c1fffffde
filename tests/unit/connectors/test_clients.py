"""aios.clients: every AWS client of the platform's code has standard retries and timeouts
that fit in its function's timeout, is made once per process, and is made nowhere else.

Retry modes: https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html;
botocore's defaults (60 s connect and read, legacy mode):
https://docs.aws.amazon.com/botocore/latest/reference/config.html."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from aios import clients
from aios.config import settings, variable
from aios.lineage import LineageWriter
from infrastructure.platform.default import PLATFORM

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name, value in {
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
    }.items():
        monkeypatch.setenv(name, value)
    settings.cache_clear()
    clients.reset()
    yield monkeypatch
    settings.cache_clear()
    clients.reset()


@pytest.mark.parametrize(("timeout", "attempts"), [(10, 3), (30, 3), (30, 2), (180, 2), (900, 3)])
def test_every_attempt_fits_in_the_functions_timeout(timeout: int, attempts: int) -> None:
    config = clients.client_config(timeout, max_attempts=attempts)
    assert config.retries == {"mode": "standard", "total_max_attempts": attempts}
    assert attempts * (config.connect_timeout + config.read_timeout) < timeout
    assert config.read_timeout <= 60 and config.connect_timeout <= 3


def test_a_longer_read_is_granted_only_as_far_as_the_timeout_allows() -> None:
    # model-invoke: 180 s, two attempts of a 70 s read, as it had before the factory
    generous = clients.client_config(180, max_attempts=2, read_timeout=70)
    assert (generous.connect_timeout, generous.read_timeout) == (3.0, 70.0)
    tight = clients.client_config(30, max_attempts=2, read_timeout=70)
    assert 2 * (tight.connect_timeout + tight.read_timeout) < 30


def test_clients_are_made_once_with_the_timeout_of_their_function(fresh: pytest.MonkeyPatch) -> None:
    fresh.setenv(variable("function_timeout_seconds"), "10")
    first = clients.dynamodb()
    assert clients.dynamodb() is first
    assert first.meta.config.read_timeout == clients.client_config(10).read_timeout
    assert first.meta.config.retries["mode"] == "standard"
    # Adapters default to the shared client and still take an injected one
    assert LineageWriter("lineage")._client is first
    assert LineageWriter("lineage", client=object())._client is not first  # type: ignore[arg-type]


def test_both_renderings_tell_each_function_its_timeout() -> None:
    for function in PLATFORM.functions:
        environment = PLATFORM.runtime_environment(function, stage="dev", secrets_prefix="aios", resolve=str)
        assert environment[variable("function_timeout_seconds")] == str(function.timeout_seconds)


def test_no_code_but_the_factory_makes_a_boto3_client() -> None:
    offenders = []
    for path in [*(ROOT / "layers" / "aios" / "python").rglob("*.py"), *(ROOT / "functions").rglob("*.py")]:
        if path.name == "clients.py" and path.parent.name == "aios":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [alias.name for alias in node.names]
                module = node.module if isinstance(node, ast.ImportFrom) else None
                if "boto3" in names or module in {"boto3", "boto3.session"}:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
