"""The sandbox providers of the local mode, driven by the real connector Lambdas.

One ``aios local up`` for the module, on the default platform plus the catalog connectors it
does not deploy (``catalog_platform.py``); the connectors read the secrets the local deploy
created, which point at ``{api}/_sandbox/<connector>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from infrastructure.local.harness import LocalProcess, sign_slack, slack_action_body
from infrastructure.local.sandbox import Sandbox, seed_catalog

ENV = {"AIOS_LOCAL_TIME_SCALE": "0.01"}
CHANNEL = "C0APPROVALS"


@pytest.fixture(scope="module")
def local() -> Iterator[LocalProcess]:
    process = LocalProcess.start(env=ENV, platform="tests/integration/local/catalog_platform.py:PLATFORM")
    try:
        yield process
    finally:
        status = process.stop(timeout=10)
        assert status == 0, "".join(process.output[-40:])


@pytest.fixture(autouse=True)
def _reset(request: pytest.FixtureRequest) -> None:
    if "local" not in request.fixturenames:
        return  # an in-process Sandbox test: no local mode to reset
    local: LocalProcess = request.getfixturevalue("local")
    status, _ = local.sandbox("POST", "reset")
    assert status == 200


def invoke(local: LocalProcess, function: str, payload: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """Invoke a platform function on the embedded Lambda: (FunctionError, decoded payload)."""
    response = local.client("lambda").invoke(
        FunctionName=f"aios-local-{function}", Payload=json.dumps(payload).encode()
    )
    return response.get("FunctionError"), json.loads(response["Payload"].read())


def payment(business_key: str, invoice_id: str, amount: str = "1234.50") -> dict[str, Any]:
    return {
        "operation": "create_payment",
        "business_key": business_key,
        "invoice_id": invoice_id,
        "vendor_id": "V00001",
        "amount": amount,
        "currency": "EUR",
    }


# -- unit: the catalog and the secret shapes ------------------------------------------------------
def test_seed_catalog_is_deterministic_with_planted_anomalies() -> None:
    catalog = seed_catalog()
    ids = [invoice["invoice_id"] for invoice in catalog.invoices]
    assert ids == [f"INV-{n}" for n in range(2001, 2021)]
    assert catalog.anomalies == {
        "INV-2002": "amount_outlier",
        "INV-2004": "round_amount",
        "INV-2005": "bank_account_changed",
        "INV-2015": "odd_tax_ratio",
        "INV-2017": "weekend_posting",
    }
    first = catalog.invoices[0]
    assert first["business_key"] == "erp:INV-2001"
    # Raw, as an ERP holds it: the ERP connector references it under the fingerprint key.
    assert first["bank_account"][:2].isalpha() and not first["bank_account"].startswith("hmac-sha256:")
    assert {"vendor_mean_log_amount", "vendor_currency", "vendor_tax_rate"} <= set(first)


def test_credentials_point_at_the_sandbox() -> None:
    secrets = Sandbox().credentials("http://127.0.0.1:9", ["erp", "payments", "slack", "email", "erp"])
    assert secrets["erp"]["base_url"] == "http://127.0.0.1:9/_sandbox/erp"
    assert secrets["payments"]["token"].startswith("sk_test_")
    assert secrets["slack"]["token"].startswith("xoxb-")
    assert "@" in secrets["email"]["settings"]["from_address"]


# -- through the real connectors ----------------------------------------------------------------
def test_erp_get_invoice_through_the_connector(local: LocalProcess) -> None:
    error, result = invoke(local, "erp-connector", {"operation": "get_invoice", "invoice_id": "INV-2001"})
    assert error is None, result
    invoice = result["invoice"]
    assert invoice["invoice_id"] == "INV-2001"
    assert invoice["business_key"] == "erp:INV-2001"
    assert invoice["vendor_currency"] and invoice["vendor_invoice_count"] > 0

    error, result = invoke(local, "erp-connector", {"operation": "get_invoice", "invoice_id": "INV-9999"})
    assert error == "Unhandled" and result["errorType"] == "Connector.Rejected", result


def test_erp_post_and_reverse_are_idempotent(local: LocalProcess) -> None:
    _, fetched = invoke(local, "erp-connector", {"operation": "get_invoice", "invoice_id": "INV-2003"})
    post = {"operation": "post_invoice", "business_key": "erp:INV-2003", "invoice": fetched["invoice"]}
    error, first = invoke(local, "erp-connector", post)
    assert error is None, first
    _, second = invoke(local, "erp-connector", post)
    assert second["posting_id"] == first["posting_id"]
    reverse = {
        "operation": "reverse_posting",
        "business_key": "erp:INV-2003",
        "posting_id": first["posting_id"],
        "reason": "payment refused",
    }
    error, reversal = invoke(local, "erp-connector", reverse)
    assert error is None, reversal
    assert reversal["status"] == "reversed"
    books = local.erp_postings()
    assert [p["posting_id"] for p in books["postings"]] == [first["posting_id"]]
    assert books["postings"][0]["status"] == "reversed"
    assert [r["reversal_id"] for r in books["reversals"]] == [reversal["reversal_id"]]


def test_erp_honours_the_idempotency_key_over_http(local: LocalProcess) -> None:
    token = local_secret(local, "erp")["token"]
    headers = {
        "content-type": "application/json",
        "Authorization": f"Bearer {token}",
        "Idempotency-Key": "k1",
    }
    body = json.dumps({"invoice_id": "INV-2004"}).encode()
    path = "/_sandbox/erp/invoices/INV-2004/postings"
    first = local.request("POST", path, body, headers)
    again = local.request("POST", path, body, headers)
    assert first[0] == 201 and again[0] == 201
    assert json.loads(first[2])["posting_id"] == json.loads(again[2])["posting_id"]
    other = local.request("POST", path, body, {**headers, "Idempotency-Key": "k2"})
    assert other[0] == 409 and json.loads(other[2])["code"] == "duplicate_posting"
    assert local.request("GET", "/_sandbox/erp/invoices/INV-2004", None, {})[0] == 401


def test_erp_admin_adds_invoices(local: LocalProcess) -> None:
    invoice = {**seed_catalog().invoices[0], "invoice_id": "INV-7001", "amount": 99.5, "tax_amount": 0}
    invoice.pop("business_key")
    status, answer = local.sandbox("POST", "erp/invoices", [invoice])
    assert status == 200 and answer == {"invoices": ["INV-7001"]}
    error, result = invoke(local, "erp-connector", {"operation": "get_invoice", "invoice_id": "INV-7001"})
    assert error is None, result
    assert result["invoice"]["business_key"] == "erp:INV-7001"
    status, answer = local.sandbox("POST", "erp/invoices", {"invoice_id": "INV-7002"})
    assert status == 400


def test_payment_created_once_per_business_key(local: LocalProcess) -> None:
    error, first = invoke(local, "payments-connector", payment("erp:INV-2006", "INV-2006"))
    assert error is None, first
    error, second = invoke(local, "payments-connector", payment("erp:INV-2006", "INV-2006"))
    assert error is None, second
    assert second["payment_id"] == first["payment_id"]
    intents = local.payment_intents()
    assert [i["id"] for i in intents] == [first["payment_id"]]
    assert intents[0]["amount"] == 123450 and intents[0]["currency"] == "eur"
    assert intents[0]["metadata"]["business_key"] == "erp:INV-2006"

    error, status = invoke(
        local, "payments-connector", {"operation": "get_payment_status", "payment_id": first["payment_id"]}
    )
    assert error is None and status["status"] == intents[0]["status"], status
    error, canceled = invoke(
        local,
        "payments-connector",
        {"operation": "cancel_payment", "business_key": "erp:INV-2006", "payment_id": first["payment_id"]},
    )
    assert error is None and canceled["status"] == "canceled", canceled


def test_payment_created_before_the_call_failed_is_found_and_cancelled(local: LocalProcess) -> None:
    # Given a processor that accepts the payment, then answers 500 (a 5xx after commit)
    local.sandbox_faults({"payments": {"status": 500, "times": 1, "after_commit": True}})

    # When the connector creates the payment
    error, failed = invoke(local, "payments-connector", payment("erp:INV-2008", "INV-2008"))

    # Then the call failed, yet the processor holds the payment
    assert error == "Unhandled" and failed["errorType"] == "Connector.Unavailable", failed
    [intent] = local.payment_intents()
    # ... which the lookup by business key finds (and no other invoice's payment)
    error, found = invoke(
        local, "payments-connector", {"operation": "find_payment", "business_key": "erp:INV-2008"}
    )
    assert error is None, found
    assert (found["found"], found["payment_id"], found["status"]) == (True, intent["id"], intent["status"])
    error, none = invoke(
        local, "payments-connector", {"operation": "find_payment", "business_key": "erp:INV-2009"}
    )
    assert error is None and none["found"] is False and none["payment_id"] is None, none
    # ... and cancels
    error, canceled = invoke(
        local,
        "payments-connector",
        {"operation": "cancel_payment", "business_key": "erp:INV-2008", "payment_id": found["payment_id"]},
    )
    assert error is None and canceled["status"] == "canceled", canceled


def test_sandbox_search_answers_stripe_metadata_queries() -> None:
    # Given two intents of two business keys, created in-process
    sandbox = Sandbox()
    for key in ("erp:INV-1", "erp:INV-2"):
        form = urllib.parse.urlencode({"amount": "100", "currency": "eur", "metadata[business_key]": key})
        status, _, _ = sandbox.handle(
            "POST",
            "/_sandbox/payments/v1/payment_intents",
            "",
            [("authorization", "Bearer sk")],
            form.encode(),
        )
        assert status == 200

    def search(query: str) -> tuple[int, Any]:
        status, _, body = sandbox.handle(
            "GET",
            "/_sandbox/payments/v1/payment_intents/search",
            urllib.parse.urlencode({"query": query}),
            [("authorization", "Bearer sk")],
            b"",
        )
        return status, json.loads(body)

    # Then a metadata query finds exactly the matching one, in Stripe's search_result shape
    status, found = search("metadata['business_key']:'erp:INV-2'")
    assert status == 200 and found["object"] == "search_result"
    assert [i["metadata"]["business_key"] for i in found["data"]] == ["erp:INV-2"]
    assert search("metadata['business_key']:'erp:INV-3'")[1]["data"] == []
    assert search("amount>10")[0] == 400


def test_stripe_idempotency_key_over_http(local: LocalProcess) -> None:
    token = local_secret(local, "payments")["token"]
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "Authorization": f"Bearer {token}",
        "Idempotency-Key": "same",
    }
    form = urllib.parse.urlencode({"amount": "500", "currency": "eur", "metadata[invoice_id]": "X"}).encode()
    first = local.request("POST", "/_sandbox/payments/v1/payment_intents", form, headers)
    again = local.request("POST", "/_sandbox/payments/v1/payment_intents", form, headers)
    assert first[0] == again[0] == 200
    assert json.loads(first[2])["id"] == json.loads(again[2])["id"]
    changed = form.replace(b"500", b"600")
    conflict = local.request("POST", "/_sandbox/payments/v1/payment_intents", changed, headers)
    assert conflict[0] == 400 and json.loads(conflict[2])["error"]["type"] == "idempotency_error"
    assert len(local.payment_intents()) == 1
    unauthenticated = local.request("POST", "/_sandbox/payments/v1/payment_intents", form, {})
    assert unauthenticated[0] == 401


def test_refused_payment_is_rejected(local: LocalProcess) -> None:
    local.refuse_payment("INV-2007")
    error, result = invoke(local, "payments-connector", payment("erp:INV-2007", "INV-2007"))
    assert error == "Unhandled" and result["errorType"] == "Connector.Rejected", result
    assert "card_declined" in result["errorMessage"]
    error, again = invoke(local, "payments-connector", payment("erp:INV-2007", "INV-2007"))
    assert result["errorType"] == again["errorType"] == "Connector.Rejected"
    assert local.payment_intents() == []


def test_slack_post_and_update(local: LocalProcess) -> None:
    request = {
        "operation": "post_approval_request",
        "business_key": "erp:INV-2002",
        "approval_id": "apr_0123456789",
        "channel": CHANNEL,
        "invoice": {
            "invoice_id": "INV-2002",
            "vendor_name": "Van Dijk",
            "amount": "2401.13",
            "currency": "CHF",
        },
    }
    error, posted = invoke(local, "slack-connector", request)
    assert error is None, posted
    assert posted["channel"] == CHANNEL and posted["ts"] == "1700000000.000100"
    assert local.approval_ids() == ["apr_0123456789"]

    update = {
        "operation": "update_decision",
        "business_key": "erp:INV-2002",
        "channel": CHANNEL,
        "ts": posted["ts"],
        "decision": "approved",
        "decided_by": "U0APPROVER",
        "invoice": request["invoice"],
    }
    error, updated = invoke(local, "slack-connector", update)
    assert error is None, updated
    [message] = local.slack_messages(CHANNEL)
    assert message["updated"] and "approved" in message["text"]

    no_auth = local.request(
        "POST", "/_sandbox/slack/chat.postMessage", b"{}", {"content-type": "application/json"}
    )
    assert json.loads(no_auth[2]) == {"ok": False, "error": "not_authed"}


def test_erp_fault_twice_then_success(local: LocalProcess) -> None:
    local.sandbox_faults({"erp": {"status": 503, "times": 2}})
    request = {"operation": "get_invoice", "invoice_id": "INV-2008"}
    for _ in range(2):
        error, result = invoke(local, "erp-connector", request)
        assert error == "Unhandled" and result["errorType"] == "Connector.Unavailable", result
    error, result = invoke(local, "erp-connector", request)
    assert error is None and result["invoice"]["invoice_id"] == "INV-2008", result
    assert local.sandbox_faults(None) == {}


def test_slack_rate_limit_fault(local: LocalProcess) -> None:
    local.sandbox_faults({"slack": {"status": 429, "times": 1, "retry_after": 3}})
    status, headers, body = local.request("POST", "/_sandbox/slack/chat.postMessage", b"{}", {})
    assert status == 429 and headers.get("Retry-After") == "3" and json.loads(body)["error"] == "ratelimited"
    # The next request is served normally (and refused: no token).
    status, _, body = local.request("POST", "/_sandbox/slack/chat.postMessage", b"{}", {})
    assert status == 200 and json.loads(body) == {"ok": False, "error": "not_authed"}


def test_platform_faults_endpoint_still_works(local: LocalProcess) -> None:
    local.set_faults({"erp-connector": {"kind": "error", "error": "Connector.Unavailable", "times": 1}})
    error, result = invoke(local, "erp-connector", {"operation": "get_invoice", "invoice_id": "INV-2001"})
    assert error == "Unhandled" and result["errorType"] == "Connector.Unavailable", result
    status, _, _ = local.request("DELETE", "/_aios/faults")
    assert status == 200


# -- harness helpers ------------------------------------------------------------------------------
def test_sign_slack_and_action_body() -> None:
    body = slack_action_body("apr_0123456789", "approve", "U0APPROVER", CHANNEL, "1700000000.000100")
    headers = sign_slack("s3cret", body, timestamp=1_700_000_000)
    expected = hmac.new(b"s3cret", b"v0:1700000000:" + body, hashlib.sha256).hexdigest()
    assert headers["X-Slack-Signature"] == f"v0={expected}"
    assert headers["X-Slack-Request-Timestamp"] == "1700000000"
    payload = json.loads(urllib.parse.parse_qs(body.decode())["payload"][0])
    assert payload["type"] == "block_actions"
    assert payload["actions"][0] == {
        **payload["actions"][0],
        "action_id": "approve",
        "value": "apr_0123456789",
    }
    assert payload["container"]["message_ts"] == "1700000000.000100"
    assert payload["response_url"].startswith("https://hooks.slack.com/")
    assert abs(int(sign_slack("x", b"")["X-Slack-Request-Timestamp"]) - time.time()) < 5


def local_secret(local: LocalProcess, connector: str) -> dict[str, Any]:
    value = local.client("secretsmanager").get_secret_value(SecretId=f"aios/connectors/{connector}")
    secret: dict[str, Any] = json.loads(value["SecretString"])
    return secret


def test_email_sends_through_ses_from_the_verified_sender(local: LocalProcess) -> None:
    request = {
        "operation": "send_email",
        "business_key": "erp:INV-2009",
        "template": "payment_advice",
        "to": ["vendor@example.com"],
        "variables": {"invoice_id": "INV-2009", "amount": "1937.37", "currency": "EUR"},
    }
    error, result = invoke(local, "email-connector", request)
    assert error is None, result
    assert result["message_id"]
