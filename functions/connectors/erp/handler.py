"""ERP connector: a thin Lambda handler over ``aios.connectors.catalog.erp``.

Operations (``{"operation": ..., ...}`` from Step Functions):

- ``get_invoice`` ``{invoice_id}`` -> ``{invoice: Invoice}``
- ``post_invoice`` ``{business_key, invoice: Invoice, approval_id?}`` -> ``{business_key, invoice_id,
  posting_id, status}`` (idempotent on the business key; ``Idempotency-Key`` header sent)
- ``reverse_posting`` ``{business_key, posting_id, reason}`` -> ``{business_key, posting_id,
  reversal_id, status}`` (compensation; idempotent)

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
from aios.connectors.catalog import erp
from aios.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_request(erp.REQUEST, event)
    return erp.handle(request).model_dump(mode="json")
