"""The approvals gauge: how many approvals wait, and since when the oldest one waits.

Run on a schedule (``approvals-gauge``, ``rate(1 minute)``), not from the ladder's stages: a
stage emits only while its execution moves, and the alarm this feeds is for the execution
that stopped moving. It reads the approvals table's sparse index of pending items
(``aios.approvals.store.PENDING_INDEX``: keys only, a pending item is in it until decided or
expired), so its cost follows the pending approvals, not the table's claims and fingerprints.

The dashboard and the "approval beyond the ladder" SLO alarm (constructs/monitoring.py) watch
exactly ``PENDING_METRIC`` and ``OLDEST_AGE_METRIC`` with ``DIMENSIONS``, read from here.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, Field

from aios import clients
from aios.approvals.store import PENDING_INDEX, PENDING_KEY, PENDING_VALUE, REQUESTED_AT

if TYPE_CHECKING:
    from aws_lambda_powertools.metrics import Metrics
    from mypy_boto3_dynamodb import DynamoDBClient

#: The function's name, hence its Powertools service (``POWERTOOLS_SERVICE_NAME``), hence the
#: ``service`` dimension Powertools adds to every metric it emits.
SERVICE = "approvals-gauge"
PENDING_METRIC = "ApprovalsPending"
OLDEST_AGE_METRIC = "ApprovalOldestPendingAgeSeconds"
DIMENSIONS = {"service": SERVICE}


class PendingApprovals(BaseModel):
    """One reading of the gauge."""

    model_config = ConfigDict(frozen=True)

    pending: Annotated[int, Field(ge=0)]
    #: Seconds since the oldest pending approval was requested; 0 when none is pending.
    oldest_age_seconds: Annotated[float, Field(ge=0)]


def measure(client: DynamoDBClient, table_name: str, *, now: datetime) -> PendingApprovals:
    """Count the pending approvals and age the oldest (the index sorts by request time)."""
    pending = 0
    oldest: str | None = None
    query: dict[str, Any] = {
        "TableName": table_name,
        "IndexName": PENDING_INDEX,
        "KeyConditionExpression": "#queue = :queue",
        "ExpressionAttributeNames": {"#queue": PENDING_KEY, "#requested": REQUESTED_AT},
        "ExpressionAttributeValues": {":queue": {"S": PENDING_VALUE}},
        "ProjectionExpression": "#requested",
        "ScanIndexForward": True,
    }
    while True:
        page = client.query(**query)
        items = page.get("Items", [])
        pending += len(items)
        if oldest is None and items:
            oldest = items[0][REQUESTED_AT]["S"]
        if "LastEvaluatedKey" not in page:
            break
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    # A clock a little behind the writer's must not report a negative age.
    age = max(0.0, (now - datetime.fromisoformat(oldest)).total_seconds()) if oldest else 0.0
    return PendingApprovals(pending=pending, oldest_age_seconds=age)


def emit(reading: PendingApprovals, metrics: Metrics) -> None:
    """Both values as metrics of the current invocation (flushed as one EMF line)."""
    metrics.add_metric(name=PENDING_METRIC, unit=MetricUnit.Count, value=reading.pending)
    metrics.add_metric(name=OLDEST_AGE_METRIC, unit=MetricUnit.Seconds, value=reading.oldest_age_seconds)


def run(
    table_name: str, metrics: Metrics, *, now: datetime, client: DynamoDBClient | None = None
) -> PendingApprovals:
    reading = measure(client or clients.dynamodb(), table_name, now=now)
    emit(reading, metrics)
    return reading
