"""Pure parts of the connector kit: error mapping, auth headers, Block Kit, MIME parsing,
field mapping and amounts. No sockets: httpx.MockTransport stands in for servers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from email.message import EmailMessage

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from aios.connectors.catalog import documents, email, erp, payments, slack
from aios.connectors.credentials import ConnectorSecret, secret_name
from aios.connectors.http import (
    ApiKeyAuth,
    BearerAuth,
    OAuth2ClientCredentials,
    Timeouts,
    auth_from_secret,
    build_client,
)
from aios.connectors.kit import Connector, derived_idempotency_key
from aios.connectors.mapping import (
    CallContext,
    aws_error,
    raise_for_slack,
    raise_for_status,
    retry_after_seconds,
)
from aios.errors import (
    ConnectorAuthFailed,
    ConnectorRejected,
    ConnectorThrottled,
    ConnectorUnavailable,
)
from aios.invoices import Invoice

CONTEXT = CallContext(connector="payments", operation="create_payment", target="api.example.com")
FINGERPRINT_KEY = b"unit-test-fingerprint-key-0123456789abcdef"


def response(status: int, body: object = None, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, ConnectorThrottled),
        (500, ConnectorUnavailable),
        (502, ConnectorUnavailable),
        (503, ConnectorUnavailable),
        (408, ConnectorUnavailable),
        (401, ConnectorAuthFailed),
        (403, ConnectorAuthFailed),
        (400, ConnectorRejected),
        (404, ConnectorRejected),
        (409, ConnectorRejected),
        (422, ConnectorRejected),
        (302, ConnectorRejected),
    ],
)
def test_status_mapping(status: int, error: type[Exception]) -> None:
    with pytest.raises(error) as raised:
        raise_for_status(
            response(status, {"error": {"type": "x", "message": "Jane Doe, 1 Main St"}}), CONTEXT
        )
    assert str(raised.value).startswith(f"payments create_payment -> api.example.com: HTTP {status}")
    assert "Jane" not in str(raised.value)


def test_2xx_passes_and_error_names_are_dotted() -> None:
    raise_for_status(response(201, {}), CONTEXT)
    assert ConnectorThrottled.__name__ == "Connector.Throttled"
    assert ConnectorUnavailable.__name__ == "Connector.Unavailable"


def test_retry_after_seconds_and_http_date() -> None:
    now = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("30") == 30
    assert retry_after_seconds("Mon, 01 Jan 2024 12:00:45 GMT", now=now) == 45
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None
    with pytest.raises(ConnectorThrottled) as raised:
        raise_for_status(response(429, {}, {"Retry-After": "12"}), CONTEXT)
    assert raised.value.retry_after_seconds == 12


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("ratelimited", ConnectorThrottled),
        ("invalid_auth", ConnectorAuthFailed),
        ("not_authed", ConnectorAuthFailed),
        ("token_revoked", ConnectorAuthFailed),
        ("internal_error", ConnectorUnavailable),
        ("channel_not_found", ConnectorRejected),
        ("<script>", ConnectorRejected),
    ],
)
def test_slack_ok_false_mapping(code: str, error: type[Exception]) -> None:
    with pytest.raises(error) as raised:
        raise_for_slack({"ok": False, "error": code}, response(200, {}), CONTEXT)
    assert "<script>" not in str(raised.value)
    raise_for_slack({"ok": True}, response(200, {}), CONTEXT)


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("TooManyRequestsException", 429, ConnectorThrottled),
        ("Throttling", 400, ConnectorThrottled),
        ("AccessDeniedException", 403, ConnectorAuthFailed),
        ("ServiceUnavailable", 503, ConnectorUnavailable),
        ("MessageRejected", 400, ConnectorRejected),
    ],
)
def test_aws_error_mapping(code: str, status: int, error: type[Exception]) -> None:
    assert isinstance(aws_error(code, status, CONTEXT), error)


def _echo(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"headers": dict(request.headers)})


def test_api_key_and_bearer_headers() -> None:
    for auth, header, value in (
        (ApiKeyAuth(SecretStr("k-123")), "x-api-key", "k-123"),
        (ApiKeyAuth(SecretStr("k-123"), header="Authorization"), "authorization", "k-123"),
        (BearerAuth(SecretStr("t-456")), "authorization", "Bearer t-456"),
    ):
        client = build_client(
            base_url="https://x", auth=auth, timeouts=Timeouts(), transport=httpx.MockTransport(_echo)
        )
        assert client.get("/").json()["headers"][header] == value


def test_oauth2_token_cached_until_expiry() -> None:
    now = [0.0]
    token_calls: list[httpx.Request] = []

    def server(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            token_calls.append(request)
            return httpx.Response(200, json={"access_token": f"tok-{len(token_calls)}", "expires_in": 3600})
        return _echo(request)

    auth = OAuth2ClientCredentials(
        token_url="https://idp.example/oauth/token", client_id="cid", client_secret=SecretStr("csecret"),
        clock=lambda: now[0],
    )  # fmt: skip
    client = build_client(
        base_url="https://x", auth=auth, timeouts=Timeouts(), transport=httpx.MockTransport(server)
    )

    assert client.get("/").json()["headers"]["authorization"] == "Bearer tok-1"
    assert client.get("/").json()["headers"]["authorization"] == "Bearer tok-1"
    now[0] = 3600 - 29  # within the expiry margin: refreshed
    assert client.get("/").json()["headers"]["authorization"] == "Bearer tok-2"
    assert len(token_calls) == 2
    assert token_calls[0].headers["authorization"].startswith("Basic ")
    assert b"grant_type=client_credentials" in token_calls[0].content


def test_auth_from_secret_precedence_and_masking() -> None:
    oauth = ConnectorSecret(
        client_id="c", client_secret=SecretStr("s"), token_url="https://idp/t", token=SecretStr("t")
    )
    assert isinstance(auth_from_secret(oauth), OAuth2ClientCredentials)
    assert isinstance(
        auth_from_secret(ConnectorSecret(token=SecretStr("t"), api_key=SecretStr("k"))), BearerAuth
    )
    assert isinstance(auth_from_secret(ConnectorSecret(api_key=SecretStr("k"))), ApiKeyAuth)
    assert auth_from_secret(ConnectorSecret()) is None
    assert "supersecret" not in repr(ConnectorSecret.model_validate({"token": "supersecret"}))
    assert secret_name("slack", prefix="aios") == "aios/connectors/slack"


def test_timeouts_fit_the_function() -> None:
    assert Timeouts().fits(30)
    assert not Timeouts(connect=5, read=15).fits(30)
    timeout = Timeouts().httpx()
    assert timeout.connect == 3.0 and timeout.read == 10.0


def test_block_kit_never_carries_a_token() -> None:
    task_token = "AQCEAAAAKgAAAAMAAAAAAAAAAf" + "x" * 600
    summary = slack.InvoiceSummary(
        invoice_id="INV-1", vendor_name="Acme", amount=Decimal("10"), currency="EUR"
    )
    blocks = slack.approval_blocks(summary, "apr_12345678")
    values = [e["value"] for e in blocks[1]["elements"]]
    assert values == ["apr_12345678", "apr_12345678"]
    assert "token" not in json.dumps(blocks).lower()
    base = {"operation": "post_approval_request", "business_key": "erp:INV-1", "channel": "C0123456789",
            "invoice": summary.model_dump(mode="json")}  # fmt: skip
    with pytest.raises(ValidationError):
        slack.SlackConnector.request_adapter().validate_python({**base, "approval_id": task_token})
    with pytest.raises(ValidationError):
        slack.SlackConnector.request_adapter().validate_python(
            {**base, "approval_id": "apr_12345678", "task_token": task_token}
        )


def test_minor_units() -> None:
    assert payments.to_minor(Decimal("1234.50"), "EUR") == 123450
    assert payments.to_minor(Decimal("500"), "JPY") == 500
    assert payments.to_minor(Decimal("1.234"), "KWD") == 1234
    assert payments.from_minor(123450, "EUR") == Decimal("1234.50")
    with pytest.raises(ValidationError):
        payments.CreatePayment(
            operation="create_payment", business_key="erp:I-1", invoice_id="I-1", vendor_id="V",
            amount=Decimal("1.5"), currency="JPY",
        )  # fmt: skip


def test_derived_idempotency_key_is_stable_and_opaque() -> None:
    key = derived_idempotency_key("erp:INV-1001", "create_payment")
    assert key == derived_idempotency_key("erp:INV-1001", "create_payment")
    assert key != derived_idempotency_key("erp:INV-1001", "cancel_payment")
    assert "INV" not in key and len(key) <= 255


def test_erp_field_mapping_round_trip() -> None:
    config = erp.ErpSettings(
        field_map={"invoice_id": "number", "vendor_id": "supplier.id", "amount": "total"}
    )
    body = {"number": "INV-9", "supplier": {"id": "V-1"}, "vendor_name": "Acme", "total": "100.00",
            "currency": "USD", "invoice_date": "2024-01-02",
            "bank_account": "GB33BUKB20201555555555"}  # fmt: skip
    invoice = erp.invoice_from_erp(body, config, CONTEXT, account_key=lambda: FINGERPRINT_KEY)
    assert invoice.business_key == "erp:INV-9" and invoice.bank_account is not None
    out = erp.invoice_to_erp(invoice, config)
    assert out["number"] == "INV-9" and out["supplier"] == {"id": "V-1"} and out["total"] == "100.00"
    assert "bank_account" not in out


def test_invoice_model_rules() -> None:
    base = {"invoice_id": "I-1", "business_key": "erp:I-1", "vendor_id": "V", "vendor_name": "A",
            "amount": "10", "currency": "EUR", "invoice_date": "2024-01-02"}  # fmt: skip
    Invoice.model_validate(base)
    for bad in (
        {"tax_amount": "11"},
        {"due_date": "2024-01-01"},
        {"currency": "eur"},
        {"bank_account": "DE89"},
    ):
        with pytest.raises(ValidationError):
            Invoice.model_validate({**base, **bad})


def test_mime_parsing_of_an_inbound_invoice() -> None:
    message = EmailMessage()
    message["From"] = "Billing <billing@vendor.example>"
    message.set_content("<p>Invoice no: A-77<br>Amount: EUR 2,500.00<br>Date: 2024-03-05</p>", subtype="html")
    message.add_attachment(b"pdf", maintype="application", subtype="pdf", filename="a.pdf")
    parsed = email.parse_message(message.as_bytes())

    parts = email.attachments(parsed)
    invoice, problems = email.invoice_from_message(
        parsed, parts, source="email", account_key=lambda: FINGERPRINT_KEY
    )

    assert problems == []
    assert invoice is not None
    assert (invoice.invoice_id, invoice.amount, invoice.currency) == ("A-77", Decimal("2500.00"), "EUR")
    assert invoice.vendor_id == "domain:vendor.example"
    assert [(c, f, p) for c, f, p in parts] == [("application/pdf", "a.pdf", b"pdf")]


def test_mime_json_attachment_wins_and_problems_are_named() -> None:
    message = EmailMessage()
    message["From"] = "x@vendor.example"
    message.set_content("see attachment")
    message.add_attachment(json.dumps({"invoice_id": "J-1", "amount": "5", "currency": "USD"}).encode(),
                           maintype="application", subtype="json", filename="inv.json")  # fmt: skip
    parsed = email.parse_message(message.as_bytes())

    invoice, problems = email.invoice_from_message(
        parsed, email.attachments(parsed), source="email", account_key=lambda: FINGERPRINT_KEY
    )

    assert invoice is None and problems == ["invoice_date"]


def test_template_rendering_is_safe() -> None:
    subject, text = email.render(
        "approval_request", {"invoice_id": "I-1\r\nBcc: evil@x", "vendor_name": "Acme"}
    )
    assert "\n" not in subject and "\r" not in subject
    assert "$amount" in text  # missing variables stay visible, no KeyError


@pytest.mark.parametrize(
    ("connector", "operations"),
    [
        (erp.ErpConnector, {"get_invoice", "post_invoice", "reverse_posting"}),
        (
            payments.PaymentsConnector,
            {"create_payment", "get_payment_status", "find_payment", "cancel_payment"},
        ),
        (
            slack.SlackConnector,
            {"post_approval_request", "update_decision", "post_reminder", "post_escalation"},
        ),
        (email.EmailConnector, {"send_email", "parse_inbound_invoice"}),
        (documents.DocumentsConnector, {"put_document", "get_document"}),
    ],
)
def test_each_connector_serves_the_operations_its_methods_declare(
    connector: type[Connector], operations: set[str]
) -> None:
    assert set(connector.operations()) == operations
    adapter = connector.request_adapter()
    for operation, (model, _) in connector.operations().items():
        # The derived union routes each operation to its model (a missing field names it)
        with pytest.raises(ValidationError) as raised:
            adapter.validate_python({"operation": operation})
        assert all(
            error["loc"][0] == operation and error["loc"][1] in model.model_fields
            for error in raised.value.errors()
        )
    with pytest.raises(ValidationError):
        adapter.validate_python({"operation": "no_such_operation"})


def test_a_connector_without_operations_or_with_one_served_twice_is_refused() -> None:
    class Empty(Connector):
        name = "empty"
        version = "0"

    with pytest.raises(TypeError, match="no operations"):
        Empty.operations()

    class Twice(Connector):
        name = "twice"
        version = "0"

        def get_invoice(self, request: erp.GetInvoice) -> erp.InvoiceResult:
            raise NotImplementedError

        def get_invoice_again(self, request: erp.GetInvoice) -> erp.InvoiceResult:
            raise NotImplementedError

    with pytest.raises(TypeError, match="served twice"):
        Twice.operations()
