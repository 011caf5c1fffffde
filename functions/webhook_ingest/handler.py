"""POST /webhooks/{source}: verify, deduplicate and put a provider's webhook on the bus.

Thin: Powertools' resolver, the shared logger/tracer/metrics, one call into
``aios.webhooks.ingest`` and one exception handler that maps typed rejections to responses.
Imports only ``aios`` and libraries: Lambda loads this file as the top-level ``handler``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths

from aios.observability import logger, metrics, tracer
from aios.webhooks.errors import WebhookError
from aios.webhooks.ingest import Reply, default_ingestor, rejection
from aios.webhooks.request import WebhookRequest

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

app = APIGatewayHttpResolver()


def _response(reply: Reply) -> Response[str]:
    return Response(
        status_code=reply.status_code,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(reply.body),
    )


@app.post("/webhooks/<source>")
def receive(source: str) -> Response[str]:
    request = WebhookRequest.from_api_gateway(app.current_event.raw_event, source=source)
    return _response(default_ingestor().ingest(request, lambda_context=app.lambda_context))


def rejected(error: WebhookError) -> Response[str]:
    source = (app.current_event.path_parameters or {}).get("source", "")
    return _response(rejection(error, source=source))


app.exception_handler(WebhookError)(rejected)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
