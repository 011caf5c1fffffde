"""Invoice anomaly scoring through the model's SageMaker endpoint.

``score_invoices`` (logic) takes a ``ScoringRequest`` and returns a ``ScoringResult``: one
``InvoiceScore`` per invoice with its business key, the score, and the lineage of the answer
(endpoint, production variant that answered, model version from the response body).

``ModelEndpoint`` (adapter) owns the ``sagemaker-runtime`` client: it packs the invoices into
as few ``InvokeEndpoint`` calls as the endpoint's limits allow (6 MB per request,
``MAX_ROWS_PER_REQUEST`` rows), calls each through the circuit breaker (connector ``model``,
target = the endpoint name) and maps failures to the error vocabulary in one place:

- ``Model.Unavailable``: 5xx, throttling, timeouts and transport errors, a model container
  that failed with a 5xx (``ModelError`` whose ``OriginalStatusCode`` is 5xx), an answer that
  breaks the response contract. These count as breaker failures.
- ``Validation.Failed``: 4xx client errors, including a ``ModelError`` whose container
  rejected the request with a 4xx (the invoices broke the model's field contract).
- ``Connector.CircuitOpen``: the breaker is open; the endpoint was not called.

No torch and no SageMaker SDK here: Lambda loads only boto3, pydantic and Powertools.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Final, Protocol

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field

from aios.config import settings
from aios.errors import AiosError, ModelUnavailable, ValidationFailed
from aios.invoices import BusinessKey
from aios.observability import logger, metrics

if TYPE_CHECKING:
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

    from aios.connectors.breaker import Permit

#: SageMaker real-time endpoints accept request payloads up to 6 MB.
MAX_REQUEST_BYTES: Final[int] = 6 * 1024 * 1024
#: Rows per request the model's ``input_fn`` accepts (``models/invoice-anomaly/serving.py``;
#: a unit test keeps both equal).
MAX_ROWS_PER_REQUEST: Final[int] = 10_000
CONTENT_TYPE: Final[str] = "application/json"
#: The breaker's connector name; the target is the endpoint name.
CONNECTOR: Final[str] = "model"
#: An invocation may run 60 s in the container; the read timeout leaves room for the transfer.
_CLIENT_CONFIG: Final[Config] = Config(
    connect_timeout=3,
    read_timeout=70,
    retries={"mode": "standard", "total_max_attempts": 2},
)
_THROTTLING_CODES: Final[frozenset[str]] = frozenset(
    {"ThrottlingException", "ServiceUnavailable", "InternalFailure", "InternalDependencyException"}
)
_MODEL_NOT_READY: Final[str] = "ModelNotReadyException"


# -- models ------------------------------------------------------------------------------


class InvoiceFeatures(BaseModel):
    """The fields the anomaly model scores (``models/invoice-anomaly/code/features.py``).

    Identifiers and other fields the caller passes along are dropped (``extra="ignore"``):
    only these leave the function, so the endpoint's data capture never stores account
    numbers or names.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)

    amount: Annotated[float, Field(gt=0)]
    tax_amount: Annotated[float, Field(ge=0)]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    invoice_date: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}")]
    vendor_currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    vendor_tax_rate: Annotated[float, Field(ge=0, lt=1)]
    vendor_mean_log_amount: float
    vendor_std_log_amount: Annotated[float, Field(ge=0)]
    vendor_invoice_count: Annotated[float, Field(ge=0)]
    bank_account_changed: bool
    days_since_last_invoice: Annotated[float, Field(ge=0)] | None = None
    days_since_similar_invoice: Annotated[float, Field(ge=0)] | None = None
    similar_invoice_number_similarity: Annotated[float, Field(ge=0, le=1)] | None = None


class ScoringItem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    business_key: BusinessKey
    invoice: InvoiceFeatures


class ScoringRequest(BaseModel):
    """What the ``model-invoke`` function receives: invoices with their business keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    items: Annotated[list[ScoringItem], Field(min_length=1)]


class InvoiceScore(BaseModel):
    """One invoice's score and where it came from (for lineage)."""

    model_config = ConfigDict(frozen=True)

    business_key: str
    score: Annotated[float, Field(ge=0, le=1)]
    endpoint: str
    variant: str
    model_version: str


class ScoringResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    scores: list[InvoiceScore]
    #: ``InvokeEndpoint`` calls made (one per chunk).
    invocations: int


@dataclass(frozen=True, slots=True)
class EndpointAnswer:
    """One ``InvokeEndpoint`` answer, decoded."""

    scores: list[float]
    variant: str
    model_version: str


# -- chunking ----------------------------------------------------------------------------


def encode_rows(invoices: Sequence[InvoiceFeatures]) -> list[bytes]:
    """Each invoice as compact JSON, once: the chunker measures these bytes exactly."""
    return [
        json.dumps(invoice.model_dump(mode="json"), separators=(",", ":")).encode() for invoice in invoices
    ]


def chunk_rows(
    rows: Sequence[bytes],
    *,
    max_bytes: int = MAX_REQUEST_BYTES,
    max_rows: int = MAX_ROWS_PER_REQUEST,
) -> Iterator[tuple[range, bytes]]:
    """Greedy packing of encoded rows into JSON-array bodies of at most ``max_bytes`` bytes
    and ``max_rows`` rows, in order; yields the row indices of each body and the body.

    Greedy filling in order gives the fewest bodies for an ordered split. A single row too
    large for one request is a ``Validation.Failed``: no split can send it.
    """
    start = 0
    size = 2  # "[" and "]"
    for index, row in enumerate(rows):
        row_size = len(row)
        if row_size + 2 > max_bytes:
            raise ValidationFailed(f"invoice {index} is {row_size} bytes: over the {max_bytes}-byte limit")
        count = index - start
        grown = size + row_size + (1 if count else 0)
        if count and (grown > max_bytes or count >= max_rows):
            yield range(start, index), b"[" + b",".join(rows[start:index]) + b"]"
            start, grown = index, 2 + row_size
        size = grown
    if start < len(rows):
        yield range(start, len(rows)), b"[" + b",".join(rows[start:]) + b"]"


# -- adapter -----------------------------------------------------------------------------


class Breaker(Protocol):
    """What the adapter needs of ``aios.connectors.breaker.CircuitBreaker``."""

    def before_call(self, connector: str, target: str) -> Permit: ...

    def record_success(self, permit: Permit) -> None: ...

    def record_failure(self, permit: Permit) -> None: ...


def map_client_error(error: ClientError, *, endpoint: str) -> AiosError:
    """The one place where SageMaker runtime errors become the platform's error names."""
    response: Any = error.response
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code == "ModelError":
        # The container answered; SageMaker reports its status as OriginalStatusCode.
        original = int(response.get("OriginalStatusCode", 0) or 0)
        if 400 <= original < 500 and original != 429:
            return ValidationFailed(f"{endpoint}: the model rejected the request ({original})")
        return ModelUnavailable(f"{endpoint}: the model failed ({original or 'no status'})")
    if code in _THROTTLING_CODES or code == _MODEL_NOT_READY or status >= 500 or status == 429:
        return ModelUnavailable(f"{endpoint}: {code or 'error'} ({status})")
    return ValidationFailed(f"{endpoint}: request rejected: {code or 'error'} ({status})")


def _decode(body: bytes, *, rows: int, endpoint: str) -> tuple[list[float], str]:
    try:
        document = json.loads(body)
        scores = [float(score) for score in document["scores"]]
        version = str(document["model_version"])
    except (ValueError, TypeError, KeyError) as error:
        raise ModelUnavailable(f"{endpoint}: answer breaks the response contract ({error!r})") from None
    if len(scores) != rows:
        raise ModelUnavailable(f"{endpoint}: {len(scores)} scores for {rows} invoices")
    return scores, version


class ModelEndpoint:
    """The anomaly model's endpoint, called through the circuit breaker."""

    def __init__(
        self,
        *,
        endpoint_name: str,
        client: SageMakerRuntimeClient | None = None,
        breaker: Breaker | None = None,
        expected_version: str | None = None,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        max_rows: int = MAX_ROWS_PER_REQUEST,
    ) -> None:
        self.endpoint_name = endpoint_name
        #: The endpoint's limits per request; ``score_invoices`` packs invoices up to them.
        self.max_request_bytes = max_request_bytes
        self.max_rows = max_rows
        self._client: SageMakerRuntimeClient = client or boto3.client(
            "sagemaker-runtime", config=_CLIENT_CONFIG
        )
        self._breaker = breaker
        self.expected_version = expected_version

    def invoke(self, body: bytes, *, rows: int) -> EndpointAnswer:
        """One ``InvokeEndpoint`` call with a JSON array of ``rows`` invoices."""
        permit = self._breaker.before_call(CONNECTOR, self.endpoint_name) if self._breaker else None
        try:
            answer = self._invoke(body, rows=rows)
        except ModelUnavailable:
            if permit is not None and self._breaker is not None:
                self._breaker.record_failure(permit)
            raise
        except AiosError:
            if permit is not None and self._breaker is not None:
                self._breaker.record_success(permit)  # the endpoint answered: it is up
            raise
        if permit is not None and self._breaker is not None:
            self._breaker.record_success(permit)
        return answer

    def _invoke(self, body: bytes, *, rows: int) -> EndpointAnswer:
        try:
            response = self._client.invoke_endpoint(
                EndpointName=self.endpoint_name, Body=body, ContentType=CONTENT_TYPE, Accept=CONTENT_TYPE
            )
            payload = response["Body"].read()
        except ClientError as error:
            raise map_client_error(error, endpoint=self.endpoint_name) from None
        except BotoCoreError as error:  # timeouts, connection failures
            raise ModelUnavailable(
                f"{self.endpoint_name}: transport error ({type(error).__name__})"
            ) from None
        scores, version = _decode(payload, rows=rows, endpoint=self.endpoint_name)
        if self.expected_version and version != self.expected_version:
            # Expected during a blue/green rollout (the canary answers with the new version);
            # the score's lineage carries the version that really answered.
            logger.warning(
                "model version differs from the deployed one",
                extra={"expected": self.expected_version, "answered": version},
            )
            metrics.add_metric(name="ModelVersionMismatch", unit=MetricUnit.Count, value=1)
        return EndpointAnswer(
            scores=scores,
            variant=str(response.get("InvokedProductionVariant") or "AllTraffic"),
            model_version=version,
        )


# -- logic -------------------------------------------------------------------------------


def score_invoices(request: ScoringRequest, endpoint: ModelEndpoint) -> ScoringResult:
    """Score every invoice of ``request``, in order, in as few calls as the limits allow."""
    rows = encode_rows([item.invoice for item in request.items])
    scores: list[InvoiceScore] = []
    invocations = 0
    for indices, body in chunk_rows(rows, max_bytes=endpoint.max_request_bytes, max_rows=endpoint.max_rows):
        answer = endpoint.invoke(body, rows=len(indices))
        invocations += 1
        scores += [
            InvoiceScore(
                business_key=request.items[index].business_key,
                score=score,
                endpoint=endpoint.endpoint_name,
                variant=answer.variant,
                model_version=answer.model_version,
            )
            for index, score in zip(indices, answer.scores, strict=True)
        ]
    logger.info(
        "invoices scored",
        extra={"invoices": len(scores), "invocations": invocations, "endpoint": endpoint.endpoint_name},
    )
    return ScoringResult(scores=scores, invocations=invocations)


def default_endpoint() -> ModelEndpoint:
    """The endpoint this function was deployed with (``AIOS_MODEL_ENDPOINT``), behind the
    shared breaker (``AIOS_CIRCUIT_TABLE``), expecting ``AIOS_MODEL_VERSION`` when set."""
    from aios.connectors.breaker import CircuitBreaker  # noqa: PLC0415 - cold start only

    config = settings()
    return ModelEndpoint(
        endpoint_name=config.require("model_endpoint"),
        breaker=CircuitBreaker(),
        expected_version=config.model_version,
    )


def lineage_fields(result: Mapping[str, Any]) -> dict[str, Any]:
    """The scoring result plus the model that answered, in the fields lineage keeps."""
    scores: list[Mapping[str, Any]] = list(result.get("scores", []))

    def answered(field: str) -> str | None:
        return ",".join(sorted({str(score[field]) for score in scores})) or None

    return {
        **result,
        "model_endpoint": answered("endpoint"),
        "model_variant": answered("variant"),
        "model_version": answered("model_version"),
    }
