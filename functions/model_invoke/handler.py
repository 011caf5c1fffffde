"""model-invoke: score a batch of invoices with the anomaly model's SageMaker endpoint.

Event (from Step Functions)::

    {"items": [{"business_key": "erp:INV-1001", "invoice": {<the model's feature fields>}}, ...]}

Result: ``{"scores": [{business_key, score, endpoint, variant, model_version}, ...],
"invocations": n}``; each score carries the endpoint, the production variant that answered
and the model version, for lineage. Failures raise ``Model.Unavailable`` (retry),
``Validation.Failed`` (do not) or ``Connector.CircuitOpen``; the state machine decides.

Thin: Powertools decorators, one parse, one call into ``aios.scoring``. Lambda loads this file
as the top-level ``handler`` module, so it imports only ``aios`` and libraries.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter

from aios.connectors import parse_request
from aios.lineage import record_step, split_context
from aios.observability import logger, metrics, tracer
from aios.scoring import ModelEndpoint, ScoringRequest, default_endpoint, lineage_fields, score_invoices

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

REQUEST: TypeAdapter[ScoringRequest] = TypeAdapter(ScoringRequest)


@cache
def endpoint() -> ModelEndpoint:
    """Created once per execution environment (client, breaker, settings)."""
    return default_endpoint()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    payload, lineage = split_context(event)
    request = parse_request(REQUEST, payload)
    result: dict[str, Any] = score_invoices(request, endpoint()).model_dump(mode="json")
    record_step(lineage, payload, lineage_fields(result))
    return result
