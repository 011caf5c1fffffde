"""Invoice -> feature row of the invoice anomaly model, shared by training and ``model-invoke``.

One implementation: ``models/invoice_anomaly/train.py`` and ``evaluate.py`` build their
matrices with ``feature_rows``, and ``model-invoke`` computes the same rows before it sends a
float32 tensor to the endpoint, so the served model (ONNX on Triton) never parses invoices.
Standard library only: it runs in Lambda (no numpy in the layer) and in the training venv.

The caller validates the invoice first (``aios.scoring.InvoiceFeatures`` in Lambda; the
generator's invoices are valid by construction). Fields follow the canonical
``aios.invoices.Invoice`` (gross ``amount``, vendor context ``vendor_mean_log_amount`` ...):

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
similar_invoice_number_similarity   0 <= x <= 1 nullable: similarity of the two invoice numbers
==================================  ==========  ===============================================

Features, in this fixed order (``FEATURE_NAMES``), float32 on the wire:

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
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any, Final

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
_FIRST_INVOICE_DAYS: Final[float] = 365.0
_MIN_STD: Final[float] = 0.05
_SATURDAY: Final[int] = 5  # date.weekday(): Monday = 0


def _clip(value: float, bound: float) -> float:
    return -bound if value < -bound else min(value, bound)


def feature_row(invoice: Mapping[str, Any]) -> list[float]:
    """The ``N_FEATURES`` features of one validated invoice, as Python floats."""
    amount = float(invoice["amount"])
    tax = float(invoice["tax_amount"])
    log_amount = math.log(amount)
    z = _clip(
        (log_amount - float(invoice["vendor_mean_log_amount"]))
        / max(float(invoice["vendor_std_log_amount"]), _MIN_STD),
        20.0,
    )
    tax_dev = _clip(tax / max(amount - tax, 0.01) - float(invoice["vendor_tax_rate"]), 1.0)
    similar_days = invoice.get("days_since_similar_invoice")
    similarity = invoice.get("similar_invoice_number_similarity")
    recency = math.exp(-float(similar_days) / 7.0) if similar_days is not None else 0.0
    sim = float(similarity) if similar_days is not None and similarity is not None else 0.0
    cents = round(amount * 100.0)
    last = invoice.get("days_since_last_invoice")
    weekday = date.fromisoformat(str(invoice["invoice_date"])[:10]).weekday()
    return [
        log_amount,
        z,
        abs(z),
        tax_dev,
        abs(tax_dev),
        1.0 if invoice["bank_account_changed"] else 0.0,
        recency,
        sim,
        recency * sim,
        1.0 if weekday >= _SATURDAY else 0.0,
        1.0 if cents % 10_000 == 0 else 0.0,
        1.0 if cents % 100_000 == 0 else 0.0,
        1.0 if invoice["currency"] != invoice["vendor_currency"] else 0.0,
        math.log1p(float(invoice["vendor_invoice_count"])),
        math.log1p(float(last) if last is not None else _FIRST_INVOICE_DAYS),
    ]


def feature_rows(invoices: Iterable[Mapping[str, Any]]) -> list[list[float]]:
    return [feature_row(invoice) for invoice in invoices]


def float32_bytes(rows: Sequence[Sequence[float]]) -> bytes:
    """Row-major little-endian float32, the layout of a KServe v2 binary ``FP32`` tensor.

    A value outside float32's range would become infinity: every feature is clipped or a
    logarithm of a validated number, so none is.
    """
    flat = [value for row in rows for value in row]
    return struct.pack(f"<{len(flat)}f", *flat)
