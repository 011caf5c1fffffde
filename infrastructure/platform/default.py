"""The default aios platform: every table, bucket, source, function and workflow, once.

CDK (``infrastructure/app.py``) and the local mode (``aios local up``) both render this
object; add a part here and both renderings get it.
"""

from __future__ import annotations

from aios import events
from aios.config import variable
from infrastructure.platform.connectors import CIRCUIT, CONNECTOR_FUNCTIONS
from infrastructure.platform.models import MODEL_FUNCTIONS, MODELS
from infrastructure.platform.payables import (
    ACCOUNTS_PAYABLE,
    APPROVALS,
    APPROVALS_ROUTE,
    PAYABLES_FUNCTIONS,
)
from infrastructure.platform.spec import (
    Access,
    BucketSpec,
    EventBusSpec,
    FunctionSpec,
    HttpRouteSpec,
    IndexSpec,
    KeyAttribute,
    Platform,
    TableSpec,
    TriggerSpec,
    WebhookSourceSpec,
    WorkflowSpec,
)

LINEAGE = TableSpec(
    id="lineage",
    description=(
        "One item per workflow step. pk = execution ARN, sk = '<recorded-at>#<state>': all steps "
        "of one execution in order. GSI by-business-key: all steps of one business item."
    ),
    env_var=variable("lineage_table"),
    partition_key=KeyAttribute(name="pk"),
    sort_key=KeyAttribute(name="sk"),
    indexes=(
        IndexSpec(
            name="by-business-key",
            partition_key=KeyAttribute(name="business_key"),
            sort_key=KeyAttribute(name="recorded_at"),
        ),
    ),
)

IDEMPOTENCY = TableSpec(
    id="idempotency",
    description="Powertools idempotency records; expired items are removed by TTL.",
    env_var=variable("idempotency_table"),
    partition_key=KeyAttribute(name="id"),
    ttl_attribute="expiration",
)

DOCUMENTS = BucketSpec(
    id="documents",
    description="Claim-check store for payloads over the Step Functions and EventBridge limits.",
    env_var=variable("documents_bucket"),
)

SOURCES = (
    WebhookSourceSpec(name="stripe", scheme="stripe", description="Stripe events"),
    WebhookSourceSpec(name="github", scheme="github", description="GitHub webhooks"),
    WebhookSourceSpec(name="slack", scheme="slack", description="Slack Events API"),
    WebhookSourceSpec(
        name="standard",
        scheme="standard",
        description="Standard Webhooks: ERP, email gateways and our own producers",
    ),
)

WEBHOOK_INGEST = FunctionSpec(
    name="webhook-ingest",
    description="Verifies, deduplicates and normalises webhooks, then puts them on the bus.",
    code="webhook_ingest",
    memory_mb=512,
    timeout_seconds=10,
    reserved_concurrency=50,
    tables={"idempotency": Access.READ_WRITE},
    buckets={"documents": Access.WRITE},
    put_events=True,
    webhook_secrets=tuple(source.name for source in SOURCES),
)

INTAKE = WorkflowSpec(
    name="intake",
    description="Records a verified webhook's receipt in lineage and emits its domain event.",
    asl="intake.asl.json",
    type="EXPRESS",
    trigger=TriggerSpec(
        description="Every verified webhook.",
        event_pattern={"source": [events.WEBHOOK_SOURCE]},
    ),
    tables={"lineage": Access.WRITE},
    put_events=True,
    # A failed Express execution is gone: what intake cannot finish goes to the DLQ.
    dead_letters=True,
)

PLATFORM = Platform(
    name="aios",
    bus=EventBusSpec(name="aios", archive_retention_days=365),
    tables=(LINEAGE, IDEMPOTENCY, CIRCUIT, APPROVALS),
    buckets=(DOCUMENTS,),
    sources=SOURCES,
    functions=(WEBHOOK_INGEST, *CONNECTOR_FUNCTIONS, *MODEL_FUNCTIONS, *PAYABLES_FUNCTIONS),
    workflows=(INTAKE, ACCOUNTS_PAYABLE),
    models=MODELS,
    routes=(
        HttpRouteSpec(method="POST", path="/webhooks/{source}", function="webhook-ingest"),
        APPROVALS_ROUTE,
    ),
)
