"""Configuration read once at cold start, declared once.

``Settings`` is the one declaration of every environment variable the platform sets on its
functions: a field is its variable, ``AIOS_`` and the field's name in capitals
(``circuit_table`` is ``AIOS_CIRCUIT_TABLE``), or the name Powertools reads
(``POWERTOOLS_SERVICE_NAME``). ``infrastructure/`` (the CDK and local renderers) names a
variable with ``variable("circuit_table")`` and the runtime reads it with ``settings()``, so a
rename cannot drift between the two, and a name that is not a field fails where it is written.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

_PREFIX = "AIOS_"


def _variable_of(field: str) -> str:
    return _PREFIX + field.upper()


#: The CloudWatch namespace of every aios metric.
METRICS_NAMESPACE = "aios"


class Settings(BaseModel):
    """What a function knows about its deployment. Absent values are ``None``: a function
    that needs one it was not granted fails with a clear message (``require``)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=_variable_of,
        validate_by_name=True,
        validate_by_alias=True,
    )

    stage: str = "dev"
    event_bus_name: str | None = None
    lineage_table: str | None = None
    idempotency_table: str | None = None
    circuit_table: str | None = None
    approvals_table: str | None = None
    documents_bucket: str | None = None
    audit_bucket: str | None = None
    secrets_prefix: str = "aios"
    #: JSON object ``{source: scheme}`` of the webhook sources, from the platform description.
    webhook_sources: str | None = None
    #: JSON object ``{table id: days}``: how long the items a function writes are kept (TTL).
    table_retention_days: str | None = None
    approval_channel: str | None = None
    approvers: str | None = None  # comma-separated Slack user ids
    escalation_approvers: str | None = None
    auto_approval_limit: str | None = None
    anomaly_threshold: str | None = None
    approval_reminder_seconds: str | None = None
    approval_escalation_seconds: str | None = None
    approval_expiry_seconds: str | None = None
    model_endpoint: str | None = None
    model_version: str | None = None
    #: The function's own timeout (``FunctionSpec.timeout_seconds``): AWS clients' timeouts fit in it.
    function_timeout_seconds: Annotated[float, Field(gt=0)] = 30.0
    # Powertools' own settings, set per function by the same helper.
    service_name: Annotated[str | None, Field(alias="POWERTOOLS_SERVICE_NAME")] = None
    metrics_namespace: Annotated[str | None, Field(alias="POWERTOOLS_METRICS_NAMESPACE")] = None
    log_level: Annotated[str | None, Field(alias="POWERTOOLS_LOG_LEVEL")] = None

    @classmethod
    def variables(cls) -> dict[str, str]:
        """Field name -> environment variable, for every setting."""
        return {name: field.alias or _variable_of(name) for name, field in cls.model_fields.items()}

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        return cls.model_validate(
            {name: environ[variable] for name, variable in cls.variables().items() if variable in environ}
        )

    def require(self, field: str) -> str:
        value = getattr(self, field)
        if not value:
            raise RuntimeError(
                f"{variable(field)} is not set: the platform did not grant this function {field}"
            )
        return str(value)


def variable(field: str) -> str:
    """The environment variable of setting ``field`` (``ValueError`` if there is none)."""
    try:
        return Settings.variables()[field]
    except KeyError:
        raise ValueError(f"no setting {field!r}: declare it on aios.config.Settings") from None


def _declared(name: str) -> str:
    if name not in Settings.variables().values():
        raise ValueError(f"{name} is not an environment variable declared on aios.config.Settings")
    return name


#: An environment variable name that ``Settings`` declares (for the platform description).
EnvVarName = Annotated[str, AfterValidator(_declared)]


@cache
def settings() -> Settings:
    """The settings of this process, read once (cold start)."""
    return Settings.from_environ(os.environ)
