"""Documents connector: a thin Lambda handler over ``aios.connectors.catalog.documents``.

Operations:

- ``put_document`` ``{business_key, content (base64), content_type?}`` -> ``{ref: DocumentRef}``
- ``get_document`` ``{ref: DocumentRef}`` -> ``{ref, content (base64)}``, checked against the digest

Every result carries ``connector``, ``connector_version`` and ``operation``. Failures raise
the errors of ``aios.errors`` (``Connector.Throttled``, ``Connector.Unavailable``,
``Connector.Rejected``, ``Connector.AuthFailed``, ``Connector.CircuitOpen``,
``Validation.Failed`` for a request that breaks its contract); the state machine's
``Retry``/``Catch`` decide what happens next. Lambda loads this file as the top-level
``handler`` module, so it imports only ``aios`` and libraries.
"""

from __future__ import annotations

from aios.connectors.catalog import documents
from aios.steps import Operations, step_handler

handler = step_handler(Operations(documents.REQUEST, documents.handle))
