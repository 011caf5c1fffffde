"""Build every model the platform description declares (``make model``, ``make setup``).

    .venv/bin/python -m models [--force]

Each ``ModelSpec.package`` is built once with its own ``build.main`` (train if stale, export,
evaluate, register); a package two models share is built once.
"""

from __future__ import annotations

import importlib
import sys

from infrastructure.platform import PLATFORM


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    for package in dict.fromkeys(model.package for model in PLATFORM.models):
        status: int = importlib.import_module(f"{package}.build").main(args)
        if status:
            return status
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
