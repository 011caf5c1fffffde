"""The connector base: a connector is one class, and everything else derives from it.

A subclass declares ``name`` and ``version`` and one public method per operation, taking
its request model (a ``ConnectorRequest`` with ``operation: Literal[...]``) and returning a
``ConnectorResult``. From the methods come the request union the Lambda handler validates
(``request_adapter``), the dispatch on ``operation`` (``handle``), the process's default
instance (``default``) and the Lambda handler itself (``lambda_handler``: parse, dispatch,
lineage record, JSON), so a connector's handler file is one line of code.

``Connector.call`` = circuit breaker -> HTTP request (auth from the connector's secret, one
retry after re-reading a rotated secret on ``AuthFailed``) -> mapping of the response to
the error taxonomy -> the JSON body; ``Connector.guard`` does the same for an AWS SDK call.
``Connector.once`` wraps a side effect in Powertools idempotency keyed on the business key
and operation, so a repeated request returns the first outcome without calling the target.
Every result carries ``connector`` and ``connector_version`` so lineage records which
connector version produced an outcome.
"""

from __future__ import annotations

import hashlib
import inspect
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Self, TypeVar, Union, cast, get_args
from urllib.parse import urlsplit

import httpx
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from aios.connectors.breaker import Breaker, CircuitBreaker
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
    ConnectorCircuitOpen,
    ConnectorError,
    ConnectorRejected,
    ConnectorThrottled,
    ConnectorUnavailable,
    ValidationFailed,
)
from aios.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from aios.steps import LambdaHandler

ModelT = TypeVar("ModelT", bound=BaseModel)
T = TypeVar("T")
#: An operation: a method of a connector taking its request model.
OperationMethod = Callable[[Any, Any], "ConnectorResult"]

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
    #: The process's instance of each connector class (``default``).
    _defaults: ClassVar[dict[type[Connector], Connector]] = {}

    def __init__(
        self,
        *,
        credentials: Credentials | None = None,
        breaker: Breaker | None = None,
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

    # -- derived from the class: operations, requests, dispatch, handler ------------------
    @classmethod
    def operations(cls) -> dict[str, tuple[type[ConnectorRequest], OperationMethod]]:
        """``operation`` value -> (request model, method), from the public methods whose
        request parameter is annotated with a model that has ``operation: Literal[...]``."""
        found = cls.__dict__.get("_operations")
        if found is None:
            found = {}
            for attribute, method in inspect.getmembers(cls, inspect.isfunction):
                model = None if attribute.startswith("_") else _request_model(method)
                for value in _operation_values(model) if model else ():
                    if value in found:
                        raise TypeError(f"{cls.__name__}: operation {value!r} is served twice")
                    found[value] = (model, method)
            if not found:
                raise TypeError(f"{cls.__name__} has no operations")
            cls._operations = found  # type: ignore[attr-defined]  # per class, on first use
        return cast("dict[str, tuple[type[ConnectorRequest], OperationMethod]]", found)

    @classmethod
    def request_adapter(cls) -> TypeAdapter[Any]:
        """The union of the operations' request models, discriminated on ``operation``."""
        adapter = cls.__dict__.get("_request_adapter")
        if adapter is None:
            models = tuple(dict.fromkeys(model for model, _ in cls.operations().values()))
            request: Any = models[0]
            if len(models) > 1:
                request = Annotated[Union[models], Field(discriminator="operation")]  # noqa: UP007 - built at run time
            adapter = TypeAdapter(cast("Any", request))
            cls._request_adapter = adapter  # type: ignore[attr-defined]
        return cast("TypeAdapter[Any]", adapter)

    def dispatch(self, request: ConnectorRequest) -> ConnectorResult:
        """Serve ``request`` with the method of its operation."""
        _, method = self.operations()[str(getattr(request, "operation", ""))]
        return method(self, request)

    @classmethod
    def default(cls) -> Self:
        """The process's instance (made on first use; ``reset_defaults`` forgets them)."""
        instance = Connector._defaults.get(cls)
        if instance is None:
            instance = Connector._defaults[cls] = cls()
        return cast("Self", instance)

    @staticmethod
    def reset_defaults() -> None:
        Connector._defaults.clear()

    @classmethod
    def handle(cls, request: ConnectorRequest, connector: Connector | None = None) -> ConnectorResult:
        """Serve ``request`` with ``connector`` or the process's default instance."""
        return (connector or cls.default()).dispatch(request)

    @classmethod
    def lambda_handler(cls) -> LambdaHandler:
        """The connector's Lambda handler: validate the event against ``request_adapter``
        (``Validation.Failed`` names bad fields), ``handle`` it, record its lineage step, and
        return the result's JSON (``aios.steps.step_handler``)."""
        from aios.steps import Operations, step_handler  # noqa: PLC0415 - steps imports this module

        return step_handler(Operations(cls.request_adapter(), cls.handle))

    # -- dependencies -------------------------------------------------------------------
    @property
    def credentials(self) -> Credentials:
        if self._credentials is None:
            self._credentials = Credentials()
        return self._credentials

    @property
    def breaker(self) -> Breaker:
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

    def settings_as(self, model: type[ModelT]) -> ModelT:
        """The ``settings`` object of the secret as ``model``; ``Connector.AuthFailed`` (an
        operator must fix the secret) when it does not fit, without quoting it."""
        try:
            return model.model_validate(self.settings())
        except ValidationError:
            raise ConnectorAuthFailed(
                f"{self.name}: settings in its secret are malformed", connector=self.name
            ) from None

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

    def context(self, operation: str, target: str | None = None) -> CallContext:
        """Who calls what, for error messages (``parse_body``, ``ensure_rejected``)."""
        return CallContext(connector=self.name, operation=operation, target=target or self.target())

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
        context = self.context(operation, target)
        started = time.perf_counter()

        def send() -> dict[str, Any]:
            arguments: dict[str, Any] = {"json": json, "data": data, "params": params, "headers": headers}
            try:
                return self._send(method, path, context, check, **arguments)
            except ConnectorAuthFailed:
                # Maybe the secret rotated: re-read it once (force_fetch) and try again.
                logger.info("auth failed: refreshing credentials once", extra=self._log(context))
                self._http(refresh=True)
                return self._send(method, path, context, check, **arguments)

        try:
            body = self.breaker.protect(self.name, target, send)
        except ConnectorCircuitOpen:
            raise
        except (ConnectorUnavailable, ConnectorThrottled) as error:
            logger.warning(
                "connector call failed",
                extra={**self._log(context), "error": error.error_name, "ms": self._ms(started)},
            )
            raise
        except ConnectorError as error:
            logger.warning(
                "connector call refused",
                extra={**self._log(context), "error": error.error_name, "ms": self._ms(started)},
            )
            raise
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
        context = self.context(operation, target)

        def mapped() -> T:
            try:
                return action()
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

        return self.breaker.protect(self.name, target, mapped)

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


def _request_model(method: Callable[..., Any]) -> type[ConnectorRequest] | None:
    """The class the method's first parameter after ``self`` is annotated with, if it is a
    request model (annotations are strings here: a class name, or a dotted one, looked up
    in the method's module; no other expression is evaluated)."""
    parameters = list(inspect.signature(method).parameters.values())[1:2]
    if not parameters:
        return None
    annotation: Any = parameters[0].annotation
    if isinstance(annotation, str):  # ``GetVendor`` or ``module.GetVendor``
        head, *rest = annotation.split(".")
        annotation = method.__globals__.get(head)
        for part in rest:
            annotation = getattr(annotation, part, None)
    if isinstance(annotation, type) and issubclass(annotation, ConnectorRequest):
        return annotation
    return None


def _operation_values(model: type[ConnectorRequest]) -> tuple[str, ...]:
    """The values of the model's ``operation: Literal[...]`` (none: not an operation's request)."""
    field = model.model_fields.get("operation")
    return tuple(str(value) for value in get_args(field.annotation)) if field else ()
