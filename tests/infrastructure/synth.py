"""Synthesize the app into a folder and read back its templates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Template

from infrastructure.app import AiosStacks, build_app


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


def synthesize(outdir: Path, context: dict[str, object] | None = None) -> Synthesized:
    app, stacks = build_app(outdir=outdir, context=context)
    app.synth()  # raises ValidationFailed when cdk-nag reports an unacknowledged finding
    return Synthesized(outdir, stacks)
