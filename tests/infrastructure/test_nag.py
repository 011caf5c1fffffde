"""cdk-nag's AwsSolutions pack finds nothing unacknowledged in any stack, and it does run.

The findings are read from the validation report the CDK writes beside the templates
(``validation-report.json``), not inferred from synth raising.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk import aws_sqs as sqs

from infrastructure.app import build_app
from tests.infrastructure.synth import Synthesized, nag_findings


def test_no_stack_has_an_unacknowledged_finding(synthesized: Synthesized) -> None:
    # (every other synth of the tests asserts the same in tests/infrastructure/synth.py)
    assert (synthesized.outdir / "validation-report.json").is_file()
    assert synthesized.nag_findings == []


def test_a_finding_is_reported_with_its_rule_and_construct(tmp_path: Path) -> None:
    # Given the platform's app with one queue that breaks two AwsSolutions rules
    app, stacks = build_app(outdir=tmp_path)
    sqs.Queue(stacks.platform, "UnencryptedQueueWithoutDeadLetters")

    # When it is synthesized
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()

    # Then the report names exactly that queue's findings: the pack runs on every stack, and
    # nothing else in the platform is unacknowledged
    queue = f"{stacks.platform.stack_name}/UnencryptedQueueWithoutDeadLetters/Resource"
    assert nag_findings(tmp_path) == [f"AwsSolutions-SQS3 {queue}", f"AwsSolutions-SQS4 {queue}"]
