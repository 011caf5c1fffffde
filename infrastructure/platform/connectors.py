"""The connector catalog's part of the platform description: the circuit table and one
function per connector, each reading its own secret ``{secrets_prefix}/connectors/{name}``.
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

#: Every connector step of a workflow writes its own lineage record (aios.steps).
_HTTP_CONNECTOR_ACCESS = {
    "idempotency": Access.READ_WRITE,
    "circuit": Access.READ_WRITE,
    "lineage": Access.WRITE,
}

ERP_CONNECTOR = FunctionSpec(
    name="erp-connector",
    description="ERP connector: get an invoice, post an approved invoice, reverse a posting.",
    code="connectors/erp",
    credentials="erp",
    fingerprint_key=True,
    memory_mb=256,
    timeout_seconds=30,
    tables=_HTTP_CONNECTOR_ACCESS,
)

PAYMENTS_CONNECTOR = FunctionSpec(
    name="payments-connector",
    description="Payments connector (Stripe-like): create a payment, get its status, cancel it.",
    code="connectors/payments",
    credentials="payments",
    memory_mb=256,
    timeout_seconds=30,
    tables=_HTTP_CONNECTOR_ACCESS,
)

SLACK_CONNECTOR = FunctionSpec(
    name="slack-connector",
    description="Slack connector: approval requests, decisions, reminders and escalations.",
    code="connectors/slack",
    credentials="slack",
    memory_mb=256,
    timeout_seconds=30,
    tables=_HTTP_CONNECTOR_ACCESS,
)

EMAIL_CONNECTOR = FunctionSpec(
    name="email-connector",
    description="Email connector: templated mail through SES; inbound invoice mail parsed from S3.",
    code="connectors/email",
    credentials="email",
    fingerprint_key=True,
    send_email=True,
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
    tables={"circuit": Access.READ_WRITE, "lineage": Access.WRITE},
    buckets={"documents": Access.READ_WRITE},
)

#: The connector functions the default platform deploys: the accounts-payable workflow
#: invokes both.
CONNECTOR_FUNCTIONS: tuple[FunctionSpec, ...] = (
    ERP_CONNECTOR,
    PAYMENTS_CONNECTOR,
)

#: Connectors of the catalog that no path of the default platform invokes as a function, so
#: it does not deploy them (a deployed function nothing calls is a role, a secret to fill
#: and an attack surface for nothing). Their logic is in use in-process: ``approval-request``
#: and ``slack-interactions`` call the Slack connector (``aios.approvals``), ingest writes
#: claim-checks with ``aios.documents``. A platform that wires one into a workflow adds it
#: to its ``functions`` (``tests/integration/local/catalog_platform.py`` does, for all three).
CATALOG_ONLY_FUNCTIONS: tuple[FunctionSpec, ...] = (
    SLACK_CONNECTOR,
    EMAIL_CONNECTOR,
    DOCUMENTS_CONNECTOR,
)
