"""POST /approvals/slack: Slack's interactivity callback for the approval buttons.

Thin: Powertools' resolver, the shared logger/tracer/metrics, one call into
``aios.approvals.interactions`` and one exception handler that maps typed rejections
(401 invalid signature, 400, 403 not an approver, 404 unknown approval, 503) to responses.
The raw payload is never logged. Lambda loads this file as the top-level ``handler``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths

from aios.approvals.interactions import SLACK_SOURCE
from aios.approvals.wiring import default_interactions
from aios.observability import logger, metrics, tracer
from aios.webhooks.errors import WebhookError
from aios.webhooks.request import WebhookRequest

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

app = APIGatewayHttpResolver()


def _json(status_code: int, body: dict[str, Any]) -> Response[str]:
    return Response(
        status_code=status_code, content_type=content_types.APPLICATION_JSON, body=json.dumps(body)
    )


@app.post("/approvals/slack")
def interaction() -> Response[str]:
    request = WebhookRequest.from_api_gateway(app.current_event.raw_event, source=SLACK_SOURCE)
    reply = default_interactions().handle(request)
    return _json(reply.status_code, reply.body)


def rejected(error: WebhookError) -> Response[str]:
    extra = {"reason": error.code, "detail": error.detail}
    if error.status_code >= 500:
        logger.warning("slack interaction not served", extra=extra)
    else:
        logger.info("slack interaction rejected", extra=extra)
    return _json(error.status_code, {"error": error.code})


app.exception_handler(WebhookError)(rejected)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
