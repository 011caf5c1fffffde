"""The pending index on moto: the approvals table as the local mode renders it from the
description, the real store's writes, and the gauge's query.

A pending approval is in the sparse index from ``create``; ``decide`` and ``expire`` remove
its key attribute, which takes it out (DynamoDB writes an item to a sparse index only when it
has the index's key attributes:
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-indexes-general-sparse-indexes.html).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from aios.approvals import gauge, store
from aios.approvals.models import Approval, Status
from aios.lineage import lineage_time
from infrastructure.local.deploy import LocalNames, _create_table
from infrastructure.platform.payables import APPROVALS
from tests.integration.moto_env import fake_aws_environment
from tests.unit.approvals.approval_fakes import approval_created

REGION = "eu-west-1"
NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
NAMES = LocalNames(region=REGION)


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in fake_aws_environment(REGION).items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        _create_table(dynamodb, APPROVALS, NAMES)
        yield dynamodb


def _approval(number: int, age: timedelta) -> Approval:
    return approval_created(number, lineage_time((NOW - age).timestamp()))


def test_the_gauge_follows_create_decide_and_expire(client: Any) -> None:
    table = NAMES.table(APPROVALS.id)
    approvals = store.DynamoApprovalStore(table, client=client)
    assert gauge.measure(client, table, now=NOW) == gauge.PendingApprovals(pending=0, oldest_age_seconds=0)
    for number, age in ((1, timedelta(minutes=30)), (2, timedelta(hours=5)), (3, timedelta(minutes=1))):
        assert approvals.create(_approval(number, age))
    # A later stage renewing the token leaves the request time (and the index entry) alone.
    approvals.renew(
        _approval(2, timedelta(0)).approval_id,
        token="AAAA-token",
        lineage=_approval(2, timedelta(0)).lineage,
        now=lineage_time(NOW.timestamp()),
        expected=frozenset({Status.PENDING}),
        notice="reminder#" + lineage_time(NOW.timestamp()),
    )
    reading = gauge.measure(client, table, now=NOW)
    assert reading.pending == 3
    assert reading.oldest_age_seconds == pytest.approx(5 * 3600, abs=0.01)

    approvals.decide(_approval(2, timedelta(0)).approval_id, decision="approved", decided_by="U1", now="x")
    reading = gauge.measure(client, table, now=NOW)
    assert reading.pending == 2
    assert reading.oldest_age_seconds == pytest.approx(30 * 60, abs=0.01)

    approvals.expire(_approval(1, timedelta(0)).approval_id, now="x", expected=frozenset({Status.PENDING}))
    approvals.decide(_approval(3, timedelta(0)).approval_id, decision="rejected", decided_by="U1", now="x")
    assert gauge.measure(client, table, now=NOW) == gauge.PendingApprovals(pending=0, oldest_age_seconds=0)
    # The items themselves stay, decided: only the index forgot them.
    assert approvals.get(_approval(2, timedelta(0)).approval_id).status is Status.APPROVED  # type: ignore[union-attr]
