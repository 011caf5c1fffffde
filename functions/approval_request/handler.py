"""approval-request: the Slack approval stages of the accounts-payable workflow.

Invoked by Step Functions with ``.waitForTaskToken`` (stages ``request``, ``reminder``,
``escalation``) or a plain invoke (``expire``); see ``aios.approvals.requests``. Thin: the
shared logger/tracer/metrics around one call. The event is never logged (it carries the task
token). Lambda loads this file as the top-level ``handler``: it imports only ``aios`` and
libraries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aios.approvals.wiring import default_requests
from aios.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return default_requests().handle(event)
