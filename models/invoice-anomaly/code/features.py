"""Invoice -> feature vector, shared by training and the serving container.

Field names follow the canonical ``aios.invoices.Invoice`` (gross ``amount``, vendor context
``vendor_mean_log_amount`` ...). Amounts must be JSON numbers: pydantic's JSON dump writes
``Decimal`` as a string, so the caller converts ``amount``/``tax_amount`` to float when it builds
the request.

This file ships in the SageMaker artifact (``code/``), so it depends on numpy and the standard
library only.

Invoice contract (one JSON object per invoice). Identifiers (``invoice_id``, ``vendor_id``,
``invoice_number``, ``bank_account``) may be present and are ignored by the model. The fields
below are required unless marked nullable; a nullable field may be ``null`` or absent.

==================================  ==========  ===============================================
field                               type        meaning
==================================  ==========  ===============================================
amount                              number > 0  gross amount incl. tax, invoice currency
tax_amount                          number >= 0 tax on the invoice, at most ``amount``
currency                            string      ISO 4217 code of the invoice
invoice_date                        string      ISO 8601 date (``YYYY-MM-DD``, time ignored)
vendor_currency                     string      the vendor master's currency (ERP context)
vendor_tax_rate                     0 <= x < 1  expected tax rate of the vendor's country
vendor_mean_log_amount              number      mean of ln(amount) over the vendor's history
vendor_std_log_amount               number >= 0 std of ln(amount) over the vendor's history
vendor_invoice_count                number >= 0 invoices in that history
bank_account_changed                boolean     bank account differs from the vendor master
days_since_last_invoice             number >= 0 nullable: days since the vendor's last invoice
days_since_similar_invoice          number >= 0 nullable: days since the nearest look-alike
                                                (same vendor, amount within 2%, last 365 days)
similar_invoice_number_similarity   0 <= x <= 1 nullable: normalised similarity of the two
                                                invoice numbers (1 = identical)
==================================  ==========  ===============================================

Features, in this fixed order (``FEATURE_NAMES``, ``N_FEATURES``), float32:

 0 log_amount              ln(amount)
 1 amount_z                (ln(amount) - vendor mean) / max(vendor std, 0.05), clipped to +-20
 2 abs_amount_z            |amount_z|
 3 tax_ratio_deviation     tax_amount / (amount - tax_amount) - vendor_tax_rate, clipped to +-1
 4 abs_tax_ratio_deviation |tax_ratio_deviation|
 5 bank_account_changed    0 / 1
 6 duplicate_recency       exp(-days_since_similar_invoice / 7); 0 without a look-alike
 7 duplicate_similarity    similar_invoice_number_similarity; 0 without a look-alike
 8 duplicate_score         duplicate_recency * duplicate_similarity
 9 weekend                 invoice dated Saturday or Sunday
10 round_100               amount is a whole multiple of 100
11 round_1000              amount is a whole multiple of 1000
12 currency_mismatch       currency != vendor_currency
13 log_vendor_history      ln(1 + vendor_invoice_count)
14 log_days_since_last     ln(1 + days_since_last_invoice); ln(366) for a first invoice

Decoding is built for batches: the rows are read column by column (one list comprehension per
field), types are checked with one ``set(map(type, column))`` per column instead of per-row
models, and all arithmetic is vectorised. Bad input raises ``InvalidInvoiceError`` whose
message names the field and the first offending row; the caller maps it to HTTP 400.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

FEATURE_NAMES: Final[tuple[str, ...]] = (
    "log_amount",
    "amount_z",
    "abs_amount_z",
    "tax_ratio_deviation",
    "abs_tax_ratio_deviation",
    "bank_account_changed",
    "duplicate_recency",
    "duplicate_similarity",
    "duplicate_score",
    "weekend",
    "round_100",
    "round_1000",
    "currency_mismatch",
    "log_vendor_history",
    "log_days_since_last",
)
N_FEATURES: Final[int] = len(FEATURE_NAMES)
# Rows per request; the serving layer (serving.py) mirrors this value for its callers.
MAX_ROWS: Final[int] = 10_000

_NUMBER: Final[frozenset[type]] = frozenset({int, float})
_NULLABLE_NUMBER: Final[frozenset[type]] = frozenset({int, float, type(None)})
_STRING: Final[frozenset[type]] = frozenset({str})
_BOOL: Final[frozenset[type]] = frozenset({bool})

REQUIRED_FIELDS: Final[tuple[str, ...]] = (
    "amount",
    "tax_amount",
    "currency",
    "invoice_date",
    "vendor_currency",
    "vendor_tax_rate",
    "vendor_mean_log_amount",
    "vendor_std_log_amount",
    "vendor_invoice_count",
    "bank_account_changed",
)
NULLABLE_FIELDS: Final[tuple[str, ...]] = (
    "days_since_last_invoice",
    "days_since_similar_invoice",
    "similar_invoice_number_similarity",
)
_FIRST_INVOICE_DAYS: Final[float] = 365.0
_MIN_STD: Final[float] = 0.05
_EPOCH_WEEKDAY_OFFSET: Final[int] = 3  # 1970-01-01 was a Thursday; Monday = 0


class InvalidInvoiceError(ValueError):
    """An invoice batch that cannot be turned into features; the message is client-safe."""


def _type_name(t: type) -> str:
    return {type(None): "null", bool: "boolean", str: "string", dict: "object", list: "array"}.get(
        t, "number" if t in _NUMBER else t.__name__
    )


def _column(rows: Sequence[dict[str, Any]], field: str, allowed: frozenset[type]) -> list[Any]:
    """One field of every row, type-checked with a single pass over the column's types."""
    try:
        col = [row[field] for row in rows]
    except KeyError:
        bad = next(i for i, row in enumerate(rows) if field not in row)
        raise InvalidInvoiceError(f"invoice {bad}: missing required field '{field}'") from None
    types = set(map(type, col))
    if not types <= allowed:
        wrong = types - allowed
        bad = next(i for i, v in enumerate(col) if type(v) in wrong)
        raise InvalidInvoiceError(
            f"invoice {bad}: field '{field}' has type {_type_name(type(col[bad]))}, "
            f"expected {' or '.join(sorted({_type_name(t) for t in allowed}))}"
        )
    return col


def _nullable_column(rows: Sequence[dict[str, Any]], field: str) -> tuple[npt.NDArray[np.float64], Any]:
    """A nullable number column as float64 plus a boolean mask of present values."""
    col = [row.get(field) for row in rows]
    types = set(map(type, col))
    if not types <= _NULLABLE_NUMBER:
        bad = next(i for i, v in enumerate(col) if type(v) not in _NULLABLE_NUMBER)
        raise InvalidInvoiceError(
            f"invoice {bad}: field '{field}' has type {_type_name(type(col[bad]))}, expected number or null"
        )
    if type(None) in types:
        present = np.fromiter((v is not None for v in col), dtype=np.bool_, count=len(col))
        values = np.array([0.0 if v is None else v for v in col], dtype=np.float64)
    else:
        present = np.ones(len(col), dtype=np.bool_)
        values = np.array(col, dtype=np.float64)
    return values, present


def _check(ok: npt.NDArray[np.bool_], field: str, rule: str) -> None:
    if not ok.all():
        bad = int(np.argmin(ok))
        raise InvalidInvoiceError(f"invoice {bad}: field '{field}' must be {rule}")


def _numbers(rows: Sequence[dict[str, Any]], field: str) -> npt.NDArray[np.float64]:
    values = np.array(_column(rows, field, _NUMBER), dtype=np.float64)
    _check(np.isfinite(values), field, "finite")
    return values


def _weekday(dates: list[str]) -> npt.NDArray[np.int64]:
    try:
        days = np.array([d[:10] for d in dates], dtype="datetime64[D]")
    except ValueError:
        for i, d in enumerate(dates):
            try:
                np.datetime64(d[:10], "D")
            except ValueError:
                raise InvalidInvoiceError(
                    f"invoice {i}: field 'invoice_date' must be an ISO 8601 date (YYYY-MM-DD)"
                ) from None
        raise  # pragma: no cover - numpy rejected the batch but no single row
    if np.isnat(days).any():
        bad = int(np.argmax(np.isnat(days)))
        raise InvalidInvoiceError(
            f"invoice {bad}: field 'invoice_date' must be an ISO 8601 date (YYYY-MM-DD)"
        )
    return (days.astype(np.int64) + _EPOCH_WEEKDAY_OFFSET) % 7


def featurize(  # noqa: PLR0915 - one straight pass, column by column, kept in one place
    rows: Sequence[dict[str, Any]], *, max_rows: int | None = MAX_ROWS
) -> npt.NDArray[np.float32]:
    """Turn invoice objects into a C-contiguous ``(len(rows), N_FEATURES)`` float32 matrix.

    ``max_rows`` bounds a request; training passes ``None``.
    """
    n = len(rows)
    if n == 0:
        raise InvalidInvoiceError("no invoices in the request")
    if max_rows is not None and n > max_rows:
        raise InvalidInvoiceError(f"{n} invoices in one request; the maximum is {max_rows}")
    if not set(map(type, rows)) <= {dict}:
        bad = next(i for i, r in enumerate(rows) if type(r) is not dict)
        raise InvalidInvoiceError(f"invoice {bad}: expected a JSON object, got {_type_name(type(rows[bad]))}")

    amount = _numbers(rows, "amount")
    _check(amount > 0, "amount", "greater than 0")
    tax = _numbers(rows, "tax_amount")
    _check((tax >= 0) & (tax <= amount), "tax_amount", "between 0 and amount")
    currency = _column(rows, "currency", _STRING)
    dates = _column(rows, "invoice_date", _STRING)
    vendor_currency = _column(rows, "vendor_currency", _STRING)
    tax_rate = _numbers(rows, "vendor_tax_rate")
    _check((tax_rate >= 0) & (tax_rate < 1), "vendor_tax_rate", "in [0, 1)")
    mean = _numbers(rows, "vendor_mean_log_amount")
    std = _numbers(rows, "vendor_std_log_amount")
    _check(std >= 0, "vendor_std_log_amount", "0 or greater")
    count = _numbers(rows, "vendor_invoice_count")
    _check(count >= 0, "vendor_invoice_count", "0 or greater")
    bank_changed = _column(rows, "bank_account_changed", _BOOL)
    days_last, has_last = _nullable_column(rows, "days_since_last_invoice")
    days_similar, has_similar = _nullable_column(rows, "days_since_similar_invoice")
    similarity, has_similarity = _nullable_column(rows, "similar_invoice_number_similarity")
    for values, name in (
        (days_last, "days_since_last_invoice"),
        (days_similar, "days_since_similar_invoice"),
    ):
        _check(np.isfinite(values) & (values >= 0), name, "a finite number >= 0 or null")
    _check(
        np.isfinite(similarity) & (similarity >= 0) & (similarity <= 1),
        "similar_invoice_number_similarity",
        "in [0, 1] or null",
    )
    weekday = _weekday(dates)

    out = np.empty((n, N_FEATURES), dtype=np.float32)
    log_amount = np.log(amount)
    z = np.clip((log_amount - mean) / np.maximum(std, _MIN_STD), -20.0, 20.0)
    tax_dev = np.clip(tax / np.maximum(amount - tax, 0.01) - tax_rate, -1.0, 1.0)
    recency = np.where(has_similar, np.exp(-days_similar / 7.0), 0.0)
    sim = np.where(has_similar & has_similarity, similarity, 0.0)
    cents = np.rint(amount * 100.0)
    out[:, 0] = log_amount
    out[:, 1] = z
    out[:, 2] = np.abs(z)
    out[:, 3] = tax_dev
    out[:, 4] = np.abs(tax_dev)
    out[:, 5] = bank_changed
    out[:, 6] = recency
    out[:, 7] = sim
    out[:, 8] = recency * sim
    out[:, 9] = weekday >= 5
    out[:, 10] = np.fmod(cents, 10_000.0) == 0
    out[:, 11] = np.fmod(cents, 100_000.0) == 0
    out[:, 12] = [a != b for a, b in zip(currency, vendor_currency, strict=True)]
    out[:, 13] = np.log1p(count)
    out[:, 14] = np.log1p(np.where(has_last, days_last, _FIRST_INVOICE_DAYS))
    return out


def validate_matrix(matrix: Any) -> npt.NDArray[np.float32]:
    """Check a caller-built feature matrix (the ``application/x-npy`` path)."""
    if not isinstance(matrix, np.ndarray):
        raise InvalidInvoiceError("expected a NumPy array")
    if matrix.dtype != np.float32:
        raise InvalidInvoiceError(f"expected dtype float32, got {matrix.dtype}")
    if matrix.ndim != 2 or matrix.shape[1] != N_FEATURES:
        raise InvalidInvoiceError(f"expected shape (n, {N_FEATURES}), got {matrix.shape}")
    if matrix.shape[0] == 0:
        raise InvalidInvoiceError("no rows in the request")
    if matrix.shape[0] > MAX_ROWS:
        raise InvalidInvoiceError(f"{matrix.shape[0]} rows in one request; the maximum is {MAX_ROWS}")
    if not np.isfinite(matrix).all():
        bad = int(np.argmin(np.isfinite(matrix).all(axis=1)))
        raise InvalidInvoiceError(f"row {bad}: non-finite value (NaN or infinity)")
    return np.ascontiguousarray(matrix)
