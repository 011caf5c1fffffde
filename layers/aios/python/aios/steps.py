"""The one Lambda entry point shape every workflow step shares: decorators, parse, handle, lineage."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, TypeAdapter

from aios.connectors.kit import parse_request, register_lambda_context
from aios.lineage import record_step, split_context
from aios.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

RequestT = TypeVar("RequestT")
LambdaHandler = Callable[[dict[str, Any], "LambdaContext"], dict[str, Any]]


class Operations(Generic[RequestT]):
    """A step function's request union, the logic that serves it, and (optionally) what of
    its result lineage keeps beyond the result itself (e.g. the model that answered)."""

    def __init__(
        self,
        request: TypeAdapter[RequestT],
        handle: Callable[[RequestT], BaseModel],
        *,
        lineage_view: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self.request = request
        self.handle = handle
        self.lineage_view = lineage_view


def step_handler(operations: Operations[RequestT]) -> LambdaHandler:
    """The Lambda handler of a workflow step (a connector, a policy).

    The request is validated (``Validation.Failed`` names bad fields, never values) and
    served; its lineage is recorded when the workflow passed a ``lineage`` context; the
    result is returned as JSON.
    """

    @logger.inject_lambda_context(log_event=False)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        register_lambda_context(context)
        payload, lineage = split_context(event)
        request = parse_request(operations.request, payload)
        result: dict[str, Any] = operations.handle(request).model_dump(mode="json")
        record_step(lineage, payload, operations.lineage_view(result) if operations.lineage_view else result)
        return result

    decorated: LambdaHandler = handler  # Powertools' decorators are typed as returning Any
    return decorated
