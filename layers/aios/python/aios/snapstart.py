"""SnapStart: state that must not be shared by every environment restored from one snapshot.

With SnapStart, Lambda initializes a function once per published version and resumes every
new execution environment from that snapshot, so whatever the init left in memory is
shared by all of them: the ``random`` module's state, and anything holding credentials or
connections (https://docs.aws.amazon.com/lambda/latest/dg/snapstart-uniqueness.html).
After a restore this module:

- reseeds ``random`` from the OS (``secrets`` and ``uuid.uuid4`` read ``os.urandom`` and
  need nothing);
- drops boto3's default session, whose credentials were those of the snapshot;
- clears every ``functools.cache`` factory of the ``aios`` package that has been called:
  they hold the boto3 clients, Powertools providers (with their cached secrets) and httpx
  clients (with their pooled connections) of the process, and are rebuilt on next use.
  Found by walking the loaded ``aios`` modules, so a new factory needs no registration.

Hooks are registered with ``snapshot_restore_py``
(https://docs.aws.amazon.com/lambda/latest/dg/snapstart-runtime-hooks-python.html), which
Lambda's Python managed runtimes include; it is not a dependency of the layer and not
installed locally, so the import is guarded. Without it (tests, the local mode) ``restore``
runs the same hooks on demand.
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Callable
from typing import Any

#: The package whose cached factories are cleared after a restore.
PACKAGE = "aios"

_hooks: list[Callable[[], None]] = []
_registered = False


def after_restore(hook: Callable[[], None]) -> Callable[[], None]:
    """Run ``hook`` after every restore from a snapshot (in registration order, as Lambda does)."""
    _hooks.append(hook)
    return hook


def restore() -> None:
    """What Lambda runs after resuming this environment from a snapshot."""
    for hook in list(_hooks):
        hook()


@after_restore
def _reseed_random() -> None:
    random.seed(os.urandom(32))


@after_restore
def _drop_default_boto3_session() -> None:
    boto3 = sys.modules.get("boto3")
    if boto3 is not None:
        vars(boto3)["DEFAULT_SESSION"] = None  # the next default client builds a new session


@after_restore
def _clear_cached_factories() -> None:
    for name, module in list(sys.modules.items()):
        if module is None or not (name == PACKAGE or name.startswith(f"{PACKAGE}.")):
            continue
        for value in list(vars(module).values()):
            clear: Any = getattr(value, "cache_clear", None)
            if callable(clear) and getattr(value, "__module__", None) == name:
                clear()


def register_runtime_hooks() -> bool:
    """Register ``restore`` with Lambda's runtime hooks, once; ``False`` where the runtime
    library is absent (outside Lambda)."""
    global _registered  # noqa: PLW0603 - one registration per process
    if _registered:
        return True
    try:
        from snapshot_restore_py import register_after_restore  # type: ignore[import-not-found]  # noqa: PLC0415
    except ImportError:
        return False
    register_after_restore(restore)
    _registered = True
    return True


__all__ = ["after_restore", "register_runtime_hooks", "restore"]
