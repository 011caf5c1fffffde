"""``python -m infrastructure.asl_source [--check] [--expand-to DIR]``: the ASL sources' layout.

Run it after editing ``statemachines/*.json``; ``make asl`` runs it with ``--check`` and lints
the expanded definitions it writes to ``build/asl/``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from infrastructure.platform.asl import expand_text, format_source
from infrastructure.platform.spec import STATEMACHINES_DIR


def main() -> None:
    """Rewrite every ``statemachines/*.json`` in the source layout (``--check``: only report);
    ``--expand-to DIR`` also writes each expanded definition there, for statelint."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--expand-to", type=Path, default=None, metavar="DIR")
    arguments = parser.parse_args()
    check, expand_to = arguments.check, arguments.expand_to
    unformatted = []
    for path in sorted(STATEMACHINES_DIR.glob("*.json")):
        text = path.read_text(encoding="utf-8")
        formatted = format_source(json.loads(text))
        if text != formatted:
            unformatted.append(path.name)
            if not check:
                path.write_text(formatted, encoding="utf-8")
    if expand_to is not None:
        expand_to.mkdir(parents=True, exist_ok=True)
        for path in sorted(STATEMACHINES_DIR.glob("*.asl.json")):
            (expand_to / path.name).write_text(expand_text(path), encoding="utf-8")
    if check and unformatted:
        raise SystemExit(
            f"not in the source layout (run python -m infrastructure.platform.asl): {unformatted}"
        )


if __name__ == "__main__":
    main()
