"""Faults injected into the local mode's functions (``AIOS_LOCAL_FAULTS``, ``/_aios/faults``).

Drawn by the Lambda runtime (``lambda_runtime.LambdaRuntime``) in the parent process, per
invocation, before a worker is asked: a fault replaces (or, for ``timeout``, outlasts) the
handler. No moto import here.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

#: Environment variable of the faults setting (documented in infrastructure/local/README.md).
FAULTS_ENV = "AIOS_LOCAL_FAULTS"


class Fault(BaseModel):
    """What to do instead of (or before) running a function's handler.

    ``error``: raise an exception whose ``__name__`` is ``error`` (reported as errorType);
    ``timeout``: the invocation times out (errorType ``Sandbox.Timedout``, as Lambda reports);
    ``throttle``: the Invoke call itself fails with 429 ``TooManyRequestsException``
    (Step Functions reports ``Lambda.TooManyRequestsException``).
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["error", "timeout", "throttle"] = "error"
    error: str = "Connector.Unavailable"
    message: str = "fault injected by aios local mode"
    probability: float = Field(default=1.0, ge=0.0, le=1.0)
    #: How many invocations fail; ``None``: every one (with ``probability``).
    times: int | None = Field(default=None, ge=0)


FAULTS_ADAPTER: TypeAdapter[dict[str, Fault]] = TypeAdapter(dict[str, Fault])


class Faults:
    """The faults in force, by function name (the description's name, e.g. ``webhook-ingest``)."""

    def __init__(self, faults: Mapping[str, Fault] | None = None) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, Fault] = dict(faults or {})
        self.injected: dict[str, int] = {}

    @classmethod
    def parse(cls, text: str | None) -> Faults:
        """From ``AIOS_LOCAL_FAULTS``: inline JSON, or ``@path`` / a path to a JSON file."""
        if not text or not text.strip():
            return cls()
        raw = text.strip()
        if not raw.startswith("{"):
            raw = Path(raw.removeprefix("@")).read_text(encoding="utf-8")
        return cls(FAULTS_ADAPTER.validate_json(raw))

    def replace(self, faults: Mapping[str, Fault]) -> None:
        with self._lock:
            self._faults = dict(faults)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "faults": {name: fault.model_dump() for name, fault in self._faults.items()},
                "injected": dict(self.injected),
            }

    def draw(self, function: str) -> Fault | None:
        """The fault to apply to this invocation of ``function``, if one fires."""
        with self._lock:
            fault = self._faults.get(function)
            if fault is None or (fault.times is not None and fault.times <= 0):
                return None
            if random.random() >= fault.probability:
                return None
            if fault.times is not None:
                self._faults[function] = fault.model_copy(update={"times": fault.times - 1})
            self.injected[function] = self.injected.get(function, 0) + 1
            return fault
