"""The bus archive that ``aios resume`` replays from is the description's, in CDK and locally.

One description (``EventBusSpec.archive`` and ``archive_pattern``) names the archive and says
what it keeps; the CDK stack and the local mode (``infrastructure.local.deploy``) both render it.
"""

from __future__ import annotations

import json
from typing import Any

from infrastructure.local.deploy import LocalNames
from infrastructure.platform import PLATFORM
from tests.infrastructure.synth import Synthesized


def test_the_cdk_archive_is_the_description_s(synthesized: Synthesized) -> None:
    archives: dict[str, Any] = synthesized.platform.find_resources("AWS::Events::Archive")
    [archive] = [resource["Properties"] for resource in archives.values()]
    assert archive["ArchiveName"] == f"aios-dev-{PLATFORM.bus.archive}"
    pattern = archive["EventPattern"]
    pattern = json.loads(pattern) if isinstance(pattern, str) else pattern
    # The account is the stack's (a token or a concrete id): the pattern's shape is the description's.
    assert pattern.keys() == PLATFORM.bus.archive_pattern("any").keys()
    assert len(pattern["account"]) == 1
    assert archive["RetentionDays"] == PLATFORM.bus.archive_retention_days


def test_the_local_archive_name_is_the_description_s() -> None:
    assert LocalNames().archive(PLATFORM.bus) == f"aios-local-{PLATFORM.bus.archive}"
    assert PLATFORM.bus.archive_pattern("123456789012") == {"account": ["123456789012"]}
