"""Contract tests: the catalog against real HTTP servers on 127.0.0.1 answering as the
providers do (Stripe's error object, Slack's ``ok``/``error`` and 429 + Retry-After, a
generic ERP), secrets from moto Secrets Manager, idempotency and breaker on moto DynamoDB."""

from __future__ import annotations

import logging
import time
from decimal import Decimal
from typing import Any

import pytest
from connector_api import FakeApi, Received, Reply  # type: ignore[import-not-found]

from aios.connectors.catalog import erp, payments, slack
from aios.connectors.kit import derived_idempotency_key
from aios.errors import (
    ConnectorAuthFailed,
    ConnectorRejected,
    ConnectorThrottled,
    ConnectorUnavailable,
)
from aios.invoices import bank_account_reference
from aios.observability import logger

ERP_KEY = "erp-api-key-0123456789-SECRET"
STRIPE_KEY = "sk_test_51Hxyz-SECRET-payments"
SLACK_TOKEN = "xoxb-1111-2222-SECRETTOKEN"
IBAN = "DE89 3704 0044 0532 0130 00"
FINGERPRINT_KEY = b"contract-test-fingerprint-key-0123456789"


def intent(status: str = "processing", amount: int = 123450, **extra: Any) -> dict[str, Any]:
    """A payment intent as Stripe answers it (abridged)."""
    return {
        "id": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
        "object": "payment_intent",
        "amount": amount,
        "currency": "eur",
        "status": status,
        "livemode": False,
        "metadata": {"business_key": "erp:INV-1001", "invoice_id": "INV-1001", "vendor_id": "V-42"},
        **extra,
    }


def stripe_error(
    kind: str, code: str | None = None, message: str = "Jane Doe's card was declined"
) -> dict[str, Any]:
    return {"error": {"type": kind, "code": code, "message": message, "request_log_url": "https://x"}}


CREATE = {
    "operation": "create_payment",
    "business_key": "erp:INV-1001",
    "invoice_id": "INV-1001",
    "vendor_id": "V-42",
    "amount": "1234.50",
    "currency": "EUR",
}


@pytest.fixture
def pay(api: FakeApi, secrets: Any, kit: dict[str, Any]) -> payments.PaymentsConnector:
    secrets.put("payments", {"base_url": api.url, "token": STRIPE_KEY})
    return payments.PaymentsConnector(**kit)


@pytest.fixture
def erp_connector(api: FakeApi, secrets: Any, kit: dict[str, Any]) -> erp.ErpConnector:
    secrets.put(
        "erp",
        {
            "base_url": api.url + "/api",
            "api_key": ERP_KEY,
            "settings": {
                "field_map": {
                    "invoice_id": "number",
                    "vendor_id": "supplier.id",
                    "vendor_name": "supplier.name",
                    "amount": "total",
                    "tax_amount": "tax",
                    "invoice_date": "issued",
                    "due_date": "due",
                    "bank_account": "supplier.iban",
                },
                "posting_id_field": "document.id",
            },
        },
    )
    return erp.ErpConnector(**kit, fingerprint_key=lambda: FINGERPRINT_KEY)


@pytest.fixture
def slack_connector(api: FakeApi, secrets: Any, kit: dict[str, Any]) -> slack.SlackConnector:
    secrets.put("slack", {"base_url": api.url + "/api", "token": SLACK_TOKEN})
    return slack.SlackConnector(**kit)


# -- payments -----------------------------------------------------------------------------
def test_create_payment_sends_auth_form_and_idempotency_key(
    api: FakeApi, pay: payments.PaymentsConnector
) -> None:
    api.route("POST", "/v1/payment_intents", Reply(200, intent()))

    result = pay.create_payment(payments.CreatePayment.model_validate(CREATE))

    (request,) = api.received
    assert request.headers["authorization"] == f"Bearer {STRIPE_KEY}"
    assert request.headers["idempotency-key"].startswith("aios-")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.form() == {
        "amount": "123450",
        "currency": "eur",
        "metadata[business_key]": "erp:INV-1001",
        "metadata[invoice_id]": "INV-1001",
        "metadata[vendor_id]": "V-42",
    }
    assert result.payment_id == "pi_3MtwBwLkdIwHu7ix28a3tqPa"
    assert result.amount == Decimal("1234.50")
    assert (result.connector, result.connector_version) == ("payments", payments.VERSION)


def test_repeated_create_payment_reaches_the_api_once(api: FakeApi, pay: payments.PaymentsConnector) -> None:
    api.route("POST", "/v1/payment_intents", Reply(200, intent()))
    request = payments.CreatePayment.model_validate(CREATE)

    first = pay.create_payment(request)
    second = pay.create_payment(request)
    # Another instance (cold start) with the same stores: still one call.
    third = payments.PaymentsConnector(
        credentials=pay.credentials, breaker=pay.breaker, idempotency_store=pay.idempotency_store
    ).create_payment(request)

    assert api.hits("POST", "/v1/payment_intents") == 1
    assert first == second == third


def test_idempotency_key_is_stable_and_distinct_per_business_key(
    api: FakeApi, pay: payments.PaymentsConnector
) -> None:
    api.route("POST", "/v1/payment_intents", Reply(200, intent()))
    pay.create_payment(payments.CreatePayment.model_validate(CREATE))
    pay.create_payment(payments.CreatePayment.model_validate({**CREATE, "business_key": "erp:INV-1002"}))

    keys = [r.headers["idempotency-key"] for r in api.received]
    assert len(set(keys)) == 2
    assert keys[0] == derived_idempotency_key("erp:INV-1001", "create_payment")


@pytest.mark.parametrize(
    ("reply", "error", "fragment"),
    [
        (
            Reply(429, stripe_error("rate_limit_error"), {"Retry-After": "7"}),
            ConnectorThrottled,
            "retry after 7s",
        ),
        (Reply(500, stripe_error("api_error")), ConnectorUnavailable, "HTTP 500 (api_error)"),
        (Reply(503, {}), ConnectorUnavailable, "HTTP 503"),
        (
            Reply(402, stripe_error("card_error", "card_declined")),
            ConnectorRejected,
            "card_error/card_declined",
        ),
        (
            Reply(400, stripe_error("invalid_request_error", "parameter_missing")),
            ConnectorRejected,
            "HTTP 400",
        ),
        (Reply(409, stripe_error("idempotency_error")), ConnectorRejected, "idempotency_error"),
        (Reply(200, raw=b"<html>gateway</html>"), ConnectorRejected, "not a JSON object (text/html)"),
        (Reply(200, {"id": "pi_1", "object": "charge"}), ConnectorRejected, "invalid response: fields"),
    ],
)
def test_payments_errors_are_mapped(
    api: FakeApi, pay: payments.PaymentsConnector, reply: Reply, error: type[Exception], fragment: str
) -> None:
    api.route("POST", "/v1/payment_intents", reply)

    with pytest.raises(error) as raised:
        pay.create_payment(payments.CreatePayment.model_validate(CREATE))

    message = str(raised.value)
    assert fragment in message
    assert f"payments create_payment -> {api.target}" in message
    assert "Jane Doe" not in message  # the provider's free text (personal data) is never kept
    assert STRIPE_KEY not in message
    if isinstance(raised.value, ConnectorThrottled):
        assert raised.value.retry_after_seconds == 7
    # A failure is not recorded as done: the retry calls the provider again.
    api.route("POST", "/v1/payment_intents", Reply(200, intent()))
    assert pay.create_payment(payments.CreatePayment.model_validate(CREATE)).status == "processing"


def test_auth_failure_refreshes_the_secret_once(
    api: FakeApi, secrets: Any, pay: payments.PaymentsConnector
) -> None:
    # Given the key was rotated after the connector cached the old one
    api.route("GET", "/v1/payment_intents/pi_1", Reply(200, intent(id="pi_1")))
    pay.get_payment_status(payments.GetPaymentStatus(operation="get_payment_status", payment_id="pi_1"))
    secrets.put("payments", {"base_url": api.url, "token": "sk_test_rotated"})

    def only_new_key(request: Received) -> Reply:
        if request.headers["authorization"] != "Bearer sk_test_rotated":
            return Reply(401, stripe_error("invalid_request_error", message="Invalid API Key provided"))
        return Reply(200, intent(id="pi_1", status="succeeded"))

    api.route("GET", "/v1/payment_intents/pi_1", only_new_key)

    # When a call is refused, the kit re-reads the secret (force_fetch) and retries once
    result = pay.get_payment_status(
        payments.GetPaymentStatus(operation="get_payment_status", payment_id="pi_1")
    )

    assert result.status == "succeeded"
    assert [r.headers["authorization"] for r in api.received[1:]] == [
        f"Bearer {STRIPE_KEY}",
        "Bearer sk_test_rotated",
    ]


def test_auth_failure_after_refresh_is_auth_failed(api: FakeApi, pay: payments.PaymentsConnector) -> None:
    api.route("GET", "/v1/payment_intents/pi_1", Reply(401, stripe_error("invalid_request_error")))

    with pytest.raises(ConnectorAuthFailed, match="HTTP 401"):
        pay.get_payment_status(payments.GetPaymentStatus(operation="get_payment_status", payment_id="pi_1"))
    assert api.hits("GET", "/v1/payment_intents/pi_1") == 2


def test_read_timeout_is_unavailable_quickly(api: FakeApi, pay: payments.PaymentsConnector) -> None:
    api.route("GET", "/v1/payment_intents/pi_1", Reply(200, intent(), delay=3.0))

    started = time.monotonic()
    with pytest.raises(ConnectorUnavailable, match="timed out"):
        pay.get_payment_status(payments.GetPaymentStatus(operation="get_payment_status", payment_id="pi_1"))
    assert time.monotonic() - started < 1.5  # read timeout 0.5 s


def test_connection_refused_is_unavailable(secrets: Any, kit: dict[str, Any]) -> None:
    secrets.put("payments", {"base_url": "http://127.0.0.1:9", "token": STRIPE_KEY})
    connector = payments.PaymentsConnector(**kit)

    with pytest.raises(ConnectorUnavailable, match="transport error"):
        connector.get_payment_status(
            payments.GetPaymentStatus(operation="get_payment_status", payment_id="pi_1")
        )


def test_cancel_payment(api: FakeApi, pay: payments.PaymentsConnector) -> None:
    api.route("POST", "/v1/payment_intents/pi_1/cancel", Reply(200, intent(id="pi_1", status="canceled")))

    result = pay.cancel_payment(
        payments.CancelPayment(operation="cancel_payment", business_key="erp:INV-1001", payment_id="pi_1")
    )

    assert result.status == "canceled"
    (request,) = api.received
    assert request.form() == {"cancellation_reason": "abandoned"}
    assert request.headers["idempotency-key"] == derived_idempotency_key("erp:INV-1001", "cancel_payment")


# -- ERP ----------------------------------------------------------------------------------
ERP_INVOICE = {
    "number": "INV-1001",
    "supplier": {"id": "V-42", "name": "Acme GmbH", "iban": IBAN},
    "total": "1234.50",
    "tax": "197.10",
    "currency": "EUR",
    "issued": "2024-05-01",
    "due": "2024-05-31",
    "lines": [{"description": "Widgets", "quantity": "10", "amount": "1037.40"}],
}


def test_erp_get_invoice_maps_fields_and_sends_api_key(api: FakeApi, erp_connector: erp.ErpConnector) -> None:
    api.route("GET", "/api/invoices/INV-1001", Reply(200, ERP_INVOICE))

    result = erp_connector.get_invoice(erp.GetInvoice(operation="get_invoice", invoice_id="INV-1001"))

    assert api.received[0].headers["x-api-key"] == ERP_KEY
    invoice = result.invoice
    assert invoice.business_key == "erp:INV-1001"
    assert (invoice.vendor_id, invoice.vendor_name, invoice.amount) == (
        "V-42",
        "Acme GmbH",
        Decimal("1234.50"),
    )
    assert invoice.bank_account == bank_account_reference(IBAN, FINGERPRINT_KEY)
    assert IBAN not in result.model_dump_json()
    assert result.connector == "erp"


def test_erp_invalid_invoice_is_rejected_naming_fields(api: FakeApi, erp_connector: erp.ErpConnector) -> None:
    api.route("GET", "/api/invoices/INV-1001", Reply(200, {**ERP_INVOICE, "currency": "euro", "total": None}))

    with pytest.raises(ConnectorRejected) as raised:
        erp_connector.get_invoice(erp.GetInvoice(operation="get_invoice", invoice_id="INV-1001"))
    assert "amount" in str(raised.value) and "currency" in str(raised.value)
    assert "Acme" not in str(raised.value)


def test_erp_post_invoice_is_idempotent_and_mapped(api: FakeApi, erp_connector: erp.ErpConnector) -> None:
    api.route("GET", "/api/invoices/INV-1001", Reply(200, ERP_INVOICE))
    api.route(
        "POST",
        "/api/invoices/INV-1001/postings",
        Reply(201, {"document": {"id": 5100042}, "status": "posted"}),
    )
    invoice = erp_connector.get_invoice(
        erp.GetInvoice(operation="get_invoice", invoice_id="INV-1001")
    ).invoice
    request = erp.PostInvoice.model_validate(
        {
            "operation": "post_invoice",
            "business_key": invoice.business_key,
            "invoice": invoice.model_dump(mode="json"),
        }
    )

    first = erp_connector.post_invoice(request)
    second = erp_connector.post_invoice(request)

    assert first == second
    assert first.posting_id == "5100042"
    assert api.hits("POST", "/api/invoices/INV-1001/postings") == 1
    sent = next(r for r in api.received if r.method == "POST")
    assert sent.headers["idempotency-key"] == derived_idempotency_key("erp:INV-1001", "post_invoice")
    body = sent.json()
    assert body["number"] == "INV-1001" and body["supplier"] == {"id": "V-42", "name": "Acme GmbH"}
    assert "bank_account" not in body and "iban" not in str(body)


def test_erp_reverse_posting(api: FakeApi, erp_connector: erp.ErpConnector) -> None:
    api.route(
        "POST", "/api/postings/5100042/reversal", Reply(200, {"reversal_id": "R-1", "status": "reversed"})
    )

    result = erp_connector.reverse_posting(
        erp.ReversePosting(
            operation="reverse_posting",
            business_key="erp:INV-1001",
            posting_id="5100042",
            reason="payment failed",
        )
    )

    assert (result.reversal_id, result.status) == ("R-1", "reversed")
    assert api.received[0].json() == {"reason": "payment failed"}


# -- Slack --------------------------------------------------------------------------------
SUMMARY = {"invoice_id": "INV-1001", "vendor_name": "Acme <GmbH>", "amount": "1234.50", "currency": "EUR"}
APPROVAL = {
    "operation": "post_approval_request",
    "business_key": "erp:INV-1001",
    "approval_id": "apr_7f3c2b9e41d0",
    "channel": "C0123456789",
    "invoice": SUMMARY,
}


def posted(request: Received) -> Reply:
    body = request.json()
    return Reply(200, {"ok": True, "channel": body["channel"], "ts": "1503435956.000247", "message": {}})


def test_slack_approval_request_posts_block_kit_with_bearer(
    api: FakeApi, slack_connector: slack.SlackConnector
) -> None:
    api.route("POST", "/api/chat.postMessage", posted)

    result = slack_connector.post_approval_request(
        slack.SlackConnector.request_adapter().validate_python(APPROVAL)
    )

    (request,) = api.received
    assert request.headers["authorization"] == f"Bearer {SLACK_TOKEN}"
    assert request.headers["content-type"].startswith("application/json")
    buttons = request.json()["blocks"][1]["elements"]
    assert [(b["action_id"], b["value"]) for b in buttons] == [
        ("approve", "apr_7f3c2b9e41d0"),
        ("reject", "apr_7f3c2b9e41d0"),
    ]
    assert "Acme &lt;GmbH&gt;" in request.json()["blocks"][0]["text"]["text"]
    assert (result.channel, result.ts) == ("C0123456789", "1503435956.000247")
    # posted once per approval id
    slack_connector.post_approval_request(slack.SlackConnector.request_adapter().validate_python(APPROVAL))
    assert api.hits("POST", "/api/chat.postMessage") == 1


def test_slack_update_and_thread_reminders(api: FakeApi, slack_connector: slack.SlackConnector) -> None:
    api.route("POST", "/api/chat.update", posted)
    api.route("POST", "/api/chat.postMessage", posted)
    common = {"business_key": "erp:INV-1001", "channel": "C0123456789"}

    slack_connector.update_decision(
        slack.UpdateDecision.model_validate(
            {**common, "operation": "update_decision", "ts": "1503435956.000247", "decision": "approved",
             "decided_by": "U0G9QF9C6", "invoice": SUMMARY}
        )
    )  # fmt: skip
    for sequence, operation in ((0, "post_reminder"), (1, "post_reminder"), (0, "post_escalation")):
        slack_connector.post_reminder(
            slack.PostReminder.model_validate(
                {**common, "operation": operation, "thread_ts": "1503435956.000247", "sequence": sequence,
                 "mention": ["U0G9QF9C6"]}
            )
        )  # fmt: skip

    update, *threads = [r.json() for r in api.received]
    assert update["ts"] == "1503435956.000247" and "actions" not in str(update["blocks"])
    assert [t["thread_ts"] for t in threads] == ["1503435956.000247"] * 3
    assert threads[2]["reply_broadcast"] is True and "<@U0G9QF9C6>" in threads[2]["text"]


@pytest.mark.parametrize(
    ("reply", "error", "fragment"),
    [
        (
            Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"}),
            ConnectorThrottled,
            "HTTP 429",
        ),
        (
            Reply(200, {"ok": False, "error": "ratelimited"}, {"Retry-After": "5"}),
            ConnectorThrottled,
            "ratelimited",
        ),
        (Reply(200, {"ok": False, "error": "invalid_auth"}), ConnectorAuthFailed, "invalid_auth"),
        (Reply(200, {"ok": False, "error": "token_revoked"}), ConnectorAuthFailed, "token_revoked"),
        (Reply(200, {"ok": False, "error": "not_authed"}), ConnectorAuthFailed, "not_authed"),
        (Reply(200, {"ok": False, "error": "channel_not_found"}), ConnectorRejected, "channel_not_found"),
        (Reply(200, {"ok": False, "error": "internal_error"}), ConnectorUnavailable, "internal_error"),
        (Reply(502, raw=b"Bad Gateway"), ConnectorUnavailable, "HTTP 502"),
        (Reply(200, {"ok": True}), ConnectorRejected, "invalid response"),
    ],
)
def test_slack_errors_are_mapped(
    api: FakeApi, slack_connector: slack.SlackConnector, reply: Reply, error: type[Exception], fragment: str
) -> None:
    api.route("POST", "/api/chat.postMessage", reply)

    with pytest.raises(error, match=fragment) as raised:
        slack_connector.post_approval_request(
            slack.SlackConnector.request_adapter().validate_python(APPROVAL)
        )
    if isinstance(raised.value, ConnectorThrottled):
        assert raised.value.retry_after_seconds in (30, 5)
    assert SLACK_TOKEN not in str(raised.value)


# -- no secret in any log line ------------------------------------------------------------
def test_no_secret_in_any_log_line(  # noqa: PLR0917 - fixtures
    api: FakeApi,
    pay: payments.PaymentsConnector,
    slack_connector: slack.SlackConnector,
    erp_connector: erp.ErpConnector,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    logger.setLevel("DEBUG")
    try:
        api.route("POST", "/v1/payment_intents", Reply(200, intent()))
        api.route("GET", "/v1/payment_intents/pi_1", Reply(401, stripe_error("authentication_error")))
        api.route("POST", "/api/chat.postMessage", Reply(200, {"ok": False, "error": "invalid_auth"}))
        api.route("GET", "/api/invoices/INV-1001", Reply(500, {"error": "boom"}))
        pay.create_payment(payments.CreatePayment.model_validate(CREATE))
        with pytest.raises(ConnectorAuthFailed):
            pay.get_payment_status(
                payments.GetPaymentStatus(operation="get_payment_status", payment_id="pi_1")
            )
        with pytest.raises(ConnectorAuthFailed):
            slack_connector.post_approval_request(
                slack.SlackConnector.request_adapter().validate_python(APPROVAL)
            )
        with pytest.raises(ConnectorUnavailable):
            erp_connector.get_invoice(erp.GetInvoice(operation="get_invoice", invoice_id="INV-1001"))
    finally:
        logger.setLevel("INFO")

    output = capsys.readouterr()
    logged = output.out + output.err + caplog.text
    assert "connector call" in logged  # the kit did log
    for secret in (STRIPE_KEY, SLACK_TOKEN, ERP_KEY):
        assert secret not in logged
