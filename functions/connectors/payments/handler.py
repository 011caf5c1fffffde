"""Payments connector (Stripe-like): a thin Lambda handler over ``aios.connectors.catalog.payments``.

Operations:

- ``create_payment`` ``{business_key, invoice_id, vendor_id, amount, currency, payment_method?,
  description?}`` -> ``{payment_id, status, amount, currency, business_key}``; idempotent,
  ``Idempotency-Key`` derived from the business key
- ``get_payment_status`` ``{payment_id}`` -> the same result shape
- ``cancel_payment`` ``{business_key, payment_id, reason?}`` -> the same result shape

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
from aios.connectors.catalog import payments
from aios.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_request(payments.REQUEST, event)
    return payments.handle(request).model_dump(mode="json")
