"""Email (SES v2, inbound mail in S3) and documents connectors on moto, and the Lambda
handlers end to end (event in, ``model_dump(mode="json")`` out)."""

from __future__ import annotations

import base64
from email.message import EmailMessage
from typing import Any

import boto3
import pytest
from connector_api import Reply  # type: ignore[import-not-found]

from aios.connectors.catalog import documents, email, payments
from aios.documents import DocumentStore
from aios.errors import ConnectorRejected, ValidationFailed
from aios.invoices import bank_account_reference
from functions.connectors.payments import handler
from tests.lambda_context import LambdaContext

BUCKET = "aios-documents-test"


@pytest.fixture
def s3(aws: None) -> Any:
    client = boto3.client("s3", region_name="eu-west-1")
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return client


FINGERPRINT_KEY = b"aws-test-fingerprint-key-0123456789abcdef"


@pytest.fixture
def mail(s3: Any, secrets: Any, kit: dict[str, Any]) -> email.EmailConnector:
    ses = boto3.client("ses", region_name="eu-west-1")
    ses.verify_email_identity(EmailAddress="ap@example.com")
    secrets.put("email", {"settings": {"from_address": "ap@example.com", "source": "email"}})
    return email.EmailConnector(
        ses_client=boto3.client("sesv2", region_name="eu-west-1"),
        s3_client=s3,
        documents=DocumentStore(BUCKET, s3),
        fingerprint_key=lambda: FINGERPRINT_KEY,
        **kit,
    )


def test_send_templated_email_once_per_business_key(mail: email.EmailConnector) -> None:
    request = email.EmailConnector.request_adapter().validate_python(
        {
            "operation": "send_email",
            "business_key": "erp:INV-1001",
            "template": "payment_advice",
            "to": ["vendor@acme.example"],
            "variables": {"invoice_id": "INV-1001", "amount": "1234.50", "currency": "EUR"},
        }
    )

    first = mail.send_email(request)  # type: ignore[arg-type]
    second = mail.send_email(request)  # type: ignore[arg-type]

    assert first.message_id and first == second
    assert (first.connector, first.operation) == ("email", "send_email")


def test_send_from_unverified_identity_is_rejected(mail: email.EmailConnector, secrets: Any) -> None:
    secrets.put("email", {"settings": {"from_address": "nobody@unverified.example"}})
    mail.credentials.get("email", refresh=True)
    request = email.SendEmail(
        operation="send_email",
        business_key="erp:INV-1001",
        template="invoice_rejected",
        to=("vendor@acme.example",),
        variables={"invoice_id": "INV-1001"},
    )

    with pytest.raises(ConnectorRejected, match="email send_email -> sesv2: AWS MessageRejected"):
        mail.send_email(request)


def test_parse_inbound_invoice_from_s3(mail: email.EmailConnector, s3: Any) -> None:
    message = EmailMessage()
    message["From"] = "Acme Billing <billing@acme.example>"
    message["To"] = "invoices@example.com"
    message["Subject"] = "Invoice INV-2002"
    message.set_content(
        "Dear customer,\n\nInvoice number: INV-2002\nTotal: 1,190.00 EUR\nVAT: 190.00\n"
        "Invoice date: 2024-06-01\nDue date: 2024-07-01\nIBAN: DE89 3704 0044 0532 0130 00\n"
    )
    message.add_attachment(b"%PDF-1.7 fake", maintype="application", subtype="pdf", filename="INV-2002.pdf")
    s3.put_object(Bucket=BUCKET, Key="inbound/abc123", Body=message.as_bytes())

    result = mail.parse_inbound_invoice(
        email.ParseInboundInvoice(operation="parse_inbound_invoice", bucket=BUCKET, key="inbound/abc123")
    )

    assert result.problems == ()
    invoice = result.invoice
    assert invoice is not None
    assert (invoice.business_key, str(invoice.amount), str(invoice.tax_amount)) == (
        "email:INV-2002",
        "1190.00",
        "190.00",
    )
    assert invoice.vendor_id == "domain:acme.example"
    assert invoice.bank_account == bank_account_reference("DE89370400440532013000", FINGERPRINT_KEY)
    (ref,) = result.attachments
    assert ref.key.endswith(".pdf") and ref.size == len(b"%PDF-1.7 fake")
    assert DocumentStore(BUCKET, s3).get(ref) == b"%PDF-1.7 fake"
    assert "billing@" not in result.model_dump_json()


def test_documents_put_get_and_tamper(s3: Any, kit: dict[str, Any]) -> None:
    connector = documents.DocumentsConnector(store=DocumentStore(BUCKET, s3), **kit)
    content = base64.b64encode(b'{"large": "payload"}').decode()

    put = connector.put_document(
        documents.PutDocument(operation="put_document", business_key="erp:INV-1001", content=content)
    )
    got = connector.get_document(documents.GetDocument(operation="get_document", ref=put.ref))

    assert got.content == content
    s3.put_object(Bucket=BUCKET, Key=put.ref.key, Body=b"altered")
    with pytest.raises(ValidationFailed):
        connector.get_document(documents.GetDocument(operation="get_document", ref=put.ref))


CONTEXT = LambdaContext(function_name="payments-connector")


def test_handler_dispatches_on_operation(
    monkeypatch: pytest.MonkeyPatch, api: Any, secrets: Any, kit: dict[str, Any]
) -> None:
    secrets.put("payments", {"base_url": api.url, "token": "sk_test_handler"})
    connector = payments.PaymentsConnector(**kit)
    monkeypatch.setattr(payments.PaymentsConnector, "default", lambda: connector)
    body = {"id": "pi_9", "object": "payment_intent", "amount": 500, "currency": "jpy", "status": "succeeded"}
    api.route("GET", "/v1/payment_intents/pi_9", Reply(200, body))

    result = handler.handler({"operation": "get_payment_status", "payment_id": "pi_9"}, CONTEXT)

    assert result == {
        "connector": "payments",
        "connector_version": payments.VERSION,
        "operation": "get_payment_status",
        "payment_id": "pi_9",
        "status": "succeeded",
        "amount": "500",
        "currency": "JPY",
        "business_key": None,
    }
    event = {"operation": "get_payment_status", "payment_id": "x y", "task_token": "AAAA"}
    with pytest.raises(ValidationFailed, match="payment_id"):
        handler.handler(event, CONTEXT)
    assert ValidationFailed.__name__ == "Validation.Failed"
