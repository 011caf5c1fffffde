"""Payments connector (Stripe-like): a thin Lambda handler over ``aios.connectors.catalog.payments``.

Operations:

- ``create_payment`` ``{business_key, invoice_id, vendor_id, amount, currency, payment_method?,
  description?}`` -> ``{payment_id, status, amount, currency, business_key}``; idempotent,
  ``Idempotency-Key`` derived from the business key
- ``get_payment_status`` ``{payment_id}`` -> the same result shape
- ``cancel_payment`` ``{business_key, payment_id, reason?}`` -> the same result shape
- ``find_payment`` ``{business_key}`` -> ``{business_key, found, payment_id, status}``: whether
  the processor holds a payment for the business key (compensation after a failed create)

Every result carries ``connector``, ``connector_version`` and ``operation``. Failures raise
the errors of ``aios.errors`` (``Connector.Throttled``, ``Connector.Unavailable``,
``Connector.Rejected``, ``Connector.AuthFailed``, ``Connector.CircuitOpen``,
``Validation.Failed`` for a request that breaks its contract); the state machine's
``Retry``/``Catch`` decide what happens next. Lambda loads this file as the top-level
``handler`` module, so it imports only ``aios`` and libraries.
"""

from __future__ import annotations

from aios.connectors.catalog import payments
from aios.steps import Operations, step_handler

handler = step_handler(Operations(payments.REQUEST, payments.handle))
