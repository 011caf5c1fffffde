"""Event sources and detail-types: the vocabulary of the aios bus, defined once."""

from __future__ import annotations

from typing import Final

#: Verified webhooks; detail-type is the provider's event type, detail the envelope.
WEBHOOK_SOURCE: Final = "aios.webhooks"
#: Domain events about invoices.
INVOICES_SOURCE: Final = "aios.invoices"

INVOICE_RECEIVED: Final = "Invoice Received"
INVOICE_APPROVED: Final = "Invoice Approved"
INVOICE_REJECTED: Final = "Invoice Rejected"
INVOICE_PAID: Final = "Invoice Paid"
INVOICE_COMPENSATED: Final = "Invoice Compensated"
