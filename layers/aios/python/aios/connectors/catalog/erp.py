"""ERP connector: a generic REST ERP, configured rather than coded.

Operations (``operation`` field of the request):

- ``get_invoice``: ``GET {paths.get_invoice}`` -> the ERP's invoice JSON, mapped to ``Invoice``.
- ``post_invoice``: ``POST {paths.post_invoice}`` with the mapped invoice -> posting id.
  Idempotent on (business key, operation); ``Idempotency-Key`` header sent when configured.
- ``reverse_posting``: ``POST {paths.reverse_posting}`` -> reversal id (compensation).
  Idempotent the same way.

Configuration lives in the connector secret: ``base_url`` and auth (API key, bearer or
OAuth2 client credentials), and ``settings`` parsed as ``ErpSettings``: the paths, the
field mapping from ``Invoice`` field names to the ERP's JSON names (dotted for nested
objects: ``"vendor_id": "supplier.id"``), the response fields carrying the posting id and
status, the source name of business keys and the idempotency header (``null`` if none).
Raw bank account numbers from the ERP are turned into references on the way in and never
sent back out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aios.connectors.kit import (
    Connector,
    ConnectorRequest,
    ConnectorResult,
    derived_idempotency_key,
    ensure_rejected,
    parse_body,
)
from aios.connectors.mapping import CallContext
from aios.fingerprints import connector_account_key
from aios.invoices import (
    BANK_ACCOUNT_REFERENCE_PREFIXES,
    BusinessKey,
    Identifier,
    Invoice,
    bank_account_reference,
    business_key,
)

NAME = "erp"
VERSION = "1.0.0"

#: Invoice fields never sent to the ERP (vendor context is ours; the account is a reference).
_NOT_SENT = frozenset(
    {
        "business_key",
        "bank_account",
        "vendor_mean_log_amount",
        "vendor_std_log_amount",
        "bank_account_changed",
        "days_since_last_invoice",
        "vendor_invoice_count",
    }
)


class ErpPaths(BaseModel):
    model_config = ConfigDict(frozen=True)

    get_invoice: str = "/invoices/{invoice_id}"
    post_invoice: str = "/invoices/{invoice_id}/postings"
    reverse_posting: str = "/postings/{posting_id}/reversal"


class ErpSettings(BaseModel):
    """The ``settings`` object of the ERP connector's secret (all optional)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")] = "erp"
    paths: ErpPaths = ErpPaths()
    #: ``Invoice`` field -> ERP JSON field (dotted path); unmapped fields keep their name.
    field_map: dict[str, str] = Field(default_factory=dict)
    #: Same for invoice lines.
    line_field_map: dict[str, str] = Field(default_factory=dict)
    #: The key under which the ERP wraps its invoice object, if any (``"data"``).
    envelope_key: str | None = None
    posting_id_field: str = "posting_id"
    reversal_id_field: str = "reversal_id"
    status_field: str = "status"
    idempotency_header: str | None = "Idempotency-Key"


# -- requests and responses ---------------------------------------------------------------
class GetInvoice(ConnectorRequest):
    operation: Literal["get_invoice"]
    invoice_id: Identifier


class PostInvoice(ConnectorRequest):
    operation: Literal["post_invoice"]
    business_key: BusinessKey
    invoice: Invoice
    approval_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{8,128}$")] | None = None


class ReversePosting(ConnectorRequest):
    operation: Literal["reverse_posting"]
    business_key: BusinessKey
    posting_id: Identifier
    reason: Annotated[str, Field(min_length=1, max_length=256)]


class InvoiceResult(ConnectorResult):
    invoice: Invoice


class PostingResult(ConnectorResult):
    business_key: BusinessKey
    invoice_id: Identifier
    posting_id: Identifier
    status: Annotated[str, Field(max_length=64)]


class ReversalResult(ConnectorResult):
    business_key: BusinessKey
    posting_id: Identifier
    reversal_id: Identifier
    status: Annotated[str, Field(max_length=64)]


# -- field mapping ------------------------------------------------------------------------
def get_path(document: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(document, dict):
            return None
        document = document.get(part)
    return document


def required_id(body: Any, dotted: str, context: CallContext, what: str) -> str:
    """The identifier at ``dotted``; a response without one breaks the contract (rejected)."""
    value = get_path(body, dotted)
    ensure_rejected(context, isinstance(value, str | int) and str(value) != "", f"no {what}")
    return str(value)


def set_path(document: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        document = document.setdefault(part, {})
    document[last] = value


def invoice_from_erp(
    body: dict[str, Any], config: ErpSettings, context: CallContext, *, account_key: Callable[[], bytes]
) -> Invoice:
    """The ERP's invoice JSON as an ``Invoice`` (``Connector.Rejected`` naming bad fields).

    A raw bank account becomes its keyed reference (``account_key``: the fingerprint key,
    read only when there is an account to reference)."""
    source = get_path(body, config.envelope_key) if config.envelope_key else body
    ensure_rejected(context, isinstance(source, dict), "invoice is not an object")
    values: dict[str, Any] = {}
    for field in Invoice.model_fields:
        if field in {"business_key", "lines"}:
            continue
        value = get_path(source, config.field_map.get(field, field))
        if value is not None:
            values[field] = value
    raw_account = values.get("bank_account")
    if isinstance(raw_account, str) and not raw_account.startswith(BANK_ACCOUNT_REFERENCE_PREFIXES):
        values["bank_account"] = bank_account_reference(raw_account, account_key())
    raw_lines = get_path(source, config.field_map.get("lines", "lines")) or []
    if isinstance(raw_lines, list):
        values["lines"] = [
            {
                f: get_path(line, config.line_field_map.get(f, f))
                for f in ("description", "quantity", "unit_price", "amount", "account_code", "tax_rate")
                if get_path(line, config.line_field_map.get(f, f)) is not None
            }
            for line in raw_lines
        ]
    if "invoice_id" in values:
        values["business_key"] = business_key(config.source, str(values["invoice_id"]))
    return parse_body(Invoice, values, context)


def invoice_to_erp(invoice: Invoice, config: ErpSettings) -> dict[str, Any]:
    """The ``Invoice`` as the ERP's JSON (vendor context and account reference left out)."""
    dumped = invoice.model_dump(mode="json", exclude_none=True)
    document: dict[str, Any] = {}
    for field, value in dumped.items():
        if field in _NOT_SENT:
            continue
        mapped = value
        if field == "lines":
            mapped = [{config.line_field_map.get(k, k): v for k, v in line.items()} for line in value]
        set_path(document, config.field_map.get(field, field), mapped)
    return document


# -- the connector ------------------------------------------------------------------------
class ErpConnector(Connector):
    name = NAME
    version = VERSION

    def __init__(self, *, fingerprint_key: Callable[[], bytes] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._fingerprint_key = fingerprint_key

    def account_key(self) -> bytes:
        """The fingerprint key bank accounts are referenced under (``aios.fingerprints``)."""
        return connector_account_key(self.name, self._fingerprint_key)

    def _post(
        self, request: PostInvoice | ReversePosting, config: ErpSettings, path: str, document: dict[str, Any]
    ) -> dict[str, Any]:
        """A side-effecting ERP call, with the idempotency header when the ERP takes one: derived
        from the business key and operation, so a retry of the same call is the same request."""
        headers: dict[str, str] = {}
        if config.idempotency_header:
            headers[config.idempotency_header] = derived_idempotency_key(
                request.business_key, request.operation
            )
        return self.call(request.operation, "POST", path, json=document, headers=headers)

    def get_invoice(self, request: GetInvoice) -> InvoiceResult:
        config = self.settings_as(ErpSettings)
        path = config.paths.get_invoice.format(invoice_id=request.invoice_id)
        body = self.call(request.operation, "GET", path)
        context = self.context(request.operation)
        invoice = invoice_from_erp(body, config, context, account_key=self.account_key)
        return InvoiceResult(**self.result(request.operation), invoice=invoice)

    def post_invoice(self, request: PostInvoice) -> PostingResult:
        def produce() -> PostingResult:
            config = self.settings_as(ErpSettings)
            document = invoice_to_erp(request.invoice, config)
            if request.approval_id:
                document["approval_reference"] = request.approval_id
            path = config.paths.post_invoice.format(invoice_id=request.invoice.invoice_id)
            body = self._post(request, config, path, document)
            context = self.context(request.operation)
            return PostingResult(
                **self.result(request.operation),
                business_key=request.business_key,
                invoice_id=request.invoice.invoice_id,
                posting_id=required_id(body, config.posting_id_field, context, "posting id"),
                status=str(get_path(body, config.status_field) or "posted"),
            )

        return self.once(
            operation=request.operation,
            business_key=request.business_key,
            model=PostingResult,
            produce=produce,
        )

    def reverse_posting(self, request: ReversePosting) -> ReversalResult:
        def produce() -> ReversalResult:
            config = self.settings_as(ErpSettings)
            path = config.paths.reverse_posting.format(posting_id=request.posting_id)
            body = self._post(request, config, path, {"reason": request.reason})
            context = self.context(request.operation)
            return ReversalResult(
                **self.result(request.operation),
                business_key=request.business_key,
                posting_id=request.posting_id,
                reversal_id=required_id(body, config.reversal_id_field, context, "reversal id"),
                status=str(get_path(body, config.status_field) or "reversed"),
            )

        return self.once(
            operation=request.operation,
            business_key=request.business_key,
            model=ReversalResult,
            produce=produce,
            discriminator=request.posting_id,
        )
