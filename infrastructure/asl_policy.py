"""The rules every aios workflow keeps, checked at synth and in tests.

A Task without a timeout can hang for a year; a callback task without a heartbeat never
notices a lost token; a Retry without a delay cap or jitter turns an outage into a
synchronized retry storm. ``Workflow`` runs this as a CDK validation, so ``cdk synth``
fails on a violation, and tests/unit/platform runs it over every ASL file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def states(definition: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state with its path, including Parallel branches and Map iterators."""
    for name, state in definition.get("States", {}).items():
        path = f"{prefix}{name}"
        yield path, state
        for index, branch in enumerate(state.get("Branches", [])):
            yield from states(branch, f"{path}/branch {index}/")
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                yield from states(state[key], f"{path}/")


def violations(definition: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for path, state in states(definition):
        if state.get("Type") != "Task":
            continue
        has_timeout = "TimeoutSeconds" in state or "TimeoutSecondsPath" in state
        if not has_timeout:
            found.append(f"{path!r}: Task has no TimeoutSeconds")
        if str(state.get("Resource", "")).endswith(".waitForTaskToken") and not (
            "HeartbeatSeconds" in state or "HeartbeatSecondsPath" in state
        ):
            found.append(f"{path!r}: callback Task has no HeartbeatSeconds")
        for index, retry in enumerate(state.get("Retry", [])):
            if "MaxDelaySeconds" not in retry:
                found.append(f"{path!r}: Retry[{index}] has no MaxDelaySeconds")
            if retry.get("JitterStrategy") != "FULL":
                found.append(f"{path!r}: Retry[{index}] has no JitterStrategy FULL")
    return found
