"""Synthesize the app into a folder and read back its templates and cdk-nag's findings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Template

from infrastructure.app import AiosStacks, build_app
from infrastructure.platform import PLATFORM, Platform

#: What the CDK writes beside the templates: every validation plugin's (cdk-nag's) findings.
VALIDATION_REPORT = "validation-report.json"


class Synthesized:
    def __init__(self, outdir: Path, stacks: AiosStacks) -> None:
        self.outdir = outdir
        self.stacks = stacks
        self.data = Template.from_stack(stacks.data)
        self.platform = Template.from_stack(stacks.platform)
        self.models = Template.from_stack(stacks.models)

    def templates(self) -> dict[str, dict[str, Any]]:
        return {
            path.stem.removesuffix(".template"): json.loads(path.read_text())
            for path in self.outdir.glob("*.template.json")
        }

    @property
    def nag_findings(self) -> list[str]:
        return nag_findings(self.outdir)


def nag_findings(outdir: Path) -> list[str]:
    """``<rule> <construct path>`` for each unacknowledged finding of the synth into ``outdir``."""
    report = json.loads((outdir / VALIDATION_REPORT).read_text())
    return sorted(
        f"{violation['ruleName']} {construct['constructPath']}"
        for plugin in report["pluginReports"]
        for violation in plugin["violations"]
        for construct in violation["violatingConstructs"]
    )


def synthesize(
    outdir: Path, context: dict[str, object] | None = None, platform: Platform = PLATFORM
) -> Synthesized:
    """The app synthesized into ``outdir``, with no unacknowledged cdk-nag finding in any
    context a test synthesizes (asserted here from the report, with the findings listed)."""
    app, stacks = build_app(outdir=outdir, context=context, platform=platform)
    try:
        app.synth()
    except RuntimeError as error:
        if "ValidationFailed" not in str(error):
            raise
    findings = nag_findings(outdir)
    assert not findings, f"unacknowledged cdk-nag findings (context {context}): {findings}"
    return Synthesized(outdir, stacks)
