"""aios.scoring: chunking, error mapping, breaker bookkeeping and lineage (fake client, no sockets)."""

from __future__ import annotations

import importlib.util
import io
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from pydantic import TypeAdapter

from aios.connectors import parse_request
from aios.connectors.breaker import Permit, State
from aios.errors import ConnectorCircuitOpen, ModelUnavailable, ValidationFailed
from aios.scoring import (
    MAX_REQUEST_BYTES,
    MAX_ROWS_PER_REQUEST,
    InvoiceFeatures,
    ModelEndpoint,
    ScoringRequest,
    chunk_rows,
    encode_rows,
    map_client_error,
    score_invoices,
)

SERVING = Path(__file__).resolve().parents[2] / "models" / "invoice-anomaly" / "serving.py"
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


@pytest.fixture(autouse=True)
def _no_sockets(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(*_args: Any, **_kwargs: Any) -> socket.socket:
        raise RuntimeError("unit tests must not open sockets")

    monkeypatch.setattr(socket, "socket", refuse)
    yield


class FakeRuntime:
    """Answers ``invoke_endpoint`` like SageMaker: one score per row, or a queued error."""

    def __init__(self, *, version: str = "abc123def456", variant: str = "AllTraffic") -> None:
        self.version = version
        self.variant = variant
        self.calls: list[dict[str, Any]] = []
        self.errors: list[Exception] = []

    def invoke_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.errors:
            raise self.errors.pop(0)
        rows = json.loads(kwargs["Body"])
        body = json.dumps({"model_version": self.version, "scores": [0.5] * len(rows)}).encode()
        return {
            "Body": io.BytesIO(body),
            "ContentType": "application/json",
            "InvokedProductionVariant": self.variant,
        }


class FakeBreaker:
    def __init__(self, *, open_: bool = False) -> None:
        self.open = open_
        self.successes = 0
        self.failures = 0

    def before_call(self, connector: str, target: str) -> Permit:
        if self.open:
            raise ConnectorCircuitOpen("open", connector=connector, target=target)
        return Permit(f"{connector}#{target}", State.CLOSED, 0, probe=False)

    def record_success(self, permit: Permit) -> None:
        self.successes += 1

    def record_failure(self, permit: Permit) -> None:
        self.failures += 1


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


def _load_serving() -> Any:
    spec = importlib.util.spec_from_file_location("invoice_anomaly_serving_for_scoring", SERVING)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_limits_match_the_model_serving_contract() -> None:
    serving = _load_serving()
    assert serving.MAX_REQUEST_BYTES == MAX_REQUEST_BYTES
    assert serving.MAX_ROWS_PER_REQUEST == MAX_ROWS_PER_REQUEST


def test_identifiers_do_not_leave_the_function() -> None:
    (row,) = encode_rows([InvoiceFeatures.model_validate(INVOICE)])
    sent = json.loads(row)
    assert "bank_account" not in sent and "invoice_id" not in sent
    assert sent["amount"] == 2164.47 and sent["bank_account_changed"] is False


@pytest.mark.parametrize(
    ("sizes", "max_bytes", "max_rows", "expected"),
    [
        ([10, 10, 10], 100, 10, [[0, 1, 2]]),  # everything fits: one body
        ([10, 10, 10], 100, 2, [[0, 1], [2]]),  # the row limit splits
        ([40, 40, 40], 100, 10, [[0, 1], [2]]),  # 2 + 40 + 1 + 40 = 83; a third would be 124
        ([49, 48], 100, 10, [[0, 1]]),  # exactly 100 bytes: 2 + 49 + 1 + 48
        ([49, 49], 100, 10, [[0], [1]]),  # 101 bytes: split
    ],
)
def test_chunks_fill_greedily_up_to_both_limits(
    sizes: list[int], max_bytes: int, max_rows: int, expected: list[list[int]]
) -> None:
    rows = [b"x" * size for size in sizes]
    chunks = list(chunk_rows(rows, max_bytes=max_bytes, max_rows=max_rows))
    assert [list(indices) for indices, _ in chunks] == expected
    for indices, body in chunks:
        assert len(body) <= max_bytes
        assert body == b"[" + b",".join(rows[i] for i in indices) + b"]"


def test_a_row_over_the_request_limit_is_a_validation_failure() -> None:
    with pytest.raises(ValidationFailed):
        list(chunk_rows([b"x" * 99], max_bytes=100))


def test_a_big_batch_takes_few_calls_and_keeps_order_and_lineage() -> None:
    # Given 25 invoices and room for 10 per request
    runtime = FakeRuntime(variant="blue")
    breaker = FakeBreaker()
    # When they are scored
    result = score_invoices(_request(25), _endpoint(runtime, breaker, max_rows=10))
    # Then three calls carry them, in order, each score with its lineage
    assert result.invocations == 3 == len(runtime.calls)
    assert [len(json.loads(call["Body"])) for call in runtime.calls] == [10, 10, 5]
    assert [s.business_key for s in result.scores] == [f"erp:INV-{i}" for i in range(25)]
    assert {(s.endpoint, s.variant, s.model_version) for s in result.scores} == {
        (ENDPOINT, "blue", "abc123def456")
    }
    assert runtime.calls[0]["ContentType"] == "application/json"
    assert breaker.successes == 3 and breaker.failures == 0


def test_the_byte_limit_splits_a_batch() -> None:
    runtime = FakeRuntime()
    row_size = len(encode_rows([InvoiceFeatures.model_validate(INVOICE)])[0])
    result = score_invoices(_request(10), _endpoint(runtime, max_request_bytes=2 + 4 * (row_size + 1)))
    assert result.invocations == 3
    assert all(len(call["Body"]) <= 2 + 4 * (row_size + 1) for call in runtime.calls)


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
    runtime.errors = [_client_error("ModelError", 424, OriginalStatusCode=400)]
    breaker = FakeBreaker()
    with pytest.raises(ValidationFailed):
        score_invoices(_request(1), _endpoint(runtime, breaker))
    assert breaker.failures == 0 and breaker.successes == 1


def test_an_open_circuit_fails_fast_without_calling_the_endpoint() -> None:
    runtime = FakeRuntime()
    with pytest.raises(ConnectorCircuitOpen):
        score_invoices(_request(1), _endpoint(runtime, FakeBreaker(open_=True)))
    assert runtime.calls == []


def test_an_answer_that_breaks_the_contract_is_model_unavailable() -> None:
    class Short(FakeRuntime):
        def invoke_endpoint(self, **kwargs: Any) -> dict[str, Any]:
            return {"Body": io.BytesIO(b'{"model_version": "v", "scores": [0.1]}')}

    with pytest.raises(ModelUnavailable):
        score_invoices(_request(2), _endpoint(Short()))


def test_a_different_model_version_is_reported_not_hidden() -> None:
    # During a blue/green rollout the canary answers with the new version.
    runtime = FakeRuntime(version="new000000000")
    result = score_invoices(_request(1), _endpoint(runtime, expected_version="old000000000"))
    assert result.scores[0].model_version == "new000000000"


def test_invalid_invoices_are_rejected_at_the_edge() -> None:
    bad = {**INVOICE, "amount": -1}
    with pytest.raises(ValidationFailed) as raised:
        parse_request(TypeAdapter(ScoringRequest), {"items": [{"business_key": "erp:1", "invoice": bad}]})
    assert "-1" not in str(raised.value)
    with pytest.raises(ValidationFailed):
        parse_request(TypeAdapter(ScoringRequest), {"items": []})
