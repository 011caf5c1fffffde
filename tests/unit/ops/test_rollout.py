"""``aios rollout``: which version a promote or a rollback picks, and what status shows."""

from __future__ import annotations

import click
import pytest

from infrastructure.ops.rollout import (
    Alarm,
    Rollout,
    Version,
    promote_target,
    rollback_target,
    routes_of,
    table,
)

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:aios-dev-accounts-payable"


def _rollout(weights: dict[int, int], published: tuple[int, ...] = (1, 2, 3)) -> Rollout:
    alias = {
        "routingConfiguration": [
            {"stateMachineVersionArn": f"{MACHINE}:{v}", "weight": w} for v, w in weights.items()
        ]
    }
    return Rollout(
        workflow="accounts-payable",
        alias_arn=f"{MACHINE}:live",
        routes=routes_of(alias),
        versions=tuple(
            Version(version=v, arn=f"{MACHINE}:{v}", description=f"digest {v}") for v in published
        ),
        alarms=(Alarm(name="aios-dev-slo-accounts-payable-failure-rate", state="OK"),),
    )


def test_mid_canary_promote_takes_the_new_version_and_rollback_the_old() -> None:
    canary = _rollout({2: 90, 3: 10})
    assert canary.serving == 2
    assert promote_target(canary, None) == 3
    assert rollback_target(canary, None) == 2


def test_after_a_rollout_rollback_returns_to_the_version_before() -> None:
    done = _rollout({3: 100})
    assert rollback_target(done, None) == 2
    assert promote_target(done, None) == 3
    assert rollback_target(done, 1) == 1


def test_nothing_to_roll_back_to_and_unknown_versions_are_refused() -> None:
    with pytest.raises(click.ClickException, match="is the first"):
        rollback_target(_rollout({1: 100}, published=(1,)), None)
    with pytest.raises(click.ClickException, match="no version 7"):
        promote_target(_rollout({3: 100}), 7)


def test_status_shows_each_version_share_and_the_alarms() -> None:
    text = table(_rollout({2: 90, 3: 10}))
    lines = text.splitlines()
    assert any(line.split()[:2] == ["3", "10%"] for line in lines)
    assert any(line.split()[:3] == ["2", "90%", "serving"] for line in lines)
    assert any(line.split()[:2] == ["1", "0%"] for line in lines)
    assert "aios-dev-slo-accounts-payable-failure-rate  OK" in text
