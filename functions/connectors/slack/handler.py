"""Slack connector: a thin Lambda handler over ``aios.connectors.catalog.slack``.

Operations:

- ``post_approval_request`` ``{business_key, approval_id, channel, invoice: summary}`` ->
  ``{business_key, channel, ts}``; buttons carry only the opaque ``approval_id``
- ``update_decision`` ``{business_key, channel, ts, decision, decided_by?, invoice}`` -> same
- ``post_reminder`` / ``post_escalation`` ``{business_key, channel, thread_ts, sequence, mention?,
  text?}`` -> same

Never accepts or sends a task token: the approvals table keeps it server-side.

Every result carries ``connector``, ``connector_version`` and ``operation``. Failures raise
the errors of ``aios.errors`` (``Connector.Throttled``, ``Connector.Unavailable``,
``Connector.Rejected``, ``Connector.AuthFailed``, ``Connector.CircuitOpen``,
``Validation.Failed`` for a request that breaks its contract); the state machine's
``Retry``/``Catch`` decide what happens next. Lambda loads this file as the top-level
``handler`` module, so it imports only ``aios`` and libraries.
"""

from __future__ import annotations

from aios.connectors.catalog import slack
from aios.steps import Operations, step_handler

handler = step_handler(Operations(slack.REQUEST, slack.handle))
