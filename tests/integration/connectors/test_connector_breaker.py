"""The circuit breaker on moto DynamoDB, with an injected clock: opens after repeated
failures, fails fast without reaching the target, half-opens after the cooldown (one probe)
and closes when the target recovers."""

from __future__ import annotations

from typing import Any

import pytest
from connector_api import Clock, FakeApi, Reply  # type: ignore[import-not-found]

from aios.connectors import BreakerPolicy, CircuitBreaker
from aios.connectors.catalog import payments
from aios.errors import ConnectorCircuitOpen, ConnectorRejected, ConnectorUnavailable

STATUS = payments.GetPaymentStatus(operation="get_payment_status", payment_id="pi_1")
PATH = "/v1/payment_intents/pi_1"
OK = Reply(
    200, {"id": "pi_1", "object": "payment_intent", "amount": 100, "currency": "eur", "status": "succeeded"}
)


@pytest.fixture
def pay(api: FakeApi, secrets: Any, kit: dict[str, Any]) -> payments.PaymentsConnector:
    secrets.put("payments", {"base_url": api.url, "token": "sk_test_breaker"})
    return payments.PaymentsConnector(**kit)


def test_breaker_opens_fails_fast_half_opens_and_closes(
    api: FakeApi, pay: payments.PaymentsConnector, clock: Clock
) -> None:
    # Given a target that keeps failing (threshold 3)
    api.route("GET", PATH, Reply(503, {"error": {"type": "api_error"}}))
    for _ in range(3):
        with pytest.raises(ConnectorUnavailable):
            pay.get_payment_status(STATUS)
    assert api.hits("GET", PATH) == 3

    # Then further calls fail fast without reaching it, from any instance
    other_instance = payments.PaymentsConnector(
        credentials=pay.credentials, breaker=pay.breaker, idempotency_store=pay.idempotency_store
    )
    for connector in (pay, other_instance):
        with pytest.raises(ConnectorCircuitOpen, match="circuit open"):
            connector.get_payment_status(STATUS)
    assert api.hits("GET", PATH) == 3

    # When the cooldown passed and the target recovered, one probe goes through and closes it
    clock.advance(31)
    api.route("GET", PATH, OK)
    assert pay.get_payment_status(STATUS).status == "succeeded"
    assert pay.breaker.state("payments", api.target)["state"] == {"S": "closed"}
    for _ in range(3):
        pay.get_payment_status(STATUS)
    assert api.hits("GET", PATH) == 7


def test_failed_probe_reopens_and_only_one_probe_at_a_time(
    api: FakeApi, pay: payments.PaymentsConnector, clock: Clock
) -> None:
    api.route("GET", PATH, Reply(500, {}))
    for _ in range(3):
        with pytest.raises(ConnectorUnavailable):
            pay.get_payment_status(STATUS)
    clock.advance(31)

    # A second invocation that arrives while the probe holds half-open fails fast
    breaker = pay.breaker
    permit = breaker.before_call("payments", api.target)
    assert permit.probe
    with pytest.raises(ConnectorCircuitOpen, match="another invocation is probing"):
        breaker.before_call("payments", api.target)
    breaker.record_failure(permit)  # the probe failed: open for another cooldown
    with pytest.raises(ConnectorCircuitOpen, match="circuit open"):
        pay.get_payment_status(STATUS)
    assert api.hits("GET", PATH) == 3


def test_rejections_do_not_count_and_success_resets(
    api: FakeApi, pay: payments.PaymentsConnector, clock: Clock
) -> None:
    api.route(
        "GET", PATH, Reply(404, {"error": {"type": "invalid_request_error", "code": "resource_missing"}})
    )
    for _ in range(5):
        with pytest.raises(ConnectorRejected):
            pay.get_payment_status(STATUS)
    api.route("GET", PATH, Reply(500, {}))
    for _ in range(2):
        with pytest.raises(ConnectorUnavailable):
            pay.get_payment_status(STATUS)
    api.route("GET", PATH, OK)
    pay.get_payment_status(STATUS)  # resets the consecutive count
    api.route("GET", PATH, Reply(500, {}))
    for _ in range(2):
        with pytest.raises(ConnectorUnavailable):
            pay.get_payment_status(STATUS)

    assert pay.breaker.state("payments", api.target)["state"] == {"S": "closed"}


def test_failure_rate_in_window_opens(dynamodb: Any, clock: Clock) -> None:
    breaker = CircuitBreaker(
        table_name="circuit",
        client=dynamodb,
        clock=clock,
        policy=BreakerPolicy(failure_threshold=100, window_seconds=60, window_failure_threshold=4),
    )
    for _ in range(3):  # failures interleaved with successes: never 2 in a row
        breaker.record_failure(breaker.before_call("erp", "erp.example.com"))
        breaker.record_success(breaker.before_call("erp", "erp.example.com"))
        clock.advance(5)
    assert breaker.state("erp", "erp.example.com")["failures"] == {"N": "0"}
    breaker.record_failure(breaker.before_call("erp", "erp.example.com"))  # 4th in the window
    with pytest.raises(ConnectorCircuitOpen):
        breaker.before_call("erp", "erp.example.com")
