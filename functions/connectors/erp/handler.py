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

from aios.connectors.catalog import erp
from aios.steps import Operations, step_handler

handler = step_handler(Operations(erp.REQUEST, erp.handle))
