"""The approvals gauge on its schedule in the local mode: its EMF lines say how many
approvals wait, with no request of ours invoking it.

``AIOS_LOCAL_SCHEDULE_SECONDS=1`` runs every scheduled function each second
(infrastructure/local/schedules.py); the gauge's EMF line (Powertools Metrics, printed by the
worker to the platform's output) is read from ``aios local up``'s output, as CloudWatch would
read it from the function's log stream.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from aios.approvals import gauge
from aios.config import METRICS_NAMESPACE
from infrastructure.local.harness import LocalProcess
from infrastructure.local.schedules import SCHEDULE_SECONDS_ENV
from infrastructure.platform import PLATFORM
from tests.e2e.conftest import eventually, start_local
from tests.e2e.test_accounts_payable import (
    OUTLIER_TEMPLATE,
    SLACK_SECRET,
    accept,
    add_invoice,
    approval_requested,
    click,
    ended,
    the_execution,
)


@pytest.fixture(scope="module")
def local() -> Iterator[LocalProcess]:
    yield from start_local(
        "tests/e2e/fixtures/gauge_platform.py:PLATFORM",
        env={"AIOS_LOCAL_SECRET_SLACK": SLACK_SECRET, SCHEDULE_SECONDS_ENV: "1"},
    )


def readings(local: LocalProcess, since: int = 0) -> list[dict[str, Any]]:
    """The gauge's EMF metrics in the platform's output from line ``since`` on."""
    found = []
    for line in list(local.output)[since:]:
        if '"CloudWatchMetrics"' not in line:
            continue
        try:
            blob = json.loads(line[line.index("{") :])
        except ValueError:
            continue
        [directive] = blob["_aws"]["CloudWatchMetrics"]
        if directive["Namespace"] != METRICS_NAMESPACE or blob.get("service") != gauge.SERVICE:
            continue
        names = {m["Name"] for m in directive["Metrics"]}
        if {gauge.PENDING_METRIC, gauge.OLDEST_AGE_METRIC} <= names:
            assert directive["Dimensions"] == [list(gauge.DIMENSIONS)]
            found.append(blob)
    return found


def _value(blob: dict[str, Any], name: str) -> float:
    value = blob[name]
    return float(value[-1] if isinstance(value, list) else value)


def test_the_gauge_reports_a_waiting_approval_on_its_schedule(
    local: LocalProcess, seeded: dict[str, dict[str, Any]]
) -> None:
    # Before any invoice: the schedule runs by itself, and nothing is pending
    [first, *_] = eventually(lambda: readings(local), timeout=30)
    assert _value(first, gauge.PENDING_METRIC) == 0
    assert _value(first, gauge.OLDEST_AGE_METRIC) == 0

    # When an invoice waits for an approver
    add_invoice(local, seeded, OUTLIER_TEMPLATE, "INV-8801", "2417.36")
    accept(local, "INV-8801")
    message = approval_requested(local, "INV-8801")
    mark = len(local.output)
    waiting = eventually(
        lambda: [r for r in readings(local, mark) if _value(r, gauge.PENDING_METRIC) >= 1], timeout=30
    )
    # Then the gauge counts it and ages it
    assert _value(waiting[0], gauge.PENDING_METRIC) == 1
    later = eventually(
        lambda: [r for r in readings(local, mark) if _value(r, gauge.OLDEST_AGE_METRIC) >= 2], timeout=30
    )
    assert _value(later[0], gauge.PENDING_METRIC) == 1

    # And once decided, it is no longer pending
    status, reply = click(local, message, "approve")
    assert status == 200, reply
    assert ended(local, the_execution(local, "erp:INV-8801")).status == "SUCCEEDED"
    mark = len(local.output)
    eventually(lambda: [r for r in readings(local, mark) if _value(r, gauge.PENDING_METRIC) == 0], timeout=30)


@pytest.fixture(scope="module")
def seeded(local: LocalProcess) -> dict[str, dict[str, Any]]:
    return local.seeded_invoices()


def test_the_local_rule_is_the_one_cdk_renders(local: LocalProcess) -> None:
    # As constructs/functions.py: default bus, the description's expression, the live alias.
    events = local.client("events")
    spec = next(f for f in PLATFORM.functions if f.name == gauge.SERVICE)
    rule = events.describe_rule(Name=f"aios-local-{spec.name}-schedule")
    assert rule["ScheduleExpression"] == spec.schedule == "rate(1 minute)"
    assert rule["EventBusName"] == "default"
    [target] = events.list_targets_by_rule(Rule=f"aios-local-{spec.name}-schedule")["Targets"]
    assert target["Arn"].endswith(f":function:aios-local-{spec.name}:live")
