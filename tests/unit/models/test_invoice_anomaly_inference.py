"""The SageMaker serving contract: decoding, validation (4xx with a message), outputs."""

from __future__ import annotations

import io
import json
import shutil
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import pytest
from features import MAX_ROWS, N_FEATURES, featurize
from generate import generate

INVOICES = generate(64, seed=11).invoices


def run(
    inference: ModuleType, model: Any, body: Any, content_type: str, accept: str = "application/json"
) -> Any:
    data = inference.input_fn(body, content_type)
    return inference.output_fn(inference.predict_fn(data, model), accept)


def client_error(inference: ModuleType, body: Any, content_type: str) -> Any:
    with pytest.raises(inference.InferenceClientError) as info:
        inference.input_fn(body, content_type)
    assert 400 <= info.value.status_code < 500
    assert info.value.message
    return info.value


def test_single_object(inference: ModuleType, loaded_model: Any) -> None:
    out = json.loads(run(inference, loaded_model, json.dumps(INVOICES[0]), "application/json"))
    assert out["model_version"] == loaded_model.version
    assert len(out["scores"]) == 1
    assert 0.0 <= out["scores"][0] <= 1.0


def test_batch_matches_row_by_row(inference: ModuleType, loaded_model: Any) -> None:
    batch = json.loads(run(inference, loaded_model, json.dumps(INVOICES).encode(), "application/json"))
    singles = [
        json.loads(run(inference, loaded_model, json.dumps(inv), "application/json"))["scores"][0]
        for inv in INVOICES[:8]
    ]
    assert len(batch["scores"]) == len(INVOICES)
    assert batch["scores"][:8] == pytest.approx(singles, abs=1e-6)


def test_jsonlines_equals_json_array(inference: ModuleType, loaded_model: Any) -> None:
    body = "\n".join(json.dumps(inv) for inv in INVOICES) + "\n\n"
    lines = json.loads(run(inference, loaded_model, body.encode(), "application/jsonlines"))
    array = json.loads(run(inference, loaded_model, json.dumps(INVOICES), "application/json; charset=utf-8"))
    assert lines == array


def test_npy_in_npy_out(inference: ModuleType, loaded_model: Any) -> None:
    buf = io.BytesIO()
    np.save(buf, featurize(INVOICES))
    out = np.load(
        io.BytesIO(run(inference, loaded_model, buf.getvalue(), "application/x-npy", "application/x-npy"))
    )
    assert out.dtype == np.float32
    assert out.shape == (len(INVOICES),)
    expected = json.loads(run(inference, loaded_model, json.dumps(INVOICES), "application/json"))["scores"]
    assert out.tolist() == pytest.approx(expected, abs=1e-6)


def test_accept_list_and_default(inference: ModuleType, loaded_model: Any) -> None:
    prediction = inference.predict_fn(
        inference.input_fn(json.dumps(INVOICES[:2]), "application/json"), loaded_model
    )
    assert json.loads(inference.output_fn(prediction, None))["scores"]
    assert json.loads(inference.output_fn(prediction, "*/*"))["scores"]
    assert inference.output_fn(prediction, "text/html, application/x-npy").startswith(b"\x93NUMPY")
    with pytest.raises(inference.InferenceClientError) as info:
        inference.output_fn(prediction, "text/csv")
    assert info.value.status_code == 406


@pytest.mark.parametrize(
    ("body", "content_type", "status", "fragment"),
    [
        (b"", "application/json", 400, "empty"),
        (b"[]", "application/json", 400, "no invoices"),
        (b"\n\n", "application/jsonlines", 400, "empty"),
        (b'{"amount": ', "application/json", 400, "malformed JSON"),
        (b"\xff\xfe", "application/json", 400, "malformed JSON"),
        (b"[1, 2]", "application/json", 400, "expected a JSON object"),
        (b'"text"', "application/json", 400, "expected a JSON object"),
        (b'{"a": 1}\n{"a": ', "application/jsonlines", 400, "line 2"),
        (b'{"a": 1}, {"a": 2}', "application/jsonlines", 400, "exactly one"),
        (b"a,b", "text/csv", 415, "not supported"),
        (b"{}", None, 415, "not supported"),
        (b"not npy", "application/x-npy", 400, "malformed .npy"),
    ],
)
def test_rejects_bad_bodies(
    inference: ModuleType, body: bytes, content_type: str | None, status: int, fragment: str
) -> None:
    error = client_error(inference, body, content_type)  # type: ignore[arg-type]
    assert error.status_code == status
    assert fragment in error.message


def _invoice(**changes: Any) -> dict[str, Any]:
    inv = dict(INVOICES[0])
    for key, value in changes.items():
        if value is KeyError:
            del inv[key]
        else:
            inv[key] = value
    return inv


@pytest.mark.parametrize(
    ("invoice", "fragment"),
    [
        (_invoice(amount=KeyError), "missing required field 'amount'"),
        (_invoice(vendor_tax_rate=KeyError), "missing required field 'vendor_tax_rate'"),
        (_invoice(amount="12.50"), "'amount' has type string"),
        (_invoice(amount=True), "'amount' has type boolean"),
        (_invoice(amount=-5.0), "'amount' must be greater than 0"),
        (_invoice(tax_amount=1e12), "'tax_amount' must be between 0 and amount"),
        (_invoice(bank_account_changed=1), "'bank_account_changed' has type number"),
        (_invoice(invoice_date="31/12/2024"), "'invoice_date' must be an ISO 8601 date"),
        (_invoice(currency=None), "'currency' has type null"),
        (_invoice(similar_invoice_number_similarity=1.5), "similar_invoice_number_similarity"),
        (_invoice(days_since_last_invoice="soon"), "'days_since_last_invoice' has type string"),
    ],
)
def test_rejects_bad_fields_naming_row_and_field(
    inference: ModuleType, invoice: dict[str, Any], fragment: str
) -> None:
    body = json.dumps([INVOICES[1], invoice])
    error = client_error(inference, body, "application/json")
    assert error.status_code == 400
    assert fragment in error.message
    assert error.message.startswith("invoice 1:")


def test_rejects_non_object_rows(inference: ModuleType) -> None:
    assert (
        "expected a JSON object"
        in client_error(inference, json.dumps([INVOICES[0], 5]), "application/json").message
    )


def test_rejects_non_finite_json(inference: ModuleType) -> None:
    body = json.dumps(INVOICES[0]).replace('"amount": ', '"amount": NaN, "x": ', 1)
    assert "non-finite" in client_error(inference, body, "application/json").message


def test_nullable_context_may_be_null_or_absent(inference: ModuleType, loaded_model: Any) -> None:
    rows = [
        _invoice(days_since_last_invoice=None, days_since_similar_invoice=None),
        _invoice(days_since_last_invoice=KeyError, similar_invoice_number_similarity=KeyError),
    ]
    out = json.loads(run(inference, loaded_model, json.dumps(rows), "application/json"))
    assert len(out["scores"]) == 2


def test_too_many_rows_and_too_many_bytes(inference: ModuleType) -> None:
    body = json.dumps([INVOICES[0]] * (MAX_ROWS + 1))
    assert "maximum" in client_error(inference, body, "application/json").message
    huge = b" " * (6 * 1024 * 1024 + 1)
    assert client_error(inference, huge, "application/json").status_code == 413


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("array", "fragment"),
    [
        (np.zeros((4, N_FEATURES + 1), dtype=np.float32), "expected shape"),
        (np.zeros((N_FEATURES,), dtype=np.float32), "expected shape"),
        (np.zeros((4, N_FEATURES), dtype=np.float64), "expected dtype float32"),
        (np.zeros((4, N_FEATURES), dtype=np.int32), "expected dtype float32"),
        (np.zeros((0, N_FEATURES), dtype=np.float32), "no rows"),
        (np.full((3, N_FEATURES), np.inf, dtype=np.float32), "non-finite"),
        (np.zeros((MAX_ROWS + 1, N_FEATURES), dtype=np.float32), "maximum"),
    ],
)
def test_rejects_bad_npy(inference: ModuleType, array: np.ndarray, fragment: str) -> None:
    error = client_error(inference, _npy(array), "application/x-npy")
    assert error.status_code == 400
    assert fragment in error.message


def test_rejects_pickled_npy(inference: ModuleType) -> None:
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert client_error(inference, buf.getvalue(), "application/x-npy").status_code == 400


def test_error_mirrors_toolkit_attributes(inference: ModuleType) -> None:
    error = inference.InferenceClientError(415, "nope")
    assert (error.status_code, error.message, error.phrase) == (415, "nope", "nope")


def test_model_fn_accepts_context_and_falls_back_to_cpu(
    inference: ModuleType, trained_model_dir: Any
) -> None:
    context = SimpleNamespace(system_properties={"gpu_id": 3, "model_dir": str(trained_model_dir)})
    model = inference.model_fn(str(trained_model_dir), context)
    assert model.device.type == "cpu"  # no CUDA in unit tests; cuda:3 when present
    assert model.version == inference.model_fn(str(trained_model_dir)).version


def test_model_fn_refuses_tampered_weights(
    inference: ModuleType, trained_model_dir: Any, tmp_path: Any
) -> None:
    shutil.copytree(trained_model_dir, tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "metadata.json").read_text())
    meta["model_version"] = "000000000000"
    (tmp_path / "m" / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(RuntimeError, match="does not match"):
        inference.model_fn(str(tmp_path / "m"))
