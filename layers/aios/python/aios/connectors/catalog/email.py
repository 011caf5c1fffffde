"""Email connector: templated mail out through SES v2, invoice mail in from S3.

Operations:

- ``send_email``: renders one of ``TEMPLATES`` with the request's variables
  (``string.Template.safe_substitute``: a missing variable stays visible as ``$name``
  instead of failing) and sends it with SES v2 ``SendEmail`` (``Content.Simple``).
  Idempotent on (business key, template, sequence). Returns SES's ``message_id``.
- ``parse_inbound_invoice``: reads a message that an SES receipt rule stored in S3, parses
  its MIME structure with the stdlib ``email`` package, stores every attachment in the
  documents bucket as a claim-check (``DocumentRef``), and builds an ``Invoice`` from a JSON
  attachment if there is one, else from ``Label: value`` lines of the text body
  (``Invoice number``, ``Amount``/``Total``, ``Tax``/``VAT``, ``Currency``, ``Invoice date``,
  ``Due date``, ``Vendor``, ``Vendor ID``, ``IBAN``/``Bank account``, ``PO``; dates ISO 8601,
  amounts with a decimal point). Fields that cannot be read are listed in ``problems``
  (names only) and ``invoice`` is ``None``; the sender's address is never returned, only its
  domain.

Secret ``settings``: ``from_address`` (required for ``send_email``), ``configuration_set``,
``source`` (business-key namespace of inbound invoices, default ``email``). The SES v2 and
S3 clients are injectable; AWS errors map through ``aios.connectors.mapping.aws_error``.
"""

from __future__ import annotations

import email
import hashlib
import json
import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from email import policy
from email.message import EmailMessage
from email.utils import parseaddr
from functools import partial
from string import Template
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aios import clients
from aios.config import settings as platform_settings
from aios.connectors.kit import Connector, ConnectorRequest, ConnectorResult
from aios.documents import DocumentStore
from aios.envelope import DocumentRef
from aios.errors import ConnectorAuthFailed
from aios.fingerprints import connector_account_key
from aios.invoices import BANK_ACCOUNT_REFERENCE_PREFIXES, BusinessKey, Invoice, bank_account_reference

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sesv2 import SESV2Client

NAME = "email"
VERSION = "1.0.0"

EmailAddress = Annotated[str, Field(pattern=r"^[^@\s<>\"]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")]


class EmailTemplate(BaseModel):
    model_config = ConfigDict(frozen=True)

    subject: str
    text: str


#: The messages the platform sends. Variables are ``$name`` (``string.Template``).
TEMPLATES: dict[str, EmailTemplate] = {
    "approval_request": EmailTemplate(
        subject="Approval needed: invoice $invoice_id from $vendor_name",
        text="Invoice $invoice_id from $vendor_name over $amount $currency needs your decision.\n"
        "Open the approvals page: $approval_url\n",
    ),
    "approval_reminder": EmailTemplate(
        subject="Reminder: invoice $invoice_id is waiting for your decision",
        text="Invoice $invoice_id from $vendor_name over $amount $currency is still waiting.\n"
        "Open the approvals page: $approval_url\n",
    ),
    "payment_advice": EmailTemplate(
        subject="Payment advice: invoice $invoice_id",
        text="We have paid invoice $invoice_id: $amount $currency, reference $payment_reference.\n",
    ),
    "invoice_rejected": EmailTemplate(
        subject="Invoice $invoice_id was not accepted",
        text="Invoice $invoice_id over $amount $currency was not accepted: $reason\n",
    ),
}

TemplateName = Literal["approval_request", "approval_reminder", "payment_advice", "invoice_rejected"]


class SendEmail(ConnectorRequest):
    operation: Literal["send_email"]
    business_key: BusinessKey
    template: TemplateName
    to: Annotated[tuple[EmailAddress, ...], Field(min_length=1, max_length=50)]
    variables: dict[
        Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,63}$")], Annotated[str, Field(max_length=2000)]
    ]
    sequence: Annotated[int, Field(ge=0, le=1000)] = 0


class ParseInboundInvoice(ConnectorRequest):
    operation: Literal["parse_inbound_invoice"]
    bucket: Annotated[str, Field(min_length=3, max_length=63)]
    key: Annotated[str, Field(min_length=1, max_length=1024)]


class SentResult(ConnectorResult):
    business_key: BusinessKey
    message_id: Annotated[str, Field(min_length=1, max_length=256)]


class InboundResult(ConnectorResult):
    message_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    sender_domain: str | None
    invoice: Invoice | None
    attachments: tuple[DocumentRef, ...] = ()
    problems: tuple[str, ...] = ()


class EmailSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    from_address: EmailAddress | None = None
    configuration_set: str | None = None
    source: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")] = "email"


def render(template: TemplateName, variables: dict[str, str]) -> tuple[str, str]:
    """Subject and text of ``template``; header-breaking characters removed from the subject."""
    chosen = TEMPLATES[template]
    subject = Template(chosen.subject).safe_substitute(variables)
    subject = " ".join(subject.split())[:200]
    return subject, Template(chosen.text).safe_substitute(variables)


# -- inbound parsing ----------------------------------------------------------------------
_LABELS: dict[str, tuple[str, ...]] = {
    "invoice_id": ("invoice number", "invoice no", "invoice id", "invoice #", "invoice"),
    "amount": ("total amount", "amount due", "total", "amount"),
    "tax_amount": ("tax amount", "vat amount", "tax", "vat"),
    "currency": ("currency",),
    "invoice_date": ("invoice date", "date"),
    "due_date": ("due date", "due", "payment due"),
    "vendor_name": ("vendor", "supplier", "from company", "vendor name"),
    "vendor_id": ("vendor id", "supplier id", "vendor number"),
    "bank_account": ("iban", "bank account", "account number"),
    "purchase_order": ("po", "po number", "purchase order"),
}
_LABEL_TO_FIELD = {label: field for field, labels in _LABELS.items() for label in labels}
_LINE = re.compile(r"^\s*([A-Za-z][A-Za-z #]{0,30}?)\s*[:=]\s*(.+?)\s*$")
_CURRENCY = re.compile(r"\b([A-Z]{3})\b")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def _amount(text: str) -> tuple[Decimal | None, str | None]:
    number = _NUMBER.search(text)
    currency = _CURRENCY.search(text)
    value = None
    if number:
        try:
            value = Decimal(number.group(0).replace(",", ""))
        except InvalidOperation:
            value = None
    return value, currency.group(1) if currency else None


def fields_from_text(text: str) -> dict[str, Any]:
    """``Label: value`` lines of a text body as raw invoice fields (first occurrence wins)."""
    found: dict[str, Any] = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        field = _LABEL_TO_FIELD.get(match.group(1).strip().lower())
        if field is None or field in found:
            continue
        value = match.group(2)
        if field in {"amount", "tax_amount"}:
            number, currency = _amount(value)
            if number is not None:
                found[field] = number
            if currency and field == "amount":
                found.setdefault("currency", currency)
        elif field in {"invoice_date", "due_date"}:
            try:
                found[field] = date.fromisoformat(value.strip()[:10])
            except ValueError:
                found[field] = value  # left for validation to report
        elif field == "currency":
            found[field] = value.strip().upper()
        else:
            found[field] = value.strip()
    return found


def parse_message(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def body_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None or not isinstance(part, EmailMessage):
        return ""
    content = part.get_content()
    text = content if isinstance(content, str) else content.decode("utf-8", "replace")
    if part.get_content_subtype() == "html":
        text = re.sub(r"<br\s*/?>|</p>|</div>|</tr>", "\n", text, flags=re.IGNORECASE)
        text = re.sub(r"<[^>]+>", " ", text)
    return text


def attachments(message: EmailMessage) -> list[tuple[str, str, bytes]]:
    """``(content_type, filename, bytes)`` of every attachment."""
    found: list[tuple[str, str, bytes]] = []
    for part in message.iter_attachments():
        if not isinstance(part, EmailMessage):
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            found.append((part.get_content_type(), part.get_filename() or "attachment", payload))
    return found


def invoice_from_message(
    message: EmailMessage,
    parts: list[tuple[str, str, bytes]],
    *,
    source: str,
    account_key: Callable[[], bytes],
) -> tuple[Invoice | None, list[str]]:
    """The invoice in a message: a JSON attachment first, else the text body's labels. A raw
    bank account becomes its keyed reference (``account_key``: the fingerprint key)."""
    fields: dict[str, Any] = {}
    for content_type, _, payload in parts:
        if content_type == "application/json":
            try:
                document = json.loads(payload)
            except ValueError:
                continue
            if isinstance(document, dict):
                fields = {k: v for k, v in document.items() if k in Invoice.model_fields}
                break
    if not fields:
        fields = fields_from_text(body_text(message))
    domain = sender_domain(message)
    if domain:
        fields.setdefault("vendor_id", f"domain:{domain}")
        fields.setdefault("vendor_name", domain)
    raw_account = fields.get("bank_account")
    if isinstance(raw_account, str) and not raw_account.startswith(BANK_ACCOUNT_REFERENCE_PREFIXES):
        fields["bank_account"] = bank_account_reference(raw_account, account_key())
    if "invoice_id" in fields:
        fields["business_key"] = f"{source}:{fields['invoice_id']}"
    try:
        return Invoice.model_validate(fields), []
    except ValidationError as error:
        return None, sorted({".".join(str(p) for p in e["loc"]) or "invoice" for e in error.errors()})


def sender_domain(message: EmailMessage) -> str | None:
    _, address = parseaddr(str(message.get("From", "")))
    domain = address.rpartition("@")[2].lower()
    return domain if re.fullmatch(r"[a-z0-9.-]{1,253}\.[a-z]{2,63}", domain) else None


_EXTENSION = re.compile(r"\.([A-Za-z0-9]{1,8})$")


class EmailConnector(Connector):
    name = NAME
    version = VERSION

    def __init__(
        self,
        *,
        ses_client: SESV2Client | None = None,
        s3_client: S3Client | None = None,
        documents: DocumentStore | None = None,
        fingerprint_key: Callable[[], bytes] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._ses = ses_client
        self._s3 = s3_client
        self._documents = documents
        self._fingerprint_key = fingerprint_key

    def account_key(self) -> bytes:
        """The fingerprint key bank accounts are referenced under (``aios.fingerprints``)."""
        return connector_account_key(self.name, self._fingerprint_key)

    @property
    def ses(self) -> SESV2Client:
        if self._ses is None:
            self._ses = clients.sesv2()
        return self._ses

    @property
    def s3(self) -> S3Client:
        if self._s3 is None:
            self._s3 = clients.s3()
        return self._s3

    @property
    def documents(self) -> DocumentStore:
        if self._documents is None:
            self._documents = DocumentStore(platform_settings().require("documents_bucket"), self.s3)
        return self._documents

    def send_email(self, request: SendEmail) -> SentResult:
        config = self.settings_as(EmailSettings)
        if not config.from_address:
            raise ConnectorAuthFailed(f"{self.name}: no from_address in its settings", connector=self.name)
        subject, text = render(request.template, request.variables)

        def produce() -> SentResult:
            arguments: dict[str, Any] = {
                "FromEmailAddress": config.from_address,
                "Destination": {"ToAddresses": list(request.to)},
                "Content": {
                    "Simple": {
                        "Subject": {"Data": subject, "Charset": "UTF-8"},
                        "Body": {"Text": {"Data": text, "Charset": "UTF-8"}},
                    }
                },
                "EmailTags": [{"Name": "template", "Value": request.template}],
            }
            if config.configuration_set:
                arguments["ConfigurationSetName"] = config.configuration_set
            response = self.guard(request.operation, "sesv2", lambda: self.ses.send_email(**arguments))
            return SentResult(
                **self.result(request.operation),
                business_key=request.business_key,
                message_id=response["MessageId"],
            )

        return self.once(
            operation=request.operation,
            business_key=request.business_key,
            model=SentResult,
            produce=produce,
            discriminator=f"{request.template}#{request.sequence}",
        )

    def _read_object(self, bucket: str, key: str) -> bytes:
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def parse_inbound_invoice(self, request: ParseInboundInvoice) -> InboundResult:
        raw = self.guard(
            request.operation,
            "s3",
            lambda: self._read_object(request.bucket, request.key),
        )
        digest = hashlib.sha256(raw).hexdigest()
        message = parse_message(raw)
        parts = attachments(message)
        refs: list[DocumentRef] = []
        for content_type, filename, payload in parts:
            extension = _EXTENSION.search(filename)
            key = f"inbound-email/{digest}/{hashlib.sha256(payload).hexdigest()}" + (
                f".{extension.group(1).lower()}" if extension else ""
            )
            refs.append(
                self.guard(
                    request.operation,
                    "s3",
                    partial(self.documents.put, payload, key=key, content_type=content_type),
                )
            )
        invoice, problems = invoice_from_message(
            message, parts, source=self.settings_as(EmailSettings).source, account_key=self.account_key
        )
        return InboundResult(
            **self.result(request.operation),
            message_sha256=digest,
            sender_domain=sender_domain(message),
            invoice=invoice,
            attachments=tuple(refs),
            problems=tuple(problems),
        )
