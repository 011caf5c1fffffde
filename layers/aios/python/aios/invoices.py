"""The canonical invoice: what every connector converts to and from.

Connectors map their system's shape onto ``Invoice`` explicitly (the ERP connector through a
configurable field mapping, the email connector from an inbound message); workflows, the
anomaly model and lineage only ever see this model.

Personal and account data stays out: ``bank_account`` is a reference (``hmac-sha256:<hex>``
of the normalised account number under the platform's fingerprint key, see
``bank_account_reference`` and ``aios.fingerprints``), never the raw number.

The optional vendor-context fields are features the anomaly model scores with; the
workflow fills them from vendor history before scoring, connectors leave them ``None``.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aios.fingerprints import keyed_digest

#: ``<source>:<id as the source knows it>``, e.g. ``erp:INV-1001``.
BusinessKey = Annotated[
    str,
    Field(pattern=r"^[a-z][a-z0-9-]{0,31}:[A-Za-z0-9][A-Za-z0-9._/#-]{0,199}$", max_length=233),
]
#: ISO 4217 alphabetic code.
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
#: An amount in major units (``1234.50``), exact.
Money = Annotated[Decimal, Field(max_digits=18, decimal_places=4, ge=0)]
#: A reference to a bank account: ``hmac-sha256:<hex>`` (keyed, ``bank_account_reference``)
#: or an opaque ``ref:<id>`` of a vault.
BankAccountRef = Annotated[str, Field(pattern=r"^(hmac-sha256:[0-9a-f]{64}|ref:[A-Za-z0-9._-]{1,128})$")]
#: What a value already in reference form starts with (connectors pass those through).
BANK_ACCOUNT_REFERENCE_PREFIXES = ("hmac-sha256:", "ref:")
Identifier = Annotated[str, Field(min_length=1, max_length=128)]


def business_key(source: str, invoice_id: str) -> str:
    """The business key of an invoice known to ``source`` as ``invoice_id``."""
    return f"{source}:{invoice_id}"


def bank_account_reference(raw: str, key: bytes) -> str:
    """The reference stored instead of a raw account number (IBAN or local format): an
    HMAC under the fingerprint ``key`` (``aios.fingerprints``), never a plain hash, which
    the small space of account numbers would let anyone reverse.

    Spaces and case are normalised first, so ``DE89 3704 ...`` and ``de893704...`` agree.
    """
    normalised = "".join(raw.split()).upper()
    return "hmac-sha256:" + keyed_digest(key, normalised)


class InvoiceLine(BaseModel):
    """One line of an invoice; ``amount`` is the line's net total."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    description: Annotated[str, Field(max_length=500)] = ""
    quantity: Annotated[Decimal, Field(max_digits=18, decimal_places=6)] = Decimal(1)
    unit_price: Annotated[Decimal, Field(max_digits=18, decimal_places=6)] | None = None
    amount: Annotated[Decimal, Field(max_digits=18, decimal_places=4)]
    account_code: Annotated[str, Field(max_length=64)] | None = None
    tax_rate: Annotated[Decimal, Field(ge=0, le=1, decimal_places=6)] | None = None


class Invoice(BaseModel):
    """A supplier invoice, as the platform knows it.

    ``amount`` is the gross total including ``tax_amount``, in ``currency``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    invoice_id: Identifier
    business_key: BusinessKey
    vendor_id: Identifier
    vendor_name: Annotated[str, Field(min_length=1, max_length=256)]
    amount: Money
    tax_amount: Money = Decimal(0)
    currency: CurrencyCode
    invoice_date: date
    due_date: date | None = None
    bank_account: BankAccountRef | None = None
    purchase_order: Identifier | None = None
    lines: tuple[InvoiceLine, ...] = ()
    # Vendor context: features for the anomaly model, filled from vendor history.
    vendor_mean_log_amount: float | None = None
    vendor_std_log_amount: Annotated[float, Field(ge=0)] | None = None
    bank_account_changed: bool | None = None
    days_since_last_invoice: Annotated[int, Field(ge=0)] | None = None
    vendor_invoice_count: Annotated[int, Field(ge=0)] | None = None
    vendor_currency: CurrencyCode | None = None
    vendor_tax_rate: Annotated[float, Field(ge=0, lt=1)] | None = None
    days_since_similar_invoice: Annotated[float, Field(ge=0)] | None = None
    similar_invoice_number_similarity: Annotated[float, Field(ge=0, le=1)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Invoice:
        if self.tax_amount > self.amount:
            raise ValueError("tax_amount exceeds the gross amount")
        if self.due_date is not None and self.due_date < self.invoice_date:
            raise ValueError("due_date precedes invoice_date")
        return self
