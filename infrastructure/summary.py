"""A readable summary of what ``cdk deploy`` would create, read from the synthesized templates."""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path

from infrastructure.platform import PLATFORM


def summarize(outdir: Path) -> str:
    lines: list[str] = []
    for template_path in sorted(outdir.glob("*.template.json")):
        template = json.loads(template_path.read_text())
        resources = template.get("Resources", {})
        lines.append(f"stack {template_path.name.removesuffix('.template.json')}: {len(resources)} resources")
        lines.append(f"  {template.get('Description', '')}")
        for resource_type, count in sorted(Counter(r["Type"] for r in resources.values()).items()):
            lines.append(f"    {count:3d} x {resource_type}")
    lines.append("workflows:")
    for workflow in PLATFORM.workflows:
        trigger = (
            json.dumps(dict(workflow.trigger.event_pattern))
            if workflow.trigger
            else "(started by another workflow)"
        )
        lines.append(f"  {workflow.name} ({workflow.type.lower()}, statemachines/{workflow.asl})")
        lines.append(f"    started by {trigger}")
    lines.append("http routes:")
    lines += [f"  {route.method} {route.path} -> {route.function}" for route in PLATFORM.routes]
    return "\n".join(lines)


def main() -> None:
    from infrastructure.app import build_app  # noqa: PLC0415 - jsii starts only when asked

    with tempfile.TemporaryDirectory() as outdir:
        app, _ = build_app(outdir=outdir)
        app.synth()
        print(summarize(Path(outdir)))


if __name__ == "__main__":
    main()
