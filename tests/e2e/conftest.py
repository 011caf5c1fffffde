"""One ``aios local up`` per test module, driven over HTTP; AWS inspected with boto3."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from infrastructure.local.harness import LocalProcess

STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ENV = {
    "AIOS_LOCAL_SECRET_STANDARD": STANDARD_SECRET,
    "AIOS_LOCAL_SECRET_STRIPE": "whsec_e2e_stripe",
    "AIOS_LOCAL_TIME_SCALE": "0.01",
    # One warm worker per function from the start: the approval ladder's 3 s stages should
    # measure the workflow, not this machine's cold starts.
    "AIOS_LOCAL_LAMBDA_PREWARM": "1",
}
T = TypeVar("T")


def eventually(probe: Callable[[], T | None], *, timeout: float = 20.0, interval: float = 0.1) -> T:
    """The first truthy result of ``probe`` within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {probe}")
        time.sleep(interval)


def start_local(
    platform: str | None = None, *, env: dict[str, str] | None = None, stop_timeout: float = 10
) -> Iterator[LocalProcess]:
    """``aios local up`` for one module (``ENV`` plus ``env``), stopped cleanly after it."""
    local = LocalProcess.start(env={**ENV, **(env or {})}, platform=platform)
    try:
        yield local
    finally:
        status = local.stop(timeout=stop_timeout)
        assert status == 0, "".join(local.output[-40:])
