"""``AIOS_LOCAL_TIME_SCALE`` (``infrastructure.local.timescale``): Wait states and Retry
intervals scaled inside moto's interpreter, task timeouts not, and the ASL caches of the
Step Functions bridge (``stepfunctions``, patch 7) under executions running at once."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from infrastructure.local import stepfunctions, timescale
from infrastructure.local.timescale import TIME_SCALE_ENV, TimeScale
from tests.integration.local.conftest import ROLE, Aws

# isort: split
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser


@pytest.mark.parametrize("text", ["0", "-1", "1.5", "fast"])
def test_a_scale_outside_zero_to_one_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=TIME_SCALE_ENV if text != "fast" else "could not convert"):
        TimeScale.parse(text)


def test_no_scale_is_real_time() -> None:
    assert TimeScale.parse(None) == 1.0
    assert TimeScale.parse("") == 1.0
    assert TimeScale.parse("0.01") == 0.01


class _Env:
    """What ``_scaled_wait_interval`` reads of an execution environment."""

    def __init__(self) -> None:
        self.program_state_event = threading.Event()
        self.running = True

    def is_running(self) -> bool:
        return self.running


def test_a_wait_is_scaled_and_a_stopped_execution_ends_it() -> None:
    timescale.install(0.01)
    try:
        env = _Env()
        started = time.monotonic()
        WaitFunction._wait_interval(None, env, 20)  # type: ignore[arg-type]  # 20 s at 0.01: 0.2 s
        elapsed = time.monotonic() - started
        assert 0.19 <= elapsed < 2.0

        # A stopped execution does not sit out its wait (moto's own loop re-waited).
        env.running = False
        started = time.monotonic()
        WaitFunction._wait_interval(None, env, 3600)  # type: ignore[arg-type]
        assert time.monotonic() - started < 0.5
    finally:
        timescale.uninstall()
    assert TimeScale.value == 1.0


def _wait_for(sfn: Any, arn: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.05)


def test_a_wait_state_runs_at_the_scale(aws: Aws) -> None:
    # The module's server runs at a scale of 0.001: a 300 s Wait takes 0.3 s.
    sfn = aws.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="scaled-wait",
        roleArn=ROLE,
        definition=json.dumps(
            {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 300, "End": True}}}
        ),
    )["stateMachineArn"]
    started = time.monotonic()
    arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    assert _wait_for(sfn, arn)["status"] == "SUCCEEDED"
    assert time.monotonic() - started < 20


def test_one_definition_parsed_once_serves_concurrent_executions(aws: Aws) -> None:
    # A Map whose iterations double their inputs, then a Map that fails and is retried: the
    # retry counter lives under a component's heap key, in each execution's environment.
    # Twelve executions of one definition at once, all from the one cached component tree,
    # each see their own inputs and their own counter.
    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "StartAt": "Double",
                    "States": {
                        "Double": {
                            "Type": "Pass",
                            "Parameters": {"value.$": "States.MathAdd($.n, $.n)"},
                            "End": True,
                        }
                    },
                },
                "ResultPath": "$.doubled",
                "Next": "Fail every time",
            },
            "Fail every time": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "StartAt": "Oops",
                    "States": {"Oops": {"Type": "Fail", "Error": "Oops", "Cause": "always"}},
                },
                "Retry": [{"ErrorEquals": ["Oops"], "IntervalSeconds": 1, "MaxAttempts": 2}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Done"}],
                "Next": "Done",
            },
            "Done": {"Type": "Pass", "End": True},
        },
    }
    text = json.dumps(definition)
    sfn = aws.client("stepfunctions")
    machine = sfn.create_state_machine(name="cached", roleArn=ROLE, definition=text)["stateMachineArn"]
    assert AmazonStateLanguageParser.parse(text)[0] is AmazonStateLanguageParser.parse(text)[0]

    def run(index: int) -> dict[str, Any]:
        arn = sfn.start_execution(
            stateMachineArn=machine, input=json.dumps({"items": [{"n": index}, {"n": index + 1}]})
        )["executionArn"]
        described = _wait_for(sfn, arn)
        events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        # "Each" starts once; "Fail every time" once and once per retry.
        attempts = sum(1 for event in events if event["type"] == "MapStateStarted") - 1
        output = json.loads(described.get("output", "{}"))
        return {"status": described["status"], "output": output, "attempts": attempts}

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(run, range(12)))
    for index, result in enumerate(results):
        assert result["status"] == "SUCCEEDED"
        assert result["output"]["doubled"] == [{"value": 2 * index}, {"value": 2 * index + 2}]
        assert result["output"]["error"]["Error"] == "Oops"
        assert result["attempts"] == 3  # the first attempt and its two retries, in every execution
    assert stepfunctions._PARSED  # the cache is what served them
