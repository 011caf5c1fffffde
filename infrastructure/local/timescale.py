"""``AIOS_LOCAL_TIME_SCALE``: Wait states, Retry intervals and event-delivery retry delays, scaled.

Written for exactly moto 5.2.5. Applied inside moto's interpreter (``RetrierDecl``'s sleep and
``WaitFunction._wait_interval``), not to the definitions, so the deployed ASL stays
byte-identical to CloudFormation's at any scale. Task ``TimeoutSeconds``/``HeartbeatSeconds``
and Lambda timeouts are not scaled: the work they bound is not faster locally, and scaling
them would produce timeouts AWS would not.
"""

from __future__ import annotations

import time
from typing import Any

from infrastructure.local import pin  # noqa: F401 - the moto version guard, before moto internals

# isort: split
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

TIME_SCALE_ENV = "AIOS_LOCAL_TIME_SCALE"


class TimeScale:
    """The factor in force (default 1); one per process, like moto's backends."""

    value: float = 1.0

    @classmethod
    def parse(cls, text: str | None) -> float:
        if not text:
            return 1.0
        value = float(text)
        if not 0 < value <= 1:
            raise ValueError(f"{TIME_SCALE_ENV} must be in (0, 1], got {text}")
        return value

    @classmethod
    def sleep(cls, seconds: float) -> None:
        time.sleep(max(0.0, seconds) * cls.value)


class _ScaledTime:
    """Stands in for the ``time`` module inside moto's retrier: only ``sleep`` is scaled."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        TimeScale.sleep(seconds)


def _scaled_wait_interval(self: WaitFunction, env: Any, wait_seconds: int) -> None:
    """``WaitFunction._wait_interval`` with the wait scaled; a stopped execution interrupts it
    (moto's version re-waits on rounding, which loops for fractional waits)."""
    deadline = time.monotonic() + max(0, wait_seconds) * TimeScale.value
    while env.is_running():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        env.program_state_event.wait(remaining)


_ORIGINAL_WAIT_INTERVAL = WaitFunction._wait_interval


def install(scale: float) -> None:
    TimeScale.value = scale
    retrier_decl.time = _ScaledTime()  # type: ignore[attr-defined,assignment]
    WaitFunction._wait_interval = _scaled_wait_interval  # type: ignore[method-assign]


def uninstall() -> None:
    TimeScale.value = 1.0
    retrier_decl.time = time  # type: ignore[attr-defined]
    WaitFunction._wait_interval = _ORIGINAL_WAIT_INTERVAL  # type: ignore[method-assign]
