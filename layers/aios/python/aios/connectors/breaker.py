"""The circuit breaker of every connector and of the model endpoint: Powertools' circuit
breaker (``aws_lambda_powertools.utilities.circuit_breaker``) on the circuit table, one
circuit per connector and target (item ``id = "{connector}#{target}"``).

What Powertools does: a closed circuit opens after ``failure_threshold`` consecutive
failures; an open one fails fast until ``cooldown_seconds`` passed; then one invocation wins
a conditional write and probes (its lease lasts a cooldown, after which another may take
over); the probe's success closes the circuit, its failure opens it again. State is shared
through DynamoDB (GetItem, PutItem, UpdateItem: the only actions its role gets on the table)
and cached ``cache_seconds`` per execution environment, so a healthy target costs one read
every few seconds and no write. Docs:
https://docs.aws.amazon.com/powertools/python/latest/utilities/circuit_breaker/

What we add around it, in ``CircuitBreaker.protect``:

- **Our error names.** An open circuit raises ``Connector.CircuitOpen`` (the state machines
  retry it after a cooldown), never Powertools' ``CircuitBreakerOpenError``.
- **"The target answered" is a success.** Only ``Connector.Unavailable``,
  ``Connector.Throttled`` and ``Model.Unavailable`` count as failures. Any other error of
  ours (a 4xx ``Rejected``, ``AuthFailed``, a refused model request) means the target is up:
  it leaves the protected call as a value and is raised again after it, so it resets the
  consecutive count and closes a probing circuit, as a success does.
- **A fixed-window failure rule.** Powertools counts consecutive failures only, and per
  execution environment: a target that fails every other call, or fails across many
  concurrent environments, never trips it. We also count failures per ``window_seconds`` in
  the table (one atomic UpdateItem per failure; successes write nothing) and open the
  circuit through Powertools' persistence when ``window_failure_threshold`` is reached.
- **Transition logs** ("circuit opened", "circuit closed: target recovered"), which the
  monitoring construct turns into metrics and the open-breaker alarm.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Generic, Literal, Protocol, TypeVar

from aws_lambda_powertools.utilities.circuit_breaker import (
    CircuitBreakerConfig,
    CircuitBreakerOpenError,
    CircuitInfo,
    CircuitState,
    CircuitTransition,
    circuit_breaker,
)
from aws_lambda_powertools.utilities.circuit_breaker.persistence import CircuitBreakerDynamoDBPersistence
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from aios.config import settings
from aios.errors import (
    AiosError,
    ConnectorCircuitOpen,
    ConnectorThrottled,
    ConnectorUnavailable,
    ModelUnavailable,
)
from aios.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

T = TypeVar("T")

#: The errors that mean "the target is down": the only ones that count against a circuit.
TRANSIENT: tuple[type[AiosError], ...] = (ConnectorUnavailable, ConnectorThrottled, ModelUnavailable)
#: The DynamoDB actions the breaker performs on the circuit table (Powertools' persistence:
#: get_item, put_item, update_item; the window counter: update_item). Its role gets these only.
TABLE_ACTIONS: tuple[str, ...] = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
#: The circuit items' TTL attribute (the table's ``ttl_attribute``).
TTL_ATTRIBUTE = "expires_at"
#: Idle window counters disappear after this long.
WINDOW_TTL_SECONDS = 24 * 3600

__all__ = [
    "TABLE_ACTIONS",
    "TRANSIENT",
    "Breaker",
    "BreakerPolicy",
    "CircuitBreaker",
    "CircuitState",
    "classify",
]


class Breaker(Protocol):
    """What callers need of a breaker (``CircuitBreaker``; tests pass fakes)."""

    def protect(self, connector: str, target: str, action: Callable[[], T]) -> T: ...


class BreakerPolicy(BaseModel):
    model_config = ConfigDict(frozen=True)

    failure_threshold: Annotated[int, Field(ge=1)] = 5
    window_seconds: Annotated[int, Field(ge=1)] = 60
    window_failure_threshold: Annotated[int, Field(ge=1)] = 10
    #: Seconds open before a probe; also the probe's lease (Powertools counts whole seconds).
    cooldown_seconds: Annotated[int, Field(ge=1)] = 30
    #: Probe successes that close the circuit: one, as a single recovered answer proves it.
    success_threshold: Annotated[int, Field(ge=1)] = 1
    #: How long an execution environment trusts the state it read (Powertools' default).
    cache_seconds: Annotated[int, Field(ge=0)] = 5

    @property
    def probe_timeout_seconds(self) -> int:
        """How long a probe holds half-open before another invocation may take over:
        Powertools leases the probe for one cooldown."""
        return self.cooldown_seconds


def classify(error: BaseException) -> Literal["failure", "answered", "unrelated"]:
    """What an error raised by a protected call means for its circuit."""
    if isinstance(error, TRANSIENT):
        return "failure"
    if isinstance(error, AiosError):
        return "answered"  # the target answered (a refusal is an answer): it is up
    return "unrelated"  # a bug of ours says nothing about the target


@dataclass(frozen=True, slots=True)
class _Answered(Generic[T]):
    """A protected call's outcome that is not a failure: a value, or an answer to re-raise."""

    value: T | None = None
    error: AiosError | None = None


class CircuitBreaker:
    """The breaker adapter. ``clock`` (epoch seconds) drives the window rule; inject one in
    tests together with Powertools' own time."""

    def __init__(
        self,
        *,
        table_name: str | None = None,
        client: DynamoDBClient | None = None,
        policy: BreakerPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from aios import clients  # noqa: PLC0415 - the default client is made on first use

        self._table = table_name or settings().require("circuit_table")
        self._client: DynamoDBClient = client or clients.dynamodb()
        self.policy = policy or BreakerPolicy()
        self._clock = clock
        self._persistence = CircuitBreakerDynamoDBPersistence(
            table_name=self._table, boto3_client=self._client, expiry_attr=TTL_ATTRIBUTE
        )
        self._config = CircuitBreakerConfig(
            failure_threshold=self.policy.failure_threshold,
            recovery_timeout=self.policy.cooldown_seconds,
            success_threshold=self.policy.success_threshold,
            handled_exceptions=TRANSIENT,
            local_cache_max_age=self.policy.cache_seconds,
        )

    @staticmethod
    def breaker_id(connector: str, target: str) -> str:
        return f"{connector}#{target}"

    def protect(self, connector: str, target: str, action: Callable[[], T]) -> T:
        """Run ``action`` through the circuit of ``connector`` and ``target``; raise
        ``Connector.CircuitOpen`` without running it while the circuit is open."""
        name = self.breaker_id(connector, target)

        def attempt() -> _Answered[T]:
            try:
                return _Answered(value=action())
            except AiosError as error:
                if classify(error) == "failure":
                    raise
                return _Answered(error=error)

        protected: Callable[[], _Answered[T]] = circuit_breaker(
            name=name,
            persistence_store=self._persistence,
            config=self._config,
            on_transition=self._transition,
        )(attempt)
        try:
            outcome = protected()
        except CircuitBreakerOpenError as error:
            raise self._open_error(connector, target, error.circuit) from None
        except TRANSIENT:
            try:
                self._count_in_window(name)
            except Exception:  # as Powertools' own writes: never mask the target's real error
                logger.warning("circuit window count failed", extra={"breaker": name}, exc_info=True)
            raise
        if outcome.error is not None:
            raise outcome.error
        return outcome.value  # type: ignore[return-value]  # T when no error was answered

    def state(self, connector: str, target: str) -> CircuitState:
        """The stored state (strongly consistent read; ``CLOSED`` if the circuit never opened)."""
        item = self._client.get_item(
            TableName=self._table, Key={"id": {"S": self.breaker_id(connector, target)}}, ConsistentRead=True
        ).get("Item", {})
        stored = item.get("state", {}).get("S")
        return CircuitState(stored) if stored else CircuitState.CLOSED

    def _open_error(self, connector: str, target: str, circuit: CircuitInfo | None) -> ConnectorCircuitOpen:
        now = self._clock()
        opened_at = circuit.opened_at if circuit and circuit.opened_at is not None else now
        remaining = opened_at + self.policy.cooldown_seconds - now
        if circuit is not None and circuit.state is CircuitState.OPEN and remaining > 0:
            detail = f"circuit open, next probe in {remaining:.0f}s"
        else:
            detail = "circuit half-open, another invocation is probing"
        return ConnectorCircuitOpen(f"{connector} -> {target}: {detail}", connector=connector, target=target)

    # -- the fixed-window rule -------------------------------------------------------------
    def _count_in_window(self, name: str) -> None:
        """Count a failure of a closed circuit in the current window; open the circuit when
        the window holds ``window_failure_threshold`` of them."""
        if self._persistence.get_state(name).state is not CircuitState.CLOSED:
            return  # a probe failed (Powertools reopened it) or the failure just tripped it
        now = self._clock()
        failures = self._add_failure(name, now)
        if failures < self.policy.window_failure_threshold:
            return
        self._persistence.save_open(name, failure_count=failures, opened_at=int(now))
        self._transition(CircuitTransition(name, CircuitState.CLOSED, CircuitState.OPEN, int(now)))

    def _transition(self, transition: CircuitTransition) -> None:
        """Log it (the monitoring's metric filters count these lines); a closed circuit that
        opens starts its next closed period with an empty window."""
        if transition.from_state is CircuitState.CLOSED and transition.to_state is CircuitState.OPEN:
            self._reset_window(transition.circuit_name)
        _log_transition(transition)

    def _window_key(self, name: str) -> dict[str, AttributeValueTypeDef]:
        return {"id": {"S": f"{name}#window"}}

    def _add_failure(self, name: str, now: float) -> int:
        """Increment the window's count atomically, starting a new window when it ended."""
        cutoff, expires = _n(now - self.policy.window_seconds), _n(now + WINDOW_TTL_SECONDS)
        for _ in range(3):  # each attempt loses only to another invocation's concurrent write
            for expression, condition in (
                ("ADD failures :one SET expires_at = :expires", "window_start >= :cutoff"),
                (
                    "SET failures = :one, window_start = :now, expires_at = :expires",
                    "attribute_not_exists(window_start) OR window_start < :cutoff",
                ),
            ):
                try:
                    response = self._client.update_item(
                        TableName=self._table,
                        Key=self._window_key(name),
                        UpdateExpression=expression,
                        ConditionExpression=condition,
                        ExpressionAttributeValues={
                            ":one": _n(1),
                            ":cutoff": cutoff,
                            ":expires": expires,
                            **({":now": _n(now)} if ":now" in expression else {}),
                        },
                        ReturnValues="UPDATED_NEW",
                    )
                except ClientError as error:
                    if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                        raise
                    continue
                return int(response.get("Attributes", {}).get("failures", {}).get("N", "0"))
        return 0

    def _reset_window(self, name: str) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=self._window_key(name),
            UpdateExpression="SET failures = :zero",
            ExpressionAttributeValues={":zero": _n(0)},
        )


def _n(value: float) -> AttributeValueTypeDef:
    return {"N": str(Decimal(str(round(value, 6))))}


def _log_transition(transition: CircuitTransition) -> None:
    extra = {"breaker": transition.circuit_name}
    if transition.to_state is CircuitState.OPEN:
        logger.warning("circuit opened", extra=extra)
    elif transition.to_state is CircuitState.CLOSED:
        logger.info("circuit closed: target recovered", extra=extra)
    else:
        logger.info("circuit half-open: probing", extra=extra)
