"""Typed errors whose names the state machines match in ``Retry``/``Catch``.

AWS Lambda reports a failed invocation's ``errorType`` as the exception class's
``__name__``; Step Functions matches ``ErrorEquals`` against it. Each class here therefore
carries the dotted vocabulary name (``Connector.Throttled``) as its ``__name__``, so the
ASL files, the handlers and the local mode agree on one spelling.
"""

from __future__ import annotations

from typing import ClassVar


class AiosError(Exception):
    """Base of every error the platform raises on purpose."""

    error_name: ClassVar[str] = "Aios.Error"

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.__name__ = cls.error_name
        cls.__qualname__ = cls.error_name


class ConnectorError(AiosError):
    """A connector could not complete its call; the subclass says how it failed."""

    error_name = "Connector.Error"

    def __init__(self, message: str, *, connector: str = "", target: str = "") -> None:
        super().__init__(message)
        self.connector = connector
        self.target = target


class ConnectorThrottled(ConnectorError):
    """The target answered 429 (or its own rate-limit signal); ``retry_after`` is kept."""

    error_name = "Connector.Throttled"

    def __init__(
        self,
        message: str,
        *,
        connector: str = "",
        target: str = "",
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(message, connector=connector, target=target)
        self.retry_after_seconds = retry_after_seconds


class ConnectorUnavailable(ConnectorError):
    """5xx, timeout or connection failure: transient, worth retrying."""

    error_name = "Connector.Unavailable"


class ConnectorRejected(ConnectorError):
    """4xx other than auth, or a response that breaks the contract: permanent."""

    error_name = "Connector.Rejected"


class ConnectorAuthFailed(ConnectorError):
    """401/403 or credentials that cannot be obtained: permanent until an operator acts."""

    error_name = "Connector.AuthFailed"


class ConnectorCircuitOpen(ConnectorError):
    """The breaker for this connector and target is open: failed fast, target not called."""

    error_name = "Connector.CircuitOpen"


class ModelUnavailable(AiosError):
    """The model endpoint could not score the request (transient)."""

    error_name = "Model.Unavailable"


class ValidationFailed(AiosError):
    """Input broke its contract; retrying the same input cannot succeed."""

    error_name = "Validation.Failed"


class ApprovalRejected(AiosError):
    """A human rejected the request (sent with ``SendTaskFailure``; the workflow catches it)."""

    error_name = "Approval.Rejected"


class ApprovalDecided(AiosError):
    """An approval stage found the approval no longer pending (a decision, or the expiry, is
    recorded in the approvals table): the stage fails at once and the workflow follows the
    recorded outcome instead of waiting for a task token that may never be answered."""

    error_name = "Approval.Decided"


ALL_ERRORS: tuple[type[AiosError], ...] = (
    ConnectorThrottled,
    ConnectorUnavailable,
    ConnectorRejected,
    ConnectorAuthFailed,
    ConnectorCircuitOpen,
    ModelUnavailable,
    ValidationFailed,
    ApprovalRejected,
    ApprovalDecided,
)

#: The names ASL files may use in ``ErrorEquals`` besides ``States.*``.
ERROR_NAMES: frozenset[str] = frozenset(error.error_name for error in ALL_ERRORS)
