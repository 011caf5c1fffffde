"""The local Lambda service: each function in its own worker processes, as Lambda runs it."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from infrastructure.local.faults import FAULTS_ADAPTER, Faults
from infrastructure.local.lambda_runtime import LambdaRuntime, Throttled, worker_environment
from infrastructure.local.lambda_worker import IAM_POLICY_FILE_ENV
from tests.integration.local.conftest import fixture_function as function


@pytest.fixture
def runtime() -> Iterator[LambdaRuntime]:
    functions = {
        f.spec.name: f
        for f in (
            function("alpha", "probe", AIOS_STAGE="alpha-stage"),
            function("beta", "probe", AIOS_STAGE="beta-stage"),
            function("slow", "probe", timeout=1),
            function("single", "probe", reserved=1),
            function("failing", "fail"),
        )
    }
    local = LambdaRuntime(functions, Faults(), aws_endpoint="http://127.0.0.1:9", default_concurrency=4)
    yield local
    local.stop()


def call(runtime: LambdaRuntime, name: str, event: dict[str, Any] | None = None) -> Any:
    function = runtime.find(name)
    assert function is not None
    return runtime.invoke(function, event or {})


def test_each_function_sees_exactly_its_own_environment(
    runtime: LambdaRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a variable in this (the hosting) process's environment
    monkeypatch.setenv("MARKER_OF_THE_HOST", "1")

    # When two functions with different environments run
    alpha, beta = call(runtime, "alpha").json(), call(runtime, "beta").json()

    # Then each sees its own variables and nothing of the host's or the other's
    assert alpha["environment"]["AIOS_STAGE"] == "alpha-stage"
    assert beta["environment"]["AIOS_STAGE"] == "beta-stage"
    assert "MARKER_OF_THE_HOST" not in alpha["environment"]
    assert alpha["pid"] != beta["pid"] != os.getpid()
    assert alpha["function_name"] == "aios-test-alpha"


def test_cold_start_once_then_warm_with_module_state(runtime: LambdaRuntime) -> None:
    first, second = call(runtime, "alpha").json(), call(runtime, "alpha").json()
    assert first["pid"] == second["pid"]
    assert (first["invocations"], second["invocations"]) == (1, 2)
    assert first["request_id"] != second["request_id"]
    assert runtime.pools["alpha"].stats.cold_starts == 1


def test_concurrent_invocations_run_in_parallel_workers(runtime: LambdaRuntime) -> None:
    # Given two warm workers (cold starts are one at a time per function)
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda _: call(runtime, "beta", {"sleep": 1.0}), range(2)))
    assert runtime.pools["beta"].stats.cold_starts == 2

    # When four invocations of one second each arrive at once
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: call(runtime, "beta", {"sleep": 1.0}).json(), range(4)))
    elapsed = time.monotonic() - started

    # Then they ran side by side in separate processes, not one after another
    assert len({r["pid"] for r in results}) >= 2
    assert runtime.pools["beta"].stats.peak_concurrency >= 2
    assert elapsed < 3.5, elapsed


def test_the_context_has_the_remaining_time(runtime: LambdaRuntime) -> None:
    result = call(runtime, "alpha", {"sleep": 0.2}).json()
    assert 0 < result["remaining_ms"] <= 10_000 - 200


def test_errors_are_reported_with_the_exception_name(runtime: LambdaRuntime) -> None:
    invocation = call(runtime, "failing", {"error": "Connector.Rejected"})
    assert invocation.function_error == "Unhandled"
    body = invocation.json()
    assert (body["errorType"], body["errorMessage"]) == ("Connector.Rejected", "the handler says no")
    assert body["stackTrace"]


def test_a_handler_past_its_timeout_is_killed_and_reported_as_lambda_does(runtime: LambdaRuntime) -> None:
    warm = call(runtime, "slow").json()
    started = time.monotonic()
    invocation = call(runtime, "slow", {"sleep": 30})
    assert time.monotonic() - started < 5
    body = invocation.json()
    assert body["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in body["errorMessage"]
    # The environment was reset: the next invocation is a cold start in a new process
    after = call(runtime, "slow").json()
    assert after["pid"] != warm["pid"]
    assert after["invocations"] == 1
    assert runtime.pools["slow"].stats.timeouts == 1


def test_beyond_reserved_concurrency_an_invoke_is_throttled(runtime: LambdaRuntime) -> None:
    call(runtime, "single")
    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(lambda _: _outcome(runtime), range(2)))
    assert sorted(outcomes) == ["ok", "throttled"]


def _outcome(runtime: LambdaRuntime) -> str:
    try:
        call(runtime, "single", {"sleep": 1.0})
    except Throttled:
        return "throttled"
    return "ok"


def test_faults_replace_the_handler(runtime: LambdaRuntime) -> None:
    runtime.faults.replace(
        FAULTS_ADAPTER.validate_json('{"alpha": {"error": "Connector.Unavailable", "times": 1}}')
    )
    injected = call(runtime, "alpha")
    assert injected.json()["errorType"] == "Connector.Unavailable"
    assert call(runtime, "alpha").function_error is None
    assert runtime.faults.snapshot()["injected"] == {"alpha": 1}


def test_the_worker_environment_carries_the_iam_policy_file(tmp_path: Path) -> None:
    local = function("gamma", "probe")
    local.iam_policy_file = tmp_path / "gamma.json"
    environment = worker_environment(local, aws_endpoint="http://127.0.0.1:4566", region="us-east-1")
    assert environment[IAM_POLICY_FILE_ENV] == str(tmp_path / "gamma.json")
    assert environment["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"
    assert environment["AWS_LAMBDA_FUNCTION_NAME"] == "aios-test-gamma"
    assert IAM_POLICY_FILE_ENV not in worker_environment(
        function("delta", "probe"), aws_endpoint="http://x", region="us-east-1"
    )


def test_faults_count_down() -> None:
    faults = Faults.parse('{"f": {"error": "Connector.Unavailable", "times": 2}}')
    assert [faults.draw("f") is not None for _ in range(3)] == [True, True, False]
    assert faults.draw("other") is None


def test_prewarm_starts_one_worker_per_function(runtime: LambdaRuntime) -> None:
    runtime.prewarm().join(timeout=60)
    assert {name: pool.stats.cold_starts for name, pool in runtime.pools.items()} == dict.fromkeys(
        runtime.pools, 1
    )
    first = call(runtime, "alpha").json()
    assert first["invocations"] == 1  # served by the prewarmed worker, no new cold start
    assert runtime.pools["alpha"].stats.cold_starts == 1
