"""Invoice anomaly scoring through the model's SageMaker endpoint (Triton, KServe v2).

``score_invoices`` (logic) takes a ``ScoringRequest`` and returns a ``ScoringResult``: one
``InvoiceScore`` per invoice with its business key, the score, and the lineage of the answer
(endpoint, production variant that answered, model version Triton reported).

The features are computed here, with the code training uses (``aios.anomaly_features``), and
sent as one float32 tensor ``features`` of shape ``(n, 15)``:

- ``binary`` (default): Triton's binary tensor extension of the KServe v2 protocol, as the
  SageMaker Triton container takes it: ``Content-Type: application/vnd.sagemaker-triton.
  binary+json;json-header-size=N``, a JSON header of N bytes, then the tensor's raw
  little-endian bytes (60 bytes per invoice); the score comes back binary the same way.
- ``json``: KServe v2 JSON tensors (``{"inputs": [{"name", "shape", "datatype", "data"}]}``)
  for simple callers and debugging.

``ModelEndpoint`` (adapter) owns the ``sagemaker-runtime`` client: it splits the invoices into
requests of at most ``MAX_ROWS_PER_REQUEST`` rows (Triton's ``max_batch_size``), calls each
through the circuit breaker (connector ``model``, target = the endpoint name) and maps
failures to the error vocabulary in one place:

- ``Model.Unavailable``: 5xx, throttling, timeouts and transport errors, a model container
  that failed with a 5xx (``ModelError`` whose ``OriginalStatusCode`` is 5xx), an answer that
  breaks the response contract. These count as breaker failures.
- ``Validation.Failed``: 4xx client errors, including a ``ModelError`` whose container
  rejected the request with a 4xx (Triton's message, which names the tensor, is kept).
- ``Connector.CircuitOpen``: the breaker is open; the endpoint was not called.

No numpy, torch or SageMaker SDK here: Lambda loads only boto3, pydantic and Powertools.
Protocol references: https://github.com/kserve/kserve/blob/master/docs/predict-api/v2/required_api.md
and https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_binary_data.md;
SageMaker's content type: https://docs.aws.amazon.com/sagemaker/latest/dg/triton.html.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field

from aios import clients
from aios.anomaly_features import N_FEATURES, feature_row, float32_bytes
from aios.config import settings
from aios.errors import AiosError, ModelUnavailable, ValidationFailed
from aios.invoices import BusinessKey
from aios.observability import logger, metrics

if TYPE_CHECKING:
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

    from aios.connectors.breaker import Breaker

#: SageMaker real-time endpoints accept request payloads up to 6 MB.
MAX_REQUEST_BYTES: Final[int] = 6 * 1024 * 1024
#: Rows per request: the model's ``max_batch_size`` in config.pbtxt
#: (``models/invoice_anomaly/serving.py`` MAX_BATCH_SIZE; a unit test keeps both equal).
MAX_ROWS_PER_REQUEST: Final[int] = 4096
INPUT_NAME: Final[str] = "features"
OUTPUT_NAME: Final[str] = "score"
JSON: Final[str] = "application/json"
BINARY_JSON: Final[str] = "application/vnd.sagemaker-triton.binary+json"
_HEADER_SIZE: Final[str] = "json-header-size"
Encoding = Literal["binary", "json"]
#: The breaker's connector name; the target is the endpoint name.
CONNECTOR: Final[str] = "model"
#: An invocation may run 60 s in the container; the read timeout leaves room for the transfer
#: (``aios.clients`` grants it as far as the function's timeout allows two attempts).
_READ_TIMEOUT_SECONDS: Final[float] = 70.0
_MAX_ATTEMPTS: Final[int] = 2
_THROTTLING_CODES: Final[frozenset[str]] = frozenset(
    {"ThrottlingException", "ServiceUnavailable", "InternalFailure", "InternalDependencyException"}
)
_MODEL_NOT_READY: Final[str] = "ModelNotReadyException"
_MAX_MESSAGE: Final[int] = 300


# -- models ------------------------------------------------------------------------------


class InvoiceFeatures(BaseModel):
    """The fields the anomaly model scores (``aios.anomaly_features`` turns them into the model input).

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


# -- tensors ----------------------------------------------------------------------------


def feature_matrix(invoices: Sequence[InvoiceFeatures]) -> list[list[float]]:
    """The model's input rows, computed with the shared feature code."""
    return [feature_row(invoice.model_dump()) for invoice in invoices]


def chunks(count: int, *, max_rows: int = MAX_ROWS_PER_REQUEST) -> Iterator[range]:
    """Row ranges of at most ``max_rows`` (the model's ``max_batch_size``), in order."""
    for start in range(0, count, max_rows):
        yield range(start, min(start + max_rows, count))


def encode_request(rows: Sequence[Sequence[float]], encoding: Encoding) -> tuple[bytes, str]:
    """One KServe v2 inference request for the rows: (body, content type)."""
    shape = [len(rows), N_FEATURES]
    if encoding == "json":
        document = {
            "inputs": [
                {
                    "name": INPUT_NAME,
                    "shape": shape,
                    "datatype": "FP32",
                    "data": [value for row in rows for value in row],
                }
            ],
            "outputs": [{"name": OUTPUT_NAME, "parameters": {"binary_data": False}}],
        }
        return json.dumps(document, separators=(",", ":")).encode(), JSON
    tensor = float32_bytes(rows)
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": INPUT_NAME,
                    "shape": shape,
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(tensor)},
                }
            ],
            "outputs": [{"name": OUTPUT_NAME, "parameters": {"binary_data": True}}],
        },
        separators=(",", ":"),
    ).encode()
    return header + tensor, f"{BINARY_JSON};{_HEADER_SIZE}={len(header)}"


def decode_response(body: bytes, content_type: str, *, rows: int, endpoint: str) -> tuple[list[float], str]:
    """Scores and the 12-hex model version of a KServe v2 response (JSON or binary)."""

    def broken(why: str) -> ModelUnavailable:
        return ModelUnavailable(f"{endpoint}: answer breaks the response contract ({why})")

    media, _, parameter = content_type.partition(";")
    header_size = len(body)
    if media.strip().lower() == BINARY_JSON:
        key, _, value = parameter.strip().partition("=")
        if key != _HEADER_SIZE or not value.isdigit() or int(value) > len(body):
            raise broken(f"content type {content_type!r}")
        header_size = int(value)
    try:
        document = json.loads(body[:header_size])
        output = next(item for item in document["outputs"] if item["name"] == OUTPUT_NAME)
        if output.get("datatype") != "FP32" or output.get("shape") not in ([rows, 1], [rows]):
            raise broken(f"output {output.get('datatype')} {output.get('shape')} for {rows} invoices")
        size = (output.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            if size != 4 * rows or header_size + size > len(body):
                raise broken(f"binary_data_size {size} for {rows} invoices")
            scores = list(struct.unpack_from(f"<{rows}f", body, header_size))
        else:
            scores = [float(score) for score in output["data"]]
        version = format(int(document["model_version"]), "012x")
    except (ValueError, TypeError, KeyError, StopIteration, struct.error) as error:
        raise broken(repr(error)) from None
    if len(scores) != rows:
        raise broken(f"{len(scores)} scores for {rows} invoices")
    return scores, version


# -- adapter -----------------------------------------------------------------------------


def map_client_error(error: ClientError, *, endpoint: str) -> AiosError:
    """The one place where SageMaker runtime errors become the platform's error names."""
    response: Any = error.response
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code == "ModelError":
        # The container answered; SageMaker reports its status as OriginalStatusCode.
        original = int(response.get("OriginalStatusCode", 0) or 0)
        if 400 <= original < 500 and original != 429:
            # Triton's message names the tensor and what it expected; it holds no invoice data.
            message = str(response.get("OriginalMessage") or "")[:_MAX_MESSAGE]
            return ValidationFailed(f"{endpoint}: the model rejected the request ({original}): {message}")
        return ModelUnavailable(f"{endpoint}: the model failed ({original or 'no status'})")
    if code in _THROTTLING_CODES or code == _MODEL_NOT_READY or status >= 500 or status == 429:
        return ModelUnavailable(f"{endpoint}: {code or 'error'} ({status})")
    return ValidationFailed(f"{endpoint}: request rejected: {code or 'error'} ({status})")


class ModelEndpoint:
    """The anomaly model's endpoint, called through the circuit breaker."""

    def __init__(
        self,
        *,
        endpoint_name: str,
        client: SageMakerRuntimeClient | None = None,
        breaker: Breaker | None = None,
        expected_version: str | None = None,
        encoding: Encoding = "binary",
        max_rows: int = MAX_ROWS_PER_REQUEST,
    ) -> None:
        self.endpoint_name = endpoint_name
        self.encoding: Encoding = encoding
        #: Rows per request; ``score_invoices`` splits larger batches.
        self.max_rows = max_rows
        self._client: SageMakerRuntimeClient = client or clients.sagemaker_runtime(
            max_attempts=_MAX_ATTEMPTS, read_timeout=_READ_TIMEOUT_SECONDS
        )
        self._breaker = breaker
        self.expected_version = expected_version

    def invoke(self, rows: Sequence[Sequence[float]]) -> EndpointAnswer:
        """One ``InvokeEndpoint`` call with the feature rows as one ``(n, 15)`` tensor."""
        body, content_type = encode_request(rows, self.encoding)
        return self.invoke_raw(body, content_type=content_type, rows=len(rows))

    def invoke_raw(self, body: bytes, *, content_type: str, rows: int) -> EndpointAnswer:
        """One ``InvokeEndpoint`` call with an encoded KServe v2 request."""
        if len(body) > MAX_REQUEST_BYTES:
            raise ValidationFailed(f"{rows} invoices make {len(body)} bytes: over the 6 MB limit")

        def invoke() -> EndpointAnswer:
            return self._invoke(body, content_type=content_type, rows=rows)

        return self._breaker.protect(CONNECTOR, self.endpoint_name, invoke) if self._breaker else invoke()

    def _invoke(self, body: bytes, *, content_type: str, rows: int) -> EndpointAnswer:
        try:
            response = self._client.invoke_endpoint(
                EndpointName=self.endpoint_name, Body=body, ContentType=content_type
            )
            payload = response["Body"].read()
        except ClientError as error:
            raise map_client_error(error, endpoint=self.endpoint_name) from None
        except BotoCoreError as error:  # timeouts, connection failures
            raise ModelUnavailable(
                f"{self.endpoint_name}: transport error ({type(error).__name__})"
            ) from None
        scores, version = decode_response(
            payload, str(response.get("ContentType") or JSON), rows=rows, endpoint=self.endpoint_name
        )
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
    rows = feature_matrix([item.invoice for item in request.items])
    scores: list[InvoiceScore] = []
    invocations = 0
    for indices in chunks(len(rows), max_rows=endpoint.max_rows):
        answer = endpoint.invoke(rows[indices.start : indices.stop])
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
