"""The approvals gauge: count and oldest age from the pending index, as EMF metrics.

No sockets (tests/unit/conftest.py): a fake DynamoDB client answers ``Query`` the way the
sparse index does: only items carrying the index key, sorted by its sort key, in pages.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aws_lambda_powertools.metrics import Metrics

from aios import clients, observability
from aios.approvals import gauge, store
from aios.approvals.models import Status
from aios.config import METRICS_NAMESPACE, settings
from aios.lineage import lineage_time
from functions.approvals_gauge import handler as gauge_handler
from tests.lambda_context import LambdaContext
from tests.unit.approvals.approval_fakes import approval_created

NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
TABLE = "aios-test-approvals"


class FakeDynamo:
    """``query`` on the pending index over items as ``store.to_item`` writes them."""

    def __init__(self, items: list[dict[str, Any]], page_size: int = 2) -> None:
        self.items = items
        self.page_size = page_size
        self.calls: list[dict[str, Any]] = []

    def query(self, **request: Any) -> dict[str, Any]:
        self.calls.append(request)
        assert request["TableName"] == TABLE
        assert request["IndexName"] == store.PENDING_INDEX
        names, values = request["ExpressionAttributeNames"], request["ExpressionAttributeValues"]
        assert request["KeyConditionExpression"] == "#queue = :queue"
        key, wanted = names["#queue"], values[":queue"]
        in_index = sorted(
            (item for item in self.items if item.get(key) == wanted),
            key=lambda item: item[store.REQUESTED_AT]["S"],
            reverse=not request.get("ScanIndexForward", True),
        )
        start = int(request.get("ExclusiveStartKey", {}).get("offset", {}).get("N", "0"))
        page = in_index[start : start + self.page_size]
        answer: dict[str, Any] = {
            "Items": [{store.REQUESTED_AT: item[store.REQUESTED_AT], "pk": item["pk"]} for item in page]
        }
        if start + self.page_size < len(in_index):
            answer["LastEvaluatedKey"] = {"offset": {"N": str(start + self.page_size)}}
        return answer


def _approval(number: int, *, age: timedelta, status: Status = Status.PENDING) -> dict[str, Any]:
    created = lineage_time((NOW - age).timestamp())
    return dict(store.to_item(approval_created(number, created, status=status)))


def test_counts_the_pending_and_ages_the_oldest() -> None:
    client = FakeDynamo(
        [
            _approval(1, age=timedelta(seconds=50)),
            _approval(2, age=timedelta(hours=3), status=Status.APPROVED),  # decided: not in the index
            _approval(3, age=timedelta(seconds=700)),
            _approval(4, age=timedelta(seconds=5)),
            _approval(5, age=timedelta(days=3), status=Status.EXPIRED),
        ]
    )
    reading = gauge.measure(client, TABLE, now=NOW)  # type: ignore[arg-type]
    assert reading.pending == 3
    assert reading.oldest_age_seconds == pytest.approx(700, abs=0.001)


def test_every_page_is_counted() -> None:
    items = [_approval(n, age=timedelta(seconds=10 * n)) for n in range(1, 8)]
    client = FakeDynamo(items, page_size=3)
    reading = gauge.measure(client, TABLE, now=NOW)  # type: ignore[arg-type]
    assert reading.pending == 7
    assert reading.oldest_age_seconds == pytest.approx(70, abs=0.001)
    assert len(client.calls) == 3
    assert client.calls[1]["ExclusiveStartKey"] == {"offset": {"N": "3"}}


def test_none_pending_is_zero_and_zero() -> None:
    client = FakeDynamo([_approval(1, age=timedelta(hours=1), status=Status.REJECTED)])
    reading = gauge.measure(client, TABLE, now=NOW)  # type: ignore[arg-type]
    assert (reading.pending, reading.oldest_age_seconds) == (0, 0.0)


def test_a_clock_behind_the_writer_reports_no_negative_age() -> None:
    client = FakeDynamo([_approval(1, age=timedelta(seconds=-3))])
    assert gauge.measure(client, TABLE, now=NOW).oldest_age_seconds == 0.0  # type: ignore[arg-type]


def test_only_a_pending_item_carries_the_index_key() -> None:
    assert store.PENDING_KEY in _approval(1, age=timedelta(0))
    for status in (Status.APPROVED, Status.REJECTED, Status.EXPIRED):
        item = _approval(1, age=timedelta(0), status=status)
        assert store.PENDING_KEY not in item and store.REQUESTED_AT not in item


def _emf(blob: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
    [directive] = blob["_aws"]["CloudWatchMetrics"]
    [dimension_names] = directive["Dimensions"]
    # EMF values are a number or a list of them (Powertools writes lists).
    values = {m["Name"]: blob[m["Name"]] for m in directive["Metrics"]}
    values = {name: value if isinstance(value, list) else [value] for name, value in values.items()}
    return directive["Namespace"], {name: blob[name] for name in dimension_names}, values


def test_emits_both_metrics_with_the_dimensions_the_alarm_watches() -> None:
    metrics = Metrics(namespace=METRICS_NAMESPACE, service=gauge.SERVICE)
    metrics.clear_metrics()  # Powertools keeps one metric set per process: other tests' too
    gauge.emit(gauge.PendingApprovals(pending=4, oldest_age_seconds=123.5), metrics)
    namespace, dimensions, values = _emf(dict(metrics.serialize_metric_set()))
    metrics.clear_metrics()
    assert namespace == METRICS_NAMESPACE
    assert dimensions == gauge.DIMENSIONS
    assert values == {gauge.PENDING_METRIC: [4.0], gauge.OLDEST_AGE_METRIC: [123.5]}


def test_the_handler_prints_one_emf_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client = FakeDynamo([_approval(1, age=timedelta(seconds=30)), _approval(2, age=timedelta(seconds=90))])
    monkeypatch.setenv("AIOS_APPROVALS_TABLE", TABLE)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", gauge.SERVICE)
    monkeypatch.setattr(clients, "dynamodb", lambda: client)
    monkeypatch.setattr(observability.metrics, "service", gauge.SERVICE)
    observability.metrics.clear_metrics()
    settings.cache_clear()
    try:
        answer = gauge_handler.handler({"detail-type": "Scheduled Event"}, LambdaContext())
    finally:
        settings.cache_clear()
    assert answer["pending"] == 2 and answer["oldest_age_seconds"] > 90
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    emf = [_emf(blob) for blob in blobs if "CloudWatchMetrics" in blob.get("_aws", {})]
    assert len(emf) == 1
    namespace, dimensions, values = emf[0]
    assert (namespace, dimensions) == (METRICS_NAMESPACE, gauge.DIMENSIONS)
    assert values[gauge.PENDING_METRIC] == [2.0]
    [oldest] = values[gauge.OLDEST_AGE_METRIC]
    assert oldest > 90
