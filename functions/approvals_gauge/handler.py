"""approvals-gauge: ApprovalsPending and ApprovalOldestPendingAgeSeconds, every minute.

Invoked by its schedule rule (``FunctionSpec.schedule``); the event carries nothing it needs.
Thin: the shared logger/metrics around one call to ``aios.approvals.gauge``. Lambda loads
this file as the top-level ``handler``: it imports only ``aios`` and libraries.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aios.approvals import gauge
from aios.config import settings
from aios.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    del event  # a Scheduled Event: nothing in it is needed
    reading = gauge.run(settings().require("approvals_table"), metrics, now=datetime.now(UTC))
    logger.info("approvals gauge", extra=reading.model_dump())
    return reading.model_dump()
