"""The seeded invoices every sandbox starts with: the demo catalog of the anomaly model's
generator, in the ``Invoice`` shape of the ERP connector's default field names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import Any

from pydantic import ValidationError

from aios.invoices import Invoice

#: The demo catalog: ``generate(20, seed=SEED, n_vendors=12, anomaly_rate=0.25)``, ids INV-2001..
SEED = 2000
SEED_COUNT = 20
FIRST_NUMBER = 2001
ERP_SOURCE = "erp"

_VENDOR_NAMES = (
    "Acme Industrial Supply",
    "Nordlicht Logistik GmbH",
    "Bureau Parisien SARL",
    "Van Dijk Facilities B.V.",
    "Thames Office Services Ltd",
    "Svea Maskin AB",
    "Alpenblick Consulting AG",
    "Harbor Freight Partners LLC",
    "Rheinwerk Elektro GmbH",
    "Lumiere Catering SAS",
    "Amsterdam Cloud Hosting B.V.",
    "Kestrel Security Ltd",
)
_ZERO_DECIMAL = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND"}
)


@dataclass(frozen=True)
class SeedCatalog:
    invoices: tuple[dict[str, Any], ...]
    #: invoice id -> planted anomaly kind (only the anomalous ones).
    anomalies: dict[str, str]


def _load_generator() -> Any:
    from models.invoice_anomaly import generate  # noqa: PLC0415 - numpy, on the first seed only

    return generate


def erp_invoice(generated: Mapping[str, Any], invoice_id: str) -> dict[str, Any]:
    """One generated invoice in the ``Invoice`` shape (default ERP field names)."""
    vendor_number = int(str(generated["vendor_id"]).lstrip("V") or 0)
    currency = str(generated["currency"])
    amount = float(generated["amount"])
    tax = float(generated["tax_amount"])
    if currency in _ZERO_DECIMAL:
        amount, tax = float(round(amount)), float(round(tax))
    invoice_date = date.fromisoformat(str(generated["invoice_date"]))
    days_last = generated.get("days_since_last_invoice")
    return {
        "invoice_id": invoice_id,
        "business_key": f"{ERP_SOURCE}:{invoice_id}",
        "vendor_id": str(generated["vendor_id"]),
        "vendor_name": _VENDOR_NAMES[vendor_number % len(_VENDOR_NAMES)],
        "amount": amount,
        "tax_amount": min(tax, amount),
        "currency": currency,
        "invoice_date": invoice_date.isoformat(),
        "due_date": (invoice_date + timedelta(days=30)).isoformat(),
        # Raw, as an ERP answers: the ERP connector turns it into a keyed reference.
        "bank_account": str(generated["bank_account"]),
        "purchase_order": f"PO-{generated['invoice_number']}",
        "vendor_mean_log_amount": generated["vendor_mean_log_amount"],
        "vendor_std_log_amount": generated["vendor_std_log_amount"],
        "bank_account_changed": bool(generated["bank_account_changed"]),
        "days_since_last_invoice": None if days_last is None else round(float(days_last)),
        "vendor_invoice_count": int(generated["vendor_invoice_count"]),
        "vendor_currency": generated["vendor_currency"],
        "vendor_tax_rate": generated["vendor_tax_rate"],
        "days_since_similar_invoice": generated.get("days_since_similar_invoice"),
        "similar_invoice_number_similarity": generated.get("similar_invoice_number_similarity"),
    }


@cache
def seed_catalog() -> SeedCatalog:
    """The deterministic demo catalog: 20 invoices INV-2001..INV-2020, 5 with planted anomalies."""
    dataset = _load_generator().generate(SEED_COUNT, seed=SEED, n_vendors=12, anomaly_rate=0.25)
    invoices: list[dict[str, Any]] = []
    anomalies: dict[str, str] = {}
    for index, (generated, kind) in enumerate(zip(dataset.invoices, dataset.kinds, strict=True)):
        invoice_id = f"INV-{FIRST_NUMBER + index}"
        invoices.append({k: v for k, v in erp_invoice(generated, invoice_id).items() if v is not None})
        if kind:
            anomalies[invoice_id] = str(kind)
    return SeedCatalog(invoices=tuple(invoices), anomalies=anomalies)


def validate_invoice(document: Any) -> dict[str, Any]:
    """An admin-posted invoice, checked against ``aios.invoices.Invoice`` (``business_key``
    defaults to ``erp:<invoice_id>``); ``ValueError`` names the bad fields."""
    if not isinstance(document, dict) or not document.get("invoice_id"):
        raise ValueError("an invoice is a JSON object with an invoice_id")
    invoice: dict[str, Any] = {"business_key": f"{ERP_SOURCE}:{document['invoice_id']}", **document}
    try:
        # The ERP holds raw bank accounts; the connector references them (keyed), so the
        # check stands a reference in for one.
        Invoice.model_validate(
            {**invoice, **({"bank_account": "ref:sandbox"} if "bank_account" in invoice else {})}
        )
    except ValidationError as error:
        fields = sorted({".".join(str(p) for p in e["loc"]) or "invoice" for e in error.errors()})
        raise ValueError(f"invalid invoice {invoice['invoice_id']}: fields {fields}") from None
    return invoice
