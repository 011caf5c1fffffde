"""Scheduled functions (``FunctionSpec.schedule``) in the local mode: one thread each.

moto stores a scheduled rule (deploy.py creates it, as CDK does) but never runs it. Each
thread here waits one period, then invokes the function's ``live`` alias through the local
Lambda runtime with the event EventBridge sends (``Scheduled Event``), and so on until stop.

The period: ``AIOS_LOCAL_SCHEDULE_SECONDS`` when set (every schedule alike: tests and demos
want a gauge within seconds), else the ``rate(...)`` scaled by ``AIOS_LOCAL_TIME_SCALE`` but
never under ``MIN_SCALED_SECONDS`` (the e2e scale of 0.01 would otherwise run a one-minute
gauge every 0.6 s beside every test). Cron fields are not evaluated locally: a ``cron(...)``
runs every scaled minute.

Unlike EventBridge's asynchronous invoke (two Lambda retries, then the dead-letter queue),
a run here waits for its answer, which ``Scheduler.results`` keeps (the last few per
function); a failed run is logged and the next run measures afresh.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from infrastructure.local.deploy import LIVE_ALIAS, LocalNames
from infrastructure.platform.spec import FunctionSpec, Platform

SCHEDULE_SECONDS_ENV = "AIOS_LOCAL_SCHEDULE_SECONDS"
_RATE = re.compile(r"^rate\((\d+) (minute|hour|day)s?\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_KEPT_RESULTS = 20
MIN_SCALED_SECONDS = 5.0
LOG = logging.getLogger(__name__)


def parse_override(text: str | None) -> float | None:
    if not text:
        return None
    value = float(text)
    if value <= 0:
        raise ValueError(f"{SCHEDULE_SECONDS_ENV} must be a positive number of seconds, got {text}")
    return value


def period_seconds(expression: str, *, time_scale: float = 1.0, override: float | None = None) -> float:
    """Seconds between two local runs of ``expression``."""
    if override is not None:
        return override
    match = _RATE.match(expression)
    seconds = int(match[1]) * _UNIT_SECONDS[match[2]] if match else 60
    return max(seconds * time_scale, min(seconds, MIN_SCALED_SECONDS))


def scheduled_event(rule_arn: str, *, account: str, region: str, now: datetime) -> dict[str, Any]:
    """What EventBridge sends a scheduled rule's target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


class Scheduler:
    """The local mode's schedules: ``start`` after deploy, ``stop`` before the server stops."""

    def __init__(
        self,
        platform: Platform,
        names: LocalNames,
        *,
        aws_endpoint: str,
        time_scale: float = 1.0,
        override: float | None = None,
    ) -> None:
        self.names = names
        self.aws_endpoint = aws_endpoint
        self.functions = [spec for spec in platform.functions if spec.schedule]
        self.periods = {
            spec.name: period_seconds(str(spec.schedule), time_scale=time_scale, override=override)
            for spec in self.functions
        }
        self.results: Mapping[str, deque[dict[str, Any]]] = {
            spec.name: deque(maxlen=_KEPT_RESULTS) for spec in self.functions
        }
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for spec in self.functions:
            thread = threading.Thread(
                target=self._run, args=(spec,), name=f"aios-local-schedule-{spec.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _run(self, spec: FunctionSpec) -> None:
        import boto3  # noqa: PLC0415 - as deploy.py: only when the local mode runs

        client = boto3.client("lambda", endpoint_url=self.aws_endpoint, region_name=self.names.region)
        rule = self.names.schedule_rule(spec.name)
        rule_arn = f"arn:aws:events:{self.names.region}:{self.names.account}:rule/{rule}"
        while not self._stop.wait(self.periods[spec.name]):
            event = scheduled_event(
                rule_arn, account=self.names.account, region=self.names.region, now=datetime.now(UTC)
            )
            try:
                response = client.invoke(
                    FunctionName=f"{self.names.function_arn(spec.name)}:{LIVE_ALIAS}",
                    Payload=json.dumps(event).encode(),
                )
                payload = json.loads(response["Payload"].read() or b"null")
            except Exception:  # the next run measures afresh; the server may be stopping
                if not self._stop.is_set():
                    LOG.exception("scheduled run of %s failed", spec.name)
                continue
            if response.get("FunctionError"):
                LOG.error("scheduled run of %s failed: %s", spec.name, payload)
                continue
            self.results[spec.name].append(payload)
