"""One synth per test session: building the app is the expensive part (jsii, Node)."""

from __future__ import annotations

import pytest

from tests.infrastructure.synth import Synthesized, synthesize


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("cdk.out"))
