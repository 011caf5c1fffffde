"""aios.scoring: KServe v2 tensors (binary and JSON), chunking, error mapping, breaker
bookkeeping and lineage (fake client, no sockets)."""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from pydantic import TypeAdapter

from aios.anomaly_features import FEATURE_NAMES, N_FEATURES, feature_row
from aios.connectors import parse_request
from aios.connectors.breaker import classify
from aios.errors import ConnectorCircuitOpen, ModelUnavailable, ValidationFailed
from aios.scoring import (
    BINARY_JSON,
    MAX_REQUEST_BYTES,
    MAX_ROWS_PER_REQUEST,
    InvoiceFeatures,
    ModelEndpoint,
    ScoringRequest,
    decode_response,
    encode_request,
    feature_matrix,
    map_client_error,
    score_invoices,
)
from models.invoice_anomaly import serving

ENDPOINT = "aios-test-invoice-anomaly"
INVOICE: dict[str, Any] = {
    "invoice_id": "INV-1",
    "bank_account": "GB150788305446036730",
    "amount": 2164.47,
    "tax_amount": 360.74,
    "currency": "GBP",
    "invoice_date": "2023-03-02",
    "vendor_currency": "GBP",
    "vendor_tax_rate": 0.2,
    "vendor_mean_log_amount": 7.42,
    "vendor_std_log_amount": 0.22,
    "vendor_invoice_count": 322,
    "bank_account_changed": False,
    "days_since_last_invoice": 3.4,
    "days_since_similar_invoice": None,
    "similar_invoice_number_similarity": None,
}


def _output(**fields: Any) -> dict[str, Any]:
    return {"name": "score", "datatype": "FP32", "shape": [1, 1], **fields}


def _parse_request(body: bytes, content_type: str) -> tuple[list[list[float]], bool]:
    """The features tensor of a KServe v2 request, decoded independently of aios.scoring."""
    if content_type.startswith(BINARY_JSON + ";json-header-size="):
        size = int(content_type.rsplit("=", 1)[1])
        header = json.loads(body[:size])
        (item,) = header["inputs"]
        n, width = item["shape"]
        assert item["parameters"]["binary_data_size"] == 4 * n * width == len(body) - size
        flat = struct.unpack(f"<{n * width}f", body[size:])
        binary = True
    else:
        assert content_type == "application/json"
        header = json.loads(body)
        (item,) = header["inputs"]
        n, width = item["shape"]
        flat = tuple(item["data"])
        binary = False
    assert item["name"] == "features" and item["datatype"] == "FP32" and width == N_FEATURES
    return [list(flat[i * width : (i + 1) * width]) for i in range(n)], binary


class FakeRuntime:
    """Answers ``invoke_endpoint`` like SageMaker's Triton: one score per row (the first
    feature, so tests see which row each score belongs to), or a queued error."""

    def __init__(self, *, version: str = "abc123def456", variant: str = "AllTraffic") -> None:
        self.version = version
        self.variant = variant
        self.calls: list[dict[str, Any]] = []
        self.rows: list[list[list[float]]] = []
        self.errors: list[Exception] = []

    def invoke_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.errors:
            raise self.errors.pop(0)
        rows, binary = _parse_request(kwargs["Body"], kwargs["ContentType"])
        self.rows.append(rows)
        scores = [min(max(row[0] / 100, 0.0), 1.0) for row in rows]
        output: dict[str, Any] = {"name": "score", "datatype": "FP32", "shape": [len(rows), 1]}
        if binary:
            blob = struct.pack(f"<{len(rows)}f", *scores)
            output["parameters"] = {"binary_data_size": len(blob)}
        else:
            output["data"] = scores
        header = json.dumps(
            {
                "model_name": "invoice-anomaly",
                "model_version": str(int(self.version, 16)),
                "outputs": [output],
            }
        ).encode()
        body, content_type = (
            (header + blob, f"{BINARY_JSON};json-header-size={len(header)}")
            if binary
            else (header, "application/json")
        )
        return {
            "Body": io.BytesIO(body),
            "ContentType": content_type,
            "InvokedProductionVariant": self.variant,
        }


T = TypeVar("T")


class FakeBreaker:
    def __init__(self, *, open_: bool = False) -> None:
        self.open = open_
        self.successes = 0
        self.failures = 0

    def protect(self, connector: str, target: str, action: Callable[[], T]) -> T:
        """Counts outcomes as the real breaker classifies them (``breaker.classify``)."""
        if self.open:
            raise ConnectorCircuitOpen("open", connector=connector, target=target)
        try:
            value = action()
        except Exception as error:
            outcome = classify(error)
            self.failures += outcome == "failure"
            self.successes += outcome == "answered"  # the endpoint answered: it is up
            raise
        self.successes += 1
        return value


def _client_error(code: str, status: int, **extra: Any) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}
    response.update(extra)
    return ClientError(response, "InvokeEndpoint")


def _request(n: int) -> ScoringRequest:
    return ScoringRequest.model_validate(
        {"items": [{"business_key": f"erp:INV-{i}", "invoice": INVOICE} for i in range(n)]}
    )


def _endpoint(runtime: FakeRuntime, breaker: FakeBreaker | None = None, **kwargs: Any) -> ModelEndpoint:
    return ModelEndpoint(endpoint_name=ENDPOINT, client=runtime, breaker=breaker, **kwargs)  # type: ignore[arg-type]


def test_limits_match_the_model_serving_contract() -> None:
    assert serving.MAX_REQUEST_BYTES == MAX_REQUEST_BYTES
    assert serving.MAX_BATCH_SIZE == MAX_ROWS_PER_REQUEST
    assert (serving.INPUT_NAME, serving.OUTPUT_NAME) == ("features", "score")


def test_only_features_leave_the_function() -> None:
    # The request carries the feature tensor: no identifier, no field name, no amount as typed.
    body, content_type = encode_request(feature_matrix([InvoiceFeatures.model_validate(INVOICE)]), "binary")
    assert b"GB15" not in body and b"INV-1" not in body and b"2164.47" not in body
    (row,), binary = _parse_request(body, content_type)
    assert binary and len(row) == len(FEATURE_NAMES)


@pytest.mark.parametrize("encoding", ["binary", "json"])
def test_both_encodings_carry_the_shared_features(encoding: Any) -> None:
    # Given the features of two invoices, computed with the code training uses
    invoices = [
        InvoiceFeatures.model_validate(INVOICE),
        InvoiceFeatures.model_validate({**INVOICE, "amount": 9e3}),
    ]
    rows = feature_matrix(invoices)
    assert rows[0] == feature_row(INVOICE)
    # When they are encoded, then the decoded tensor is those rows (float32 on the binary path)
    body, content_type = encode_request(rows, encoding)
    decoded, _ = _parse_request(body, content_type)
    assert [v for row in decoded for v in row] == pytest.approx([v for row in rows for v in row], rel=1e-6)
    if encoding == "binary":
        assert len(body) - int(content_type.rsplit("=", 1)[1]) == 4 * 2 * N_FEATURES


def test_binary_requests_are_much_smaller_than_json() -> None:
    rows = feature_matrix([InvoiceFeatures.model_validate(INVOICE)] * 100)
    binary, _ = encode_request(rows, "binary")
    text, _ = encode_request(rows, "json")
    assert len(binary) < len(text) / 2


def test_a_big_batch_takes_few_calls_and_keeps_order_and_lineage() -> None:
    # Given 25 invoices and room for 10 per request
    runtime = FakeRuntime(variant="blue")
    breaker = FakeBreaker()
    request = ScoringRequest.model_validate(
        {
            "items": [
                {"business_key": f"erp:INV-{i}", "invoice": {**INVOICE, "amount": 100.0 + i}}
                for i in range(25)
            ]
        }
    )
    # When they are scored
    result = score_invoices(request, _endpoint(runtime, breaker, max_rows=10))
    # Then three calls carry them, in order, each score with its lineage
    assert result.invocations == 3 == len(runtime.calls)
    assert [len(rows) for rows in runtime.rows] == [10, 10, 5]
    assert [s.business_key for s in result.scores] == [f"erp:INV-{i}" for i in range(25)]
    expected = [feature_row({**INVOICE, "amount": 100.0 + i})[0] / 100 for i in range(25)]
    assert [s.score for s in result.scores] == pytest.approx(expected, rel=1e-6)
    assert {(s.endpoint, s.variant, s.model_version) for s in result.scores} == {
        (ENDPOINT, "blue", "abc123def456")
    }
    assert runtime.calls[0]["ContentType"].startswith(BINARY_JSON + ";json-header-size=")
    assert breaker.successes == 3 and breaker.failures == 0


def test_the_json_path_scores_the_same() -> None:
    binary = score_invoices(_request(3), _endpoint(FakeRuntime()))
    text = score_invoices(_request(3), _endpoint(FakeRuntime(), encoding="json"))
    assert [s.score for s in text.scores] == pytest.approx([s.score for s in binary.scores], rel=1e-6)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"not json", "application/json"),
        (b'{"model_version": "1", "outputs": []}', "application/json"),
        (
            b'{"model_version":"1","outputs":[{"name":"score","datatype":"FP64","shape":[1,1],"data":[0.5]}]}',
            "application/json",
        ),
        (
            b'{"model_version":"1","outputs":[{"name":"score","datatype":"FP32","shape":[1,1],"data":[0.5]}]}',
            BINARY_JSON,
        ),
        (
            b'{"model_version":"1","outputs":[{"name":"score","datatype":"FP32","shape":[1,1],"parameters":{"binary_data_size":4}}]}',
            BINARY_JSON + ";json-header-size=200",
        ),
    ],
)
def test_answers_that_break_the_contract(body: bytes, content_type: str) -> None:
    with pytest.raises(ModelUnavailable):
        decode_response(body, content_type, rows=1, endpoint=ENDPOINT)


def test_the_triton_version_directory_is_the_hex_model_version() -> None:
    body = json.dumps({"model_version": "265511624031639", "outputs": [_output(data=[0.25])]}).encode()
    assert decode_response(body, "application/json", rows=1, endpoint=ENDPOINT) == ([0.25], "f17b3e08bd97")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (_client_error("ModelError", 424, OriginalStatusCode=500), ModelUnavailable),
        (_client_error("ModelError", 424, OriginalStatusCode=503), ModelUnavailable),
        (_client_error("ModelError", 424, OriginalStatusCode=429), ModelUnavailable),
        (_client_error("ModelError", 424, OriginalStatusCode=400), ValidationFailed),
        (_client_error("ModelError", 424, OriginalStatusCode=413), ValidationFailed),
        (_client_error("ServiceUnavailable", 503), ModelUnavailable),
        (_client_error("ThrottlingException", 400), ModelUnavailable),
        (_client_error("InternalFailure", 500), ModelUnavailable),
        (_client_error("ModelNotReadyException", 429), ModelUnavailable),
        (_client_error("ValidationError", 400), ValidationFailed),
        (_client_error("AccessDeniedException", 403), ValidationFailed),
    ],
)
def test_client_errors_map_to_the_vocabulary(error: ClientError, expected: type[Exception]) -> None:
    assert isinstance(map_client_error(error, endpoint=ENDPOINT), expected)


def test_transient_failures_count_against_the_breaker_and_raise_model_unavailable() -> None:
    runtime = FakeRuntime()
    runtime.errors = [_client_error("ModelError", 424, OriginalStatusCode=500)]
    breaker = FakeBreaker()
    with pytest.raises(ModelUnavailable) as raised:
        score_invoices(_request(2), _endpoint(runtime, breaker))
    assert type(raised.value).__name__ == "Model.Unavailable"
    assert breaker.failures == 1 and breaker.successes == 0


def test_timeouts_are_model_unavailable() -> None:
    runtime = FakeRuntime()
    runtime.errors = [ReadTimeoutError(endpoint_url="https://runtime.sagemaker")]
    with pytest.raises(ModelUnavailable):
        score_invoices(_request(1), _endpoint(runtime, FakeBreaker()))


def test_a_rejected_request_does_not_count_against_the_breaker() -> None:
    runtime = FakeRuntime()
    message = (
        "unexpected shape for input 'features' for model 'invoice-anomaly'. Expected [-1,15], got [1,14]"
    )
    runtime.errors = [_client_error("ModelError", 424, OriginalStatusCode=400, OriginalMessage=message)]
    breaker = FakeBreaker()
    with pytest.raises(ValidationFailed) as raised:
        score_invoices(_request(1), _endpoint(runtime, breaker))
    assert breaker.failures == 0 and breaker.successes == 1
    assert message in str(raised.value)  # Triton's message reaches the operator


def test_an_open_circuit_fails_fast_without_calling_the_endpoint() -> None:
    runtime = FakeRuntime()
    with pytest.raises(ConnectorCircuitOpen):
        score_invoices(_request(1), _endpoint(runtime, FakeBreaker(open_=True)))
    assert runtime.calls == []


def test_an_answer_that_breaks_the_contract_is_model_unavailable() -> None:
    class Short(FakeRuntime):
        def invoke_endpoint(self, **kwargs: Any) -> dict[str, Any]:
            one = json.dumps({"model_version": "1", "outputs": [_output(data=[0.1])]}).encode()
            return {"Body": io.BytesIO(one), "ContentType": "application/json"}

    with pytest.raises(ModelUnavailable):
        score_invoices(_request(2), _endpoint(Short()))


def test_a_different_model_version_is_reported_not_hidden() -> None:
    # During a blue/green rollout the canary answers with the new version.
    runtime = FakeRuntime(version="0000000000ff")
    result = score_invoices(_request(1), _endpoint(runtime, expected_version="000000000001"))
    assert result.scores[0].model_version == "0000000000ff"


def test_invalid_invoices_are_rejected_at_the_edge() -> None:
    bad = {**INVOICE, "amount": -1}
    with pytest.raises(ValidationFailed) as raised:
        parse_request(TypeAdapter(ScoringRequest), {"items": [{"business_key": "erp:1", "invoice": bad}]})
    assert "-1" not in str(raised.value)
    with pytest.raises(ValidationFailed):
        parse_request(TypeAdapter(ScoringRequest), {"items": []})
