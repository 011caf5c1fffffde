"""The connector catalog's part of the platform description: the circuit table and one
function per connector (``connector_function``: one line per connector), each reading its
own secret ``{secrets_prefix}/connectors/{name}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aios.config import variable
from aios.connectors.breaker import TABLE_ACTIONS, TTL_ATTRIBUTE
from aios.connectors.catalog.documents import DocumentsConnector
from aios.connectors.catalog.email import EmailConnector
from aios.connectors.catalog.erp import ErpConnector
from aios.connectors.catalog.payments import PaymentsConnector
from aios.connectors.catalog.slack import SlackConnector
from aios.connectors.kit import Connector
from infrastructure.platform.spec import Access, FunctionSpec, KeyAttribute, TableSpec

CIRCUIT = TableSpec(
    id="circuit",
    description=(
        "Circuit breaker state per connector and target (Powertools' circuit breaker): pk id = "
        "'<connector>#<target>', and '<connector>#<target>#window' for the failure-window count. "
        "Written on state transitions and failures only; idle items expire by TTL."
    ),
    env_var=variable("circuit_table"),
    partition_key=KeyAttribute(name="id"),
    ttl_attribute=TTL_ATTRIBUTE,
    item_actions=TABLE_ACTIONS,
)


def connector_function(
    connector: type[Connector],
    *,
    description: str,
    credentials: bool = True,
    idempotency: bool = True,
    memory_mb: int = 256,
    timeout_seconds: int = 30,
    tables: Mapping[str, Access] | None = None,
    **options: Any,
) -> FunctionSpec:
    """The function of one connector of the catalog: its handler in
    ``functions/connectors/<name>``, read-write access to the circuit table (its breaker) and
    to the idempotency table (``Connector.once``), write access to the lineage table (every
    step records itself, ``aios.steps``), and its credentials ``{prefix}/connectors/<name>``.
    ``credentials=False``/``idempotency=False`` leave those out for a connector that needs
    none; ``tables`` adds tables and ``options`` any other ``FunctionSpec`` field."""
    return FunctionSpec(
        name=f"{connector.name}-connector",
        description=description,
        code=f"connectors/{connector.name}",
        credentials=connector.name if credentials else None,
        memory_mb=memory_mb,
        timeout_seconds=timeout_seconds,
        tables={
            **({"idempotency": Access.READ_WRITE} if idempotency else {}),
            "circuit": Access.READ_WRITE,
            "lineage": Access.WRITE,
            **(tables or {}),
        },
        **options,
    )


ERP_CONNECTOR = connector_function(
    ErpConnector,
    description="ERP connector: get an invoice, post an approved invoice, reverse a posting.",
    fingerprint_key=True,
)
PAYMENTS_CONNECTOR = connector_function(
    PaymentsConnector,
    description="Payments connector (Stripe-like): create a payment, get its status, cancel it.",
)
SLACK_CONNECTOR = connector_function(
    SlackConnector,
    description="Slack connector: approval requests, decisions, reminders and escalations.",
)
EMAIL_CONNECTOR = connector_function(
    EmailConnector,
    description="Email connector: templated mail through SES; inbound invoice mail parsed from S3.",
    fingerprint_key=True,
    send_email=True,
    memory_mb=512,
    # Reads inbound mail SES stored there and writes attachments as claim-checks.
    buckets={"documents": Access.READ_WRITE},
)
DOCUMENTS_CONNECTOR = connector_function(
    DocumentsConnector,
    description="Documents connector: claim-check put and get in the documents bucket.",
    credentials=False,
    idempotency=False,
    memory_mb=512,
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
