"""Human approval of an invoice in Slack, for a workflow waiting on a task token.

``requests``: the ``approval-request`` stages (request, reminder, escalation, expire).
``interactions``: Slack's button clicks (``POST /approvals/slack``).
``store`` / ``responder``: the approvals table and Step Functions task responses (adapters).
"""
