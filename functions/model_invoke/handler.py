"""model-invoke: score a batch of invoices with the anomaly model's SageMaker endpoint.

Event (from Step Functions)::

    {"items": [{"business_key": "erp:INV-1001", "invoice": {<the model's feature fields>}}, ...]}

Result: ``{"scores": [{business_key, score, endpoint, variant, model_version}, ...],
"invocations": n}``; each score carries the endpoint, the production variant that answered
and the model version, for lineage. Failures raise ``Model.Unavailable`` (retry),
``Validation.Failed`` (do not) or ``Connector.CircuitOpen``; the state machine decides.

Thin: the shared step handler (``aios.steps``: decorators, parse, lineage) over
``aios.scoring``. Lambda loads this file as the top-level ``handler`` module, so it imports
only ``aios`` and libraries.
"""

from __future__ import annotations

from functools import cache

from pydantic import TypeAdapter

from aios.scoring import (
    ModelEndpoint,
    ScoringRequest,
    ScoringResult,
    default_endpoint,
    lineage_fields,
    score_invoices,
)
from aios.steps import Operations, step_handler

REQUEST: TypeAdapter[ScoringRequest] = TypeAdapter(ScoringRequest)


@cache
def endpoint() -> ModelEndpoint:
    """Created once per execution environment (client, breaker, settings)."""
    return default_endpoint()


def score(request: ScoringRequest) -> ScoringResult:
    return score_invoices(request, endpoint())


handler = step_handler(Operations(REQUEST, score, lineage_view=lineage_fields))
