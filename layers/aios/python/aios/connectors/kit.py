"""The connector base: one call pipeline every connector of the catalog goes through.

``Connector.call`` = breaker check -> HTTP request (auth from the connector's secret, one
retry after re-reading a rotated secret on ``AuthFailed``) -> mapping of the response to
the error taxonomy -> breaker bookkeeping -> the JSON body. ``Connector.once`` wraps a side
effect in Powertools idempotency keyed on the business key and operation, so a repeated
request returns the first outcome without calling the target again.

Subclasses declare ``name`` and ``version``; every result carries both (``connector``,
``connector_version``) so lineage records which connector version produced an outcome.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import httpx
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from aios.connectors.breaker import CircuitBreaker
from aios.connectors.credentials import ConnectorSecret, Credentials
from aios.connectors.http import OAuth2ClientCredentials, Timeouts, auth_from_secret, build_client
from aios.connectors.mapping import (
    CallContext,
    aws_error,
    invalid_response,
    json_body,
    raise_for_status,
    raise_for_transport,
)
from aios.errors import (
    ConnectorAuthFailed,
    ConnectorError,
    ConnectorRejected,
    ConnectorThrottled,
    ConnectorUnavailable,
    ValidationFailed,
)
from aios.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

ModelT = TypeVar("ModelT", bound=BaseModel)
T = TypeVar("T")

#: Checks a response and returns its JSON body; raises the taxonomy's errors.
ResponseCheck = Callable[[httpx.Response, CallContext], dict[str, Any]]

#: Idempotency records of side effects are kept this long (a retried payment a day later
#: must still find the first outcome).
IDEMPOTENCY_EXPIRES_SECONDS = 24 * 3600


class ConnectorRequest(BaseModel):
    """Base of every operation's request: immutable, unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ConnectorResult(BaseModel):
    """Base of every operation's response: who produced it, in which version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connector: str
    connector_version: str
    operation: str


def default_check(response: httpx.Response, context: CallContext) -> dict[str, Any]:
    raise_for_status(response, context)
    return json_body(response, context)


def parse_request(adapter: TypeAdapter[T], event: Any) -> T:
    """Validate a handler's event; ``Validation.Failed`` names the bad fields, not their values."""
    try:
        return adapter.validate_python(event)
    except ValidationError as error:
        problems = sorted({f"{'.'.join(str(p) for p in e['loc'])}: {e['type']}" for e in error.errors()})
        raise ValidationFailed(f"invalid request: {problems[:10]}") from None


def parse_body(model: type[ModelT], body: Mapping[str, Any], context: CallContext) -> ModelT:
    """Validate a provider's response body; ``Connector.Rejected`` names the bad fields."""
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise invalid_response(
            context, [".".join(str(p) for p in e["loc"]) for e in error.errors()]
        ) from None


def derived_idempotency_key(business_key: str, operation: str) -> str:
    """The provider idempotency header value for ``operation`` on ``business_key``: stable
    across retries and Lambda instances, opaque (no business data leaves in the header)."""
    return "aios-" + hashlib.sha256(f"{business_key}#{operation}".encode()).hexdigest()[:48]


#: One idempotency configuration for every connector of the process, so the step handler
#: can bound in-progress records by the invocation's remaining time (``register_lambda_context``).
IDEMPOTENCY_CONFIG = IdempotencyConfig(
    expires_after_seconds=IDEMPOTENCY_EXPIRES_SECONDS, raise_on_no_idempotency_key=True
)


def register_lambda_context(context: LambdaContext) -> None:
    """A side effect still in progress when this invocation times out expires with it, so a
    retry of the step is not refused as "already in progress" for the whole expiry window."""
    IDEMPOTENCY_CONFIG.register_lambda_context(context)


class Connector:
    """Base of the catalog's connectors. Every dependency is injectable; defaults are made
    on first use from the platform settings (circuit and idempotency tables, secrets)."""

    name: ClassVar[str]
    version: ClassVar[str]
    #: Used when the secret has no ``base_url``.
    default_base_url: ClassVar[str | None] = None

    def __init__(
        self,
        *,
        credentials: Credentials | None = None,
        breaker: CircuitBreaker | None = None,
        idempotency_store: BasePersistenceLayer | None = None,
        timeouts: Timeouts | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._credentials = credentials
        self._breaker = breaker
        self._idempotency_store = idempotency_store
        self.timeouts = timeouts or Timeouts()
        self._transport = transport
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._client_secret: ConnectorSecret | None = None
        self._idempotency_config = IDEMPOTENCY_CONFIG

    # -- dependencies -------------------------------------------------------------------
    @property
    def credentials(self) -> Credentials:
        if self._credentials is None:
            self._credentials = Credentials()
        return self._credentials

    @property
    def breaker(self) -> CircuitBreaker:
        if self._breaker is None:
            self._breaker = CircuitBreaker()
        return self._breaker

    @property
    def idempotency_store(self) -> BasePersistenceLayer:
        if self._idempotency_store is None:
            from aios.idempotency import persistence_layer  # noqa: PLC0415 - needs the table setting

            # One store for every connector operation: they share one config, and the key
            # prefix (connector.<name>.<operation>) is passed on each call.
            self._idempotency_store = persistence_layer("connectors")
        return self._idempotency_store

    def secret(self, *, refresh: bool = False) -> ConnectorSecret:
        return self.credentials.get(self.name, refresh=refresh)

    def settings(self) -> dict[str, Any]:
        """The non-secret ``settings`` object of the connector's secret."""
        return self.secret().settings

    def _http(self, *, refresh: bool = False) -> httpx.Client:
        secret = self.secret(refresh=refresh)
        with self._lock:
            if self._client is None or secret != self._client_secret:
                base_url = secret.base_url or self.default_base_url
                if not base_url:
                    raise ConnectorAuthFailed(f"{self.name}: no base_url in its secret", connector=self.name)
                if self._client is not None:
                    self._client.close()
                self._client = build_client(
                    base_url=base_url,
                    auth=auth_from_secret(secret),
                    timeouts=self.timeouts,
                    transport=self._transport,
                )
                self._client_secret = secret
            return self._client

    def target(self) -> str:
        """The breaker's target: host[:port] of the base URL."""
        return urlsplit(str(self._http().base_url)).netloc

    def result(self, operation: str) -> dict[str, str]:
        """The common fields of a result."""
        return {"connector": self.name, "connector_version": self.version, "operation": operation}

    # -- the call pipeline ----------------------------------------------------------------
    def call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        check: ResponseCheck = default_check,
    ) -> dict[str, Any]:
        """Call the target through the breaker; return the checked JSON body."""
        target = self.target()
        context = CallContext(connector=self.name, operation=operation, target=target)
        permit = self.breaker.before_call(self.name, target)
        started = time.perf_counter()
        try:
            try:
                body = self._send(
                    method, path, context, check, json=json, data=data, params=params, headers=headers
                )
            except ConnectorAuthFailed:
                # Maybe the secret rotated: re-read it once (force_fetch) and try again.
                logger.info("auth failed: refreshing credentials once", extra=self._log(context))
                self._http(refresh=True)
                body = self._send(
                    method, path, context, check, json=json, data=data, params=params, headers=headers
                )
        except (ConnectorUnavailable, ConnectorThrottled) as error:
            self.breaker.record_failure(permit)
            logger.warning(
                "connector call failed",
                extra={**self._log(context), "error": error.error_name, "ms": self._ms(started)},
            )
            raise
        except ConnectorError as error:
            self.breaker.record_success(permit)  # the target answered: it is up
            logger.warning(
                "connector call refused",
                extra={**self._log(context), "error": error.error_name, "ms": self._ms(started)},
            )
            raise
        self.breaker.record_success(permit)
        logger.debug("connector call", extra={**self._log(context), "ms": self._ms(started)})
        return body

    def _send(
        self,
        method: str,
        path: str,
        context: CallContext,
        check: ResponseCheck,
        **kwargs: Any,
    ) -> dict[str, Any]:
        client = self._http()
        try:
            response = client.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise_for_transport(error, context)
        except ConnectorAuthFailed as error:  # the OAuth2 token endpoint refused us
            raise ConnectorAuthFailed(
                context.describe(str(error)), connector=self.name, target=context.target
            ) from None
        if response.status_code == 401 and isinstance(client.auth, OAuth2ClientCredentials):
            client.auth.invalidate()
        return check(response, context)

    def guard(self, operation: str, target: str, action: Callable[[], T]) -> T:
        """Run an AWS SDK call (SES, S3) through the breaker and the error mapping."""
        context = CallContext(connector=self.name, operation=operation, target=target)
        permit = self.breaker.before_call(self.name, target)
        try:
            try:
                value = action()
            except ClientError as error:
                code = str(error.response.get("Error", {}).get("Code", ""))
                status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400))
                raise aws_error(code, status, context) from None
            except BotoCoreError as error:
                raise ConnectorUnavailable(
                    context.describe(f"transport error ({type(error).__name__})"),
                    connector=self.name,
                    target=target,
                ) from None
        except (ConnectorUnavailable, ConnectorThrottled):
            self.breaker.record_failure(permit)
            raise
        except ConnectorError:
            self.breaker.record_success(permit)
            raise
        self.breaker.record_success(permit)
        return value

    # -- idempotency ----------------------------------------------------------------------
    def once(
        self,
        *,
        operation: str,
        business_key: str,
        model: type[ModelT],
        produce: Callable[[], ModelT],
        discriminator: str = "",
    ) -> ModelT:
        """Run the side effect ``produce`` at most once per business key, operation and
        ``discriminator`` (e.g. a reminder's sequence number); repeats get the stored result."""

        def side_effect(key: dict[str, str]) -> dict[str, Any]:
            return produce().model_dump(mode="json")

        run: Callable[..., dict[str, Any]] = idempotent_function(
            side_effect,
            data_keyword_argument="key",
            persistence_store=self.idempotency_store,
            config=self._idempotency_config,
            key_prefix=f"connector.{self.name}.{operation}",
        )

        key = {"business_key": business_key, "operation": operation, "discriminator": discriminator}
        try:
            stored = run(key=key)
        except IdempotencyAlreadyInProgressError:
            raise ConnectorUnavailable(
                f"{self.name} {operation}: a call for {business_key} is already in progress",
                connector=self.name,
            ) from None
        return model.model_validate(stored)

    def _log(self, context: CallContext) -> dict[str, str]:
        return {
            "connector": self.name,
            "connector_version": self.version,
            "operation": context.operation,
            "target": context.target,
        }

    @staticmethod
    def _ms(started: float) -> float:
        return round((time.perf_counter() - started) * 1000, 1)


def ensure_rejected(context: CallContext, condition: bool, what: str) -> None:
    """Raise ``Connector.Rejected`` when a provider's answer breaks our expectation."""
    if not condition:
        raise ConnectorRejected(
            context.describe(f"invalid response: {what}"), connector=context.connector, target=context.target
        )
