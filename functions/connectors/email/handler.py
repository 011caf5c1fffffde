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

from aios.connectors.catalog import email
from aios.steps import Operations, step_handler

handler = step_handler(Operations(email.REQUEST, email.handle))
