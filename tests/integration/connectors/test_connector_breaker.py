"""The circuit breaker (Powertools' on moto DynamoDB), with an injected clock: opens after
repeated failures, fails fast without reaching the target, half-opens after the cooldown
(one probe) and closes when the target recovers."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest
from connector_api import Clock, FakeApi, Reply  # type: ignore[import-not-found]

from aios.connectors import BreakerPolicy, CircuitBreaker
from aios.connectors.breaker import TABLE_ACTIONS, CircuitState
from aios.connectors.catalog import payments
from aios.errors import ConnectorCircuitOpen, ConnectorRejected, ConnectorUnavailable
from infrastructure.iam import enforce
from infrastructure.iam.enforce import FunctionPolicy
from infrastructure.platform.connectors import CIRCUIT as PLATFORM_CIRCUIT

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
    assert pay.breaker.state("payments", api.target) is CircuitState.CLOSED
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

    # A second invocation (another thread: another probe owner) that arrives while the probe
    # holds half-open fails fast
    breaker = pay.breaker
    probes: list[str] = []
    refused: list[BaseException] = []

    def second_invocation() -> None:
        try:
            pay.get_payment_status(STATUS)
        except ConnectorCircuitOpen as error:
            refused.append(error)

    def probe() -> None:
        probes.append(str(breaker.state("payments", api.target)))
        other = threading.Thread(target=second_invocation)
        other.start()
        other.join()
        raise ConnectorUnavailable("still down", connector="payments", target=api.target)

    with pytest.raises(ConnectorUnavailable):
        breaker.protect("payments", api.target, probe)
    assert probes == ["HALF_OPEN"]  # the probe ran, in half-open
    assert len(refused) == 1 and "another invocation is probing" in str(refused[0])
    # The probe failed: open for another cooldown
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

    assert pay.breaker.state("payments", api.target) is CircuitState.CLOSED


def _fail() -> None:
    raise ConnectorUnavailable("down", connector="erp", target="erp.example.com")


def _windowed_breaker(dynamodb: Any, clock: Clock) -> CircuitBreaker:
    """Opens on 2 consecutive failures, or on 4 failures within one 60 s window."""
    return CircuitBreaker(
        table_name="circuit",
        client=dynamodb,
        clock=clock,
        policy=BreakerPolicy(failure_threshold=2, window_seconds=60, window_failure_threshold=4),
    )


def test_failure_rate_in_window_opens(dynamodb: Any, clock: Clock) -> None:
    # Consecutive threshold 2: a success that did not reset the consecutive count would trip it
    breaker = _windowed_breaker(dynamodb, clock)
    for _ in range(3):  # failures interleaved with successes: never 2 in a row
        with pytest.raises(ConnectorUnavailable):
            breaker.protect("erp", "erp.example.com", _fail)
        assert breaker.protect("erp", "erp.example.com", lambda: "ok") == "ok"
        clock.advance(5)
    assert breaker.state("erp", "erp.example.com") is CircuitState.CLOSED
    with pytest.raises(ConnectorUnavailable):
        breaker.protect("erp", "erp.example.com", _fail)  # 4th in the window
    with pytest.raises(ConnectorCircuitOpen):
        breaker.protect("erp", "erp.example.com", lambda: "ok")


def test_failures_in_separate_windows_do_not_open(dynamodb: Any, clock: Clock) -> None:
    breaker = _windowed_breaker(dynamodb, clock)
    for _ in range(6):  # 6 failures, but never 4 within one 60 s window
        with pytest.raises(ConnectorUnavailable):
            breaker.protect("erp", "erp-windows.example.com", _fail)
        breaker.protect("erp", "erp-windows.example.com", lambda: "ok")
        clock.advance(25)
    assert breaker.state("erp", "erp-windows.example.com") is CircuitState.CLOSED


def test_the_breaker_makes_only_the_calls_its_role_is_granted(
    api: FakeApi, pay: payments.PaymentsConnector, clock: Clock, dynamodb: Any
) -> None:
    # The circuit table's grant (TableSpec.item_actions) is TABLE_ACTIONS and nothing else;
    # every transition, the probe election and the window count must make do with it.
    calls: set[str] = set()
    dynamodb.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: calls.add(f"dynamodb:{model.name}")
    )
    api.route("GET", PATH, Reply(503, {}))
    for _ in range(4):  # opens (consecutive rule), then fails fast
        with pytest.raises((ConnectorUnavailable, ConnectorCircuitOpen)):
            pay.get_payment_status(STATUS)
    clock.advance(31)
    with pytest.raises(ConnectorUnavailable):  # a failed probe reopens
        pay.get_payment_status(STATUS)
    clock.advance(31)
    api.route("GET", PATH, OK)
    pay.get_payment_status(STATUS)  # a probe that closes
    assert pay.breaker.state("payments", api.target) is CircuitState.CLOSED
    assert calls == set(TABLE_ACTIONS)
    assert PLATFORM_CIRCUIT.item_actions == TABLE_ACTIONS


@pytest.mark.parametrize("withheld", [None, *TABLE_ACTIONS])
def test_the_circuit_grant_is_all_the_breaker_needs_and_each_action_is_needed(
    dynamodb: Any, clock: Clock, tmp_path: Path, withheld: str | None
) -> None:
    # Given a role allowed TABLE_ACTIONS on the circuit table (or all but one), enforced on
    # every client made from now on as the local mode enforces a synthesized role
    policy = FunctionPolicy(
        function="payments-connector",
        role_arn="arn:aws:iam::123456789012:role/payments-connector",
        account="123456789012",
        region="eu-west-1",
        statements=[
            {
                "Effect": "Allow",
                "Action": [action for action in TABLE_ACTIONS if action != withheld],
                "Resource": "arn:aws:dynamodb:eu-west-1:123456789012:table/circuit",
            }
        ],
    )
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy.to_json()), encoding="utf-8")
    enforcer = enforce.install_from_file(path)
    try:
        breaker = CircuitBreaker(
            table_name="circuit",
            client=boto3.client("dynamodb", region_name="eu-west-1"),
            clock=clock,
            policy=BreakerPolicy(failure_threshold=2, cooldown_seconds=30),
        )
        # When the circuit opens, fails fast, reopens after a failed probe and closes
        for _ in range(3):
            with pytest.raises((ConnectorUnavailable, ConnectorCircuitOpen)):  # the target's own error
                breaker.protect("payments", "api.example.com", _fail)
        clock.advance(31)
        with pytest.raises(ConnectorUnavailable):
            breaker.protect("payments", "api.example.com", _fail)
        clock.advance(31)
        assert breaker.protect("payments", "api.example.com", lambda: "ok") == "ok"
    finally:
        enforce.uninstall()

    # Then nothing was denied with the whole grant, and something was without any one action
    if withheld is None:
        assert enforcer.stats.denied == 0 and enforcer.stats.checked > 0
    else:
        assert enforcer.stats.denied > 0, withheld
