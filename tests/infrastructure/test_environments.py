"""``cdk synth`` through the CLI pins the account and region; the app must stay nag-clean."""

from __future__ import annotations

import pytest

from tests.infrastructure.synth import synthesize


def test_synth_for_a_concrete_account_and_region(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the environment the CDK CLI sets for `cdk synth` / `cdk deploy`
    monkeypatch.setenv("CDK_DEFAULT_ACCOUNT", "111122223333")
    monkeypatch.setenv("CDK_DEFAULT_REGION", "eu-west-1")

    # When the app is synthesized (raises if a cdk-nag finding is unacknowledged)
    synthesized = synthesize(tmp_path_factory.mktemp("eu-west-1"))

    # Then the stacks are bound to that environment
    assert synthesized.stacks.platform.region == "eu-west-1"
    assert synthesized.stacks.platform.account == "111122223333"
