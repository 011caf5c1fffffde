"""A circuit breaker per connector and target, shared by concurrent invocations.

State lives in the circuit table (pk ``id`` = ``"{connector}#{target}"``); every transition
is a conditional write, so invocations running at the same time agree on it:

- **closed**: calls pass. A failure (``Connector.Unavailable`` or ``Connector.Throttled``;
  a 4xx ``Rejected`` or ``AuthFailed`` means the target answered, so it does not count)
  increments ``failures`` (consecutive) and ``window_failures`` (failures in the current
  fixed window of ``window_seconds``). When either reaches its threshold the breaker opens
  (``state = closed`` is the condition, so only one invocation opens it).
- **open**: calls fail fast with ``Connector.CircuitOpen`` until ``cooldown_seconds`` passed.
- **half-open**: the first invocation after the cooldown wins a conditional write and
  becomes the probe; the others keep failing fast. If the probe does not report within
  ``probe_timeout_seconds`` another invocation may take over. The probe's success closes
  the breaker, its failure opens it for another cooldown.

A success in the closed state writes only when there is something to reset, so a healthy
target costs one consistent read per call. Items carry ``expires_at`` for the table's TTL.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import boto3
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from aios.config import settings
from aios.errors import ConnectorCircuitOpen
from aios.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

#: Idle breaker items disappear after this long (TTL attribute ``expires_at``).
ITEM_TTL_SECONDS = 7 * 24 * 3600


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerPolicy(BaseModel):
    model_config = ConfigDict(frozen=True)

    failure_threshold: Annotated[int, Field(ge=1)] = 5
    window_seconds: Annotated[float, Field(gt=0)] = 60.0
    window_failure_threshold: Annotated[int, Field(ge=1)] = 10
    cooldown_seconds: Annotated[float, Field(gt=0)] = 30.0
    probe_timeout_seconds: Annotated[float, Field(gt=0)] = 30.0


@dataclass(frozen=True, slots=True)
class Permit:
    """What ``before_call`` saw; hand it back to ``record_success``/``record_failure``."""

    breaker_id: str
    state: State
    failures: int
    probe: bool


def _n(value: float) -> AttributeValueTypeDef:
    return {"N": str(Decimal(str(round(value, 6))))}


def _s(value: str) -> AttributeValueTypeDef:
    return {"S": value}


def _num(item: dict[str, Any], name: str, default: float = 0.0) -> float:
    attribute = item.get(name)
    return float(attribute["N"]) if attribute and "N" in attribute else default


def _conditional_failed(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class CircuitBreaker:
    """The breaker adapter. ``clock`` returns epoch seconds (inject one in tests)."""

    def __init__(
        self,
        *,
        table_name: str | None = None,
        client: DynamoDBClient | None = None,
        policy: BreakerPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._table = table_name or settings().require("circuit_table")
        self._client: DynamoDBClient = client or boto3.client("dynamodb")
        self.policy = policy or BreakerPolicy()
        self._clock = clock

    @staticmethod
    def breaker_id(connector: str, target: str) -> str:
        return f"{connector}#{target}"

    def _key(self, breaker_id: str) -> dict[str, AttributeValueTypeDef]:
        return {"id": _s(breaker_id)}

    def _update(
        self, breaker_id: str, expression: str, condition: str | None, values: dict[str, Any]
    ) -> bool:
        """One conditional update; ``False`` when the condition did not hold."""
        values = {**values, ":expires": _n(self._clock() + ITEM_TTL_SECONDS)}
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "Key": self._key(breaker_id),
            "UpdateExpression": expression.replace("SET ", "SET expires_at = :expires, ", 1),
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": values,
        }
        if condition:
            arguments["ConditionExpression"] = condition
        try:
            self._client.update_item(**arguments)
        except ClientError as error:
            if _conditional_failed(error):
                return False
            raise
        return True

    def state(self, connector: str, target: str) -> dict[str, Any]:
        """The stored item (``{}`` if the breaker never failed)."""
        response = self._client.get_item(
            TableName=self._table, Key=self._key(self.breaker_id(connector, target)), ConsistentRead=True
        )
        return dict(response.get("Item", {}))

    def before_call(self, connector: str, target: str) -> Permit:
        """Let the call through or raise ``Connector.CircuitOpen`` without calling the target."""
        breaker_id = self.breaker_id(connector, target)
        item = self.state(connector, target)
        state = State(item["state"]["S"]) if "state" in item else State.CLOSED
        failures = int(_num(item, "failures"))
        if state is State.CLOSED:
            return Permit(breaker_id, state, failures, probe=False)
        now = self._clock()
        opened_at = _num(item, "opened_at")
        if state is State.OPEN and now < opened_at + self.policy.cooldown_seconds:
            remaining = opened_at + self.policy.cooldown_seconds - now
            raise ConnectorCircuitOpen(
                f"{connector} -> {target}: circuit open, next probe in {remaining:.0f}s",
                connector=connector,
                target=target,
            )
        # Cooldown over (or a stale probe): try to become the one probe.
        won = self._update(
            breaker_id,
            "SET #state = :half, probe_until = :until",
            "(#state = :open AND opened_at = :opened) OR (#state = :half AND probe_until < :now)",
            {
                ":half": _s(State.HALF_OPEN),
                ":open": _s(State.OPEN),
                ":opened": item.get("opened_at", _n(0)),
                ":until": _n(now + self.policy.probe_timeout_seconds),
                ":now": _n(now),
            },
        )
        if not won:
            raise ConnectorCircuitOpen(
                f"{connector} -> {target}: circuit half-open, another invocation is probing",
                connector=connector,
                target=target,
            )
        logger.info("circuit half-open: probing", extra={"breaker": breaker_id})
        return Permit(breaker_id, State.HALF_OPEN, failures, probe=True)

    def record_success(self, permit: Permit) -> None:
        if permit.probe:
            closed = self._update(
                permit.breaker_id,
                "SET #state = :closed, failures = :zero, window_failures = :zero REMOVE probe_until",
                "#state = :half",
                {":closed": _s(State.CLOSED), ":half": _s(State.HALF_OPEN), ":zero": _n(0)},
            )
            if closed:
                logger.info("circuit closed: target recovered", extra={"breaker": permit.breaker_id})
        elif permit.failures > 0:
            # A success breaks the run of consecutive failures; the window count stays.
            self._update(
                permit.breaker_id,
                "SET failures = :zero",
                "#state = :closed",
                {":closed": _s(State.CLOSED), ":zero": _n(0)},
            )

    def record_failure(self, permit: Permit) -> None:
        now = self._clock()
        if permit.probe:
            self._open(
                permit.breaker_id, now, condition="#state = :half", values={":half": _s(State.HALF_OPEN)}
            )
            return
        cutoff = now - self.policy.window_seconds
        item = self._count_failure(permit.breaker_id, now, cutoff)
        failures = int(_num(item, "failures"))
        window_failures = int(_num(item, "window_failures"))
        if (
            failures >= self.policy.failure_threshold
            or window_failures >= self.policy.window_failure_threshold
        ):
            self._open(
                permit.breaker_id,
                now,
                condition="attribute_not_exists(#state) OR #state = :closed",
                values={":closed": _s(State.CLOSED)},
            )

    def _count_failure(self, breaker_id: str, now: float, cutoff: float) -> dict[str, Any]:
        """Increment both counters atomically, starting a new window when the current one ended."""
        common: dict[str, Any] = {
            "TableName": self._table,
            "Key": self._key(breaker_id),
            "ExpressionAttributeNames": {"#state": "state"},
            "ReturnValues": "ALL_NEW",
        }
        expires = _n(now + ITEM_TTL_SECONDS)
        for _ in range(3):
            try:
                response = self._client.update_item(
                    **common,
                    UpdateExpression="ADD failures :one, window_failures :one SET expires_at = :expires, "
                    "#state = if_not_exists(#state, :closed)",
                    ConditionExpression="window_start >= :cutoff",
                    ExpressionAttributeValues={
                        ":one": _n(1),
                        ":cutoff": _n(cutoff),
                        ":expires": expires,
                        ":closed": _s(State.CLOSED),
                    },
                )
                return dict(response.get("Attributes", {}))
            except ClientError as error:
                if not _conditional_failed(error):
                    raise
            try:
                response = self._client.update_item(
                    **common,
                    UpdateExpression="ADD failures :one SET window_failures = :one, window_start = :now, "
                    "expires_at = :expires, #state = if_not_exists(#state, :closed)",
                    ConditionExpression="attribute_not_exists(window_start) OR window_start < :cutoff",
                    ExpressionAttributeValues={
                        ":one": _n(1),
                        ":now": _n(now),
                        ":cutoff": _n(cutoff),
                        ":expires": expires,
                        ":closed": _s(State.CLOSED),
                    },
                )
                return dict(response.get("Attributes", {}))
            except ClientError as error:
                if not _conditional_failed(error):
                    raise
        return {}

    def _open(self, breaker_id: str, now: float, *, condition: str, values: dict[str, Any]) -> None:
        opened = self._update(
            breaker_id,
            "SET #state = :open, opened_at = :now, failures = :zero, window_failures = :zero "
            "REMOVE probe_until",
            condition,
            {**values, ":open": _s(State.OPEN), ":now": _n(now), ":zero": _n(0)},
        )
        if opened:
            logger.warning("circuit opened", extra={"breaker": breaker_id})
