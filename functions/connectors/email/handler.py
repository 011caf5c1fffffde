"""Email connector: a thin Lambda handler over ``aios.connectors.catalog.email``.

Operations:

- ``send_email`` ``{business_key, template, to, variables, sequence?}`` -> ``{business_key,
  message_id}`` (SES v2, Simple content; idempotent per business key, template and sequence)
- ``parse_inbound_invoice`` ``{bucket, key}`` (a message SES stored in S3) -> ``{message_sha256,
  sender_domain, invoice: Invoice | null, attachments: [DocumentRef], problems}``

Every result carries ``connector``, ``connector_version`` and ``operation``. Failures raise
the errors of ``aios.errors`` (``Connector.Throttled``, ``Connector.Unavailable``,
``Connector.Rejected``, ``Connector.AuthFailed``, ``Connector.CircuitOpen``,
``Validation.Failed`` for a request that breaks its contract); the state machine's
``Retry``/``Catch`` decide what happens next. Lambda loads this file as the top-level
``handler`` module, so it imports only ``aios`` and libraries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aios.connectors import parse_request
from aios.connectors.catalog import email
from aios.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_request(email.REQUEST, event)
    return email.handle(request).model_dump(mode="json")
