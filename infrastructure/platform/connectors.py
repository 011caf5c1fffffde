"""The connector catalog's part of the platform description: the circuit table and one
function per connector.

Each connector reads its own secret ``{secrets_prefix}/connectors/{connector}``; the
``FunctionSpec`` model has no field for that yet (``connector_secret``), so the secret each
function needs is recorded in ``CONNECTOR_SECRETS`` until the model grows one.
"""

from __future__ import annotations

from aios.config import EnvVar
from infrastructure.platform.model import Access, FunctionSpec, KeyAttribute, TableSpec

CIRCUIT = TableSpec(
    id="circuit",
    description=(
        "Circuit breaker state per connector and target: pk id = '<connector>#<target>'. "
        "Updated with conditional writes by every connector invocation; idle items expire by TTL."
    ),
    env_var=EnvVar.CIRCUIT_TABLE,
    partition_key=KeyAttribute(name="id"),
    ttl_attribute="expires_at",
)

_HTTP_CONNECTOR_ACCESS = {"idempotency": Access.READ_WRITE, "circuit": Access.READ_WRITE}

ERP_CONNECTOR = FunctionSpec(
    name="erp-connector",
    description="ERP connector: get an invoice, post an approved invoice, reverse a posting.",
    code="connectors/erp",
    memory_mb=256,
    timeout_seconds=30,
    tables=_HTTP_CONNECTOR_ACCESS,
)

PAYMENTS_CONNECTOR = FunctionSpec(
    name="payments-connector",
    description="Payments connector (Stripe-like): create a payment, get its status, cancel it.",
    code="connectors/payments",
    memory_mb=256,
    timeout_seconds=30,
    tables=_HTTP_CONNECTOR_ACCESS,
)

SLACK_CONNECTOR = FunctionSpec(
    name="slack-connector",
    description="Slack connector: approval requests, decisions, reminders and escalations.",
    code="connectors/slack",
    memory_mb=256,
    timeout_seconds=30,
    tables=_HTTP_CONNECTOR_ACCESS,
)

EMAIL_CONNECTOR = FunctionSpec(
    name="email-connector",
    description="Email connector: templated mail through SES; inbound invoice mail parsed from S3.",
    code="connectors/email",
    memory_mb=512,
    timeout_seconds=30,
    tables=_HTTP_CONNECTOR_ACCESS,
    # Reads inbound mail SES stored there and writes attachments as claim-checks.
    buckets={"documents": Access.READ_WRITE},
)

DOCUMENTS_CONNECTOR = FunctionSpec(
    name="documents-connector",
    description="Documents connector: claim-check put and get in the documents bucket.",
    code="connectors/documents",
    memory_mb=512,
    timeout_seconds=30,
    tables={"circuit": Access.READ_WRITE},
    buckets={"documents": Access.READ_WRITE},
)

CONNECTOR_FUNCTIONS: tuple[FunctionSpec, ...] = (
    ERP_CONNECTOR,
    PAYMENTS_CONNECTOR,
    SLACK_CONNECTOR,
    EMAIL_CONNECTOR,
    DOCUMENTS_CONNECTOR,
)

#: Function name -> the connector whose secret it reads (``secret_name(connector)``).
#: To become ``FunctionSpec.connector_secret: str | None`` (grant read on that secret).
CONNECTOR_SECRETS: dict[str, str | None] = {
    "erp-connector": "erp",
    "payments-connector": "payments",
    "slack-connector": "slack",
    "email-connector": "email",
    "documents-connector": None,
}
