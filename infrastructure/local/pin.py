"""The moto version every bridge of the local mode was written for; imported before moto internals."""

from __future__ import annotations

import moto

MOTO_VERSION = "5.2.5"
if moto.__version__ != MOTO_VERSION:  # pragma: no cover - a pin guard
    raise ImportError(
        f"infrastructure.local patches moto {MOTO_VERSION} internals, found moto {moto.__version__}: "
        "re-check every bridge module (lambda_runtime, events, stepfunctions, timescale, sagemaker) "
        "before changing the pin"
    )
