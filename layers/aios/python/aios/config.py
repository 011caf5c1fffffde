"""Configuration read once at cold start.

The environment variable names are constants that ``infrastructure/`` imports to set them
and the runtime imports to read them, so a rename cannot drift between the two.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from functools import cache

from pydantic import BaseModel, ConfigDict


class EnvVar(StrEnum):
    """Every environment variable the platform sets on its functions."""

    STAGE = "AIOS_STAGE"
    EVENT_BUS_NAME = "AIOS_EVENT_BUS_NAME"
    LINEAGE_TABLE = "AIOS_LINEAGE_TABLE"
    IDEMPOTENCY_TABLE = "AIOS_IDEMPOTENCY_TABLE"
    CIRCUIT_TABLE = "AIOS_CIRCUIT_TABLE"
    APPROVALS_TABLE = "AIOS_APPROVALS_TABLE"
    DOCUMENTS_BUCKET = "AIOS_DOCUMENTS_BUCKET"
    AUDIT_BUCKET = "AIOS_AUDIT_BUCKET"
    SECRETS_PREFIX = "AIOS_SECRETS_PREFIX"
    #: JSON object ``{source: scheme}`` of the webhook sources, from the platform description.
    WEBHOOK_SOURCES = "AIOS_WEBHOOK_SOURCES"
    #: JSON object ``{table id: days}``: how long the items a function writes are kept (TTL).
    TABLE_RETENTION_DAYS = "AIOS_TABLE_RETENTION_DAYS"
    APPROVAL_CHANNEL = "AIOS_APPROVAL_CHANNEL"
    APPROVERS = "AIOS_APPROVERS"
    ESCALATION_APPROVERS = "AIOS_ESCALATION_APPROVERS"
    AUTO_APPROVAL_LIMIT = "AIOS_AUTO_APPROVAL_LIMIT"
    ANOMALY_THRESHOLD = "AIOS_ANOMALY_THRESHOLD"
    APPROVAL_REMINDER_SECONDS = "AIOS_APPROVAL_REMINDER_SECONDS"
    APPROVAL_ESCALATION_SECONDS = "AIOS_APPROVAL_ESCALATION_SECONDS"
    APPROVAL_EXPIRY_SECONDS = "AIOS_APPROVAL_EXPIRY_SECONDS"
    MODEL_ENDPOINT = "AIOS_MODEL_ENDPOINT"
    MODEL_VERSION = "AIOS_MODEL_VERSION"
    # Powertools' own settings, set per function by the same helper.
    SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
    METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"
    LOG_LEVEL = "POWERTOOLS_LOG_LEVEL"


#: The CloudWatch namespace of every aios metric.
METRICS_NAMESPACE = "aios"


class Settings(BaseModel):
    """What a function knows about its deployment. Absent values are ``None``: a function
    that needs one it was not granted fails with a clear message (``require``)."""

    model_config = ConfigDict(frozen=True)

    stage: str = "dev"
    event_bus_name: str | None = None
    lineage_table: str | None = None
    idempotency_table: str | None = None
    circuit_table: str | None = None
    approvals_table: str | None = None
    documents_bucket: str | None = None
    audit_bucket: str | None = None
    secrets_prefix: str = "aios"
    webhook_sources: str | None = None
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

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        values = {
            field: environ[EnvVar[field.upper()].value]
            for field in cls.model_fields
            if EnvVar[field.upper()].value in environ
        }
        return cls.model_validate(values)

    def require(self, field: str) -> str:
        value = getattr(self, field)
        if not value:
            variable = EnvVar[field.upper()].value
            raise RuntimeError(f"{variable} is not set: the platform did not grant this function {field}")
        return str(value)


@cache
def settings() -> Settings:
    """The settings of this process, read once (cold start)."""
    return Settings.from_environ(os.environ)
