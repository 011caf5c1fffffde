"""The accounts-payable policy (``aios.payables``): validate, features, decide, complete.

No sockets, no AWS: the fingerprint store is a dict, the policy is built in the test, and
metrics are read from Powertools' in-memory metric set (cleared around every test).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from aios.config import settings, variable
from aios.errors import ValidationFailed
from aios.invoices import Invoice, InvoiceLine
from aios.observability import metrics
from aios.payables import (
    REQUEST,
    Claim,
    Complete,
    Decide,
    FingerprintStore,
    Ladder,
    Policy,
    ScoreInput,
    StepError,
    Validate,
    claim,
    complete,
    decide,
    features,
    fingerprint,
    validate,
)
from infrastructure.platform import PLATFORM
from infrastructure.platform.payables import APPROVALS, POLICY_ENVIRONMENT

LADDER = Ladder(remind_after_seconds=14400, escalate_after_seconds=72000, expire_after_seconds=172800)
POLICY = Policy(auto_approval_limit=Decimal("5000"), anomaly_threshold=0.5, ladder=LADDER)
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
KEY = b"unit-payables-fingerprint-key-0123456789ab"


def fingerprint_key() -> bytes:
    """The fingerprint key source ``validate`` is given (the function's reads its secret)."""
    return KEY


@pytest.fixture(autouse=True)
def _fresh_metrics() -> Iterator[None]:
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


class FakeFingerprints(FingerprintStore):
    """First-seen business key per fingerprint, in a dict (the conditional put's semantics)."""

    def __init__(self) -> None:
        self.first: dict[str, str] = {}

    def first_seen(self, fingerprint: str, business_key: str) -> str:
        return self.first.setdefault(fingerprint, business_key)


def an_invoice(invoice_id: str = "INV-1001", **changes: Any) -> Invoice:
    fields: dict[str, Any] = {
        "invoice_id": invoice_id,
        "business_key": f"erp:{invoice_id}",
        "vendor_id": "V00007",
        "vendor_name": "Harbor Freight Partners LLC",
        "amount": Decimal("1250.00"),
        "tax_amount": Decimal("250.00"),
        "currency": "SEK",
        "invoice_date": date(2024, 5, 13),
        "due_date": date(2024, 6, 12),
        "vendor_mean_log_amount": 7.1,
        "vendor_std_log_amount": 0.4,
        "vendor_invoice_count": 102,
        "vendor_currency": "SEK",
        "vendor_tax_rate": 0.25,
        "bank_account_changed": False,
        "days_since_last_invoice": 30,
        **changes,
    }
    return Invoice.model_validate(fields)


def validating(invoice: Invoice, business_key: str | None = None) -> Validate:
    return Validate(operation="validate", business_key=business_key or invoice.business_key, invoice=invoice)


def deciding(invoice: Invoice, score: float | None = 0.1, duplicate_of: str | None = None) -> Decide:
    return Decide(
        operation="decide",
        business_key=invoice.business_key,
        invoice=invoice,
        duplicate_of=duplicate_of,
        score=ScoreInput(score=score),
    )


def recorded() -> dict[str, list[float]]:
    """The metrics added so far, as CloudWatch would receive them (EMF), by name."""
    if not metrics.metric_set:
        return {}
    emf: dict[str, Any] = dict(metrics.serialize_metric_set())
    names = [m["Name"] for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    return {name: emf[name] if isinstance(emf[name], list) else [emf[name]] for name in names}


# -- validate ----------------------------------------------------------------------------------


def test_valid_invoice_has_its_features_and_no_duplicate() -> None:
    # Given an invoice whose lines and tax add up to its amount
    invoice = an_invoice(lines=[InvoiceLine(amount=Decimal("600.00")), InvoiceLine(amount=Decimal("400.00"))])

    # When it is validated
    validated = validate(validating(invoice), FakeFingerprints(), key=fingerprint_key)

    # Then it is valid, not a duplicate, and carries the model's features
    assert validated.outcome == "valid"
    assert validated.business_key == "erp:INV-1001"
    assert validated.duplicate_of is None
    assert validated.features.amount == 1250.0
    assert validated.features.vendor_tax_rate == 0.25


def test_totals_within_a_cent_of_rounding_are_accepted() -> None:
    # Given lines plus tax one cent below the amount
    invoice = an_invoice(lines=[InvoiceLine(amount=Decimal("999.99"))])

    # When / Then it is valid
    assert validate(validating(invoice), FakeFingerprints(), key=fingerprint_key).outcome == "valid"


def test_totals_that_do_not_add_up_fail_validation() -> None:
    # Given lines plus tax that differ from the gross amount by more than rounding
    invoice = an_invoice(lines=[InvoiceLine(amount=Decimal("900.00"))])

    # When it is validated / Then Validation.Failed says why
    with pytest.raises(ValidationFailed, match="totals do not add up") as raised:
        validate(validating(invoice), FakeFingerprints(), key=fingerprint_key)
    assert raised.value.error_name == "Validation.Failed"


def test_business_key_other_than_the_workflows_fails_validation() -> None:
    # Given the workflow works on erp:INV-1002 but the ERP returned INV-1001
    invoice = an_invoice("INV-1001")
    store = FakeFingerprints()

    # When it is validated / Then it fails, and the fingerprint is not claimed
    with pytest.raises(ValidationFailed, match="business key"):
        validate(validating(invoice, business_key="erp:INV-1002"), store, key=fingerprint_key)
    assert store.first == {}


def test_same_vendor_amount_currency_and_date_under_another_key_is_a_duplicate() -> None:
    # Given an invoice already seen, and a re-keyed copy of it
    store = FakeFingerprints()
    first = validate(validating(an_invoice("INV-1001")), store, key=fingerprint_key)
    copy = an_invoice("INV-1999")

    # When the copy is validated
    validated = validate(validating(copy), store, key=fingerprint_key)

    # Then it is flagged (not rejected) as a duplicate of the first
    assert first.duplicate_of is None
    assert validated.outcome == "valid"
    assert validated.duplicate_of == "erp:INV-1001"
    # ... and the first one validated again (a retried step) is not its own duplicate
    assert validate(validating(an_invoice("INV-1001")), store, key=fingerprint_key).duplicate_of is None


@pytest.mark.parametrize(
    "change",
    [
        {"amount": Decimal("1250.01")},
        {"currency": "EUR", "vendor_currency": "EUR"},
        {"invoice_date": date(2024, 5, 14)},
        {"vendor_id": "V00008"},
    ],
)
def test_fingerprint_changes_with_vendor_amount_currency_or_date(change: dict[str, Any]) -> None:
    # Given two invoices that differ in one fingerprinted field / Then the fingerprints differ
    assert fingerprint(an_invoice(), KEY) != fingerprint(an_invoice(**change), KEY)
    # ... while the invoice id, name and due date do not matter
    assert fingerprint(an_invoice(), KEY) == fingerprint(
        an_invoice("INV-2", vendor_name="Other name", due_date=None), KEY
    )
    # ... and it is keyed: another key, another fingerprint (no plain hash to test guesses against)
    assert fingerprint(an_invoice(), KEY) != fingerprint(an_invoice(), b"another-key-0123456789abcdef-012345")


# -- features ----------------------------------------------------------------------------------


def test_features_use_the_vendor_context_the_erp_sent() -> None:
    # Given an invoice with vendor history
    invoice = an_invoice(days_since_similar_invoice=3.5, similar_invoice_number_similarity=0.9)

    # When its features are built
    built = features(invoice)

    # Then they are the invoice's own values
    assert built.model_dump() == {
        "amount": 1250.0,
        "tax_amount": 250.0,
        "currency": "SEK",
        "invoice_date": "2024-05-13",
        "vendor_currency": "SEK",
        "vendor_tax_rate": 0.25,
        "vendor_mean_log_amount": 7.1,
        "vendor_std_log_amount": 0.4,
        "vendor_invoice_count": 102.0,
        "bank_account_changed": False,
        "days_since_last_invoice": 30.0,
        "days_since_similar_invoice": 3.5,
        "similar_invoice_number_similarity": 0.9,
    }


def test_missing_vendor_context_falls_back_to_the_invoice_itself() -> None:
    # Given an invoice without any vendor context
    invoice = an_invoice(
        vendor_mean_log_amount=None,
        vendor_std_log_amount=None,
        vendor_invoice_count=None,
        vendor_currency=None,
        vendor_tax_rate=None,
        bank_account_changed=None,
        days_since_last_invoice=None,
    )

    # When its features are built
    built = features(invoice)

    # Then the fallbacks describe the invoice itself (neutral), never zeros
    assert built.vendor_currency == "SEK"
    assert built.vendor_tax_rate == pytest.approx(250 / 1000)
    assert built.vendor_mean_log_amount == pytest.approx(math.log(1250.0))
    assert built.vendor_std_log_amount == 1.0
    assert built.vendor_invoice_count == 0.0
    assert built.bank_account_changed is False
    assert built.days_since_last_invoice is None


def test_tax_rate_fallback_stays_below_one() -> None:
    # Given an invoice that is (almost) all tax and no vendor tax rate
    invoice = an_invoice(amount=Decimal("100.00"), tax_amount=Decimal("99.99"), vendor_tax_rate=None)

    # When / Then the own tax rate is capped under the model's bound
    assert features(invoice).vendor_tax_rate == 0.99


def test_tax_rate_fallback_when_the_invoice_is_all_tax_is_zero() -> None:
    # Given an invoice whose tax equals its amount
    invoice = an_invoice(amount=Decimal("100.00"), tax_amount=Decimal("100.00"), vendor_tax_rate=None)

    # When / Then there is no net amount to divide by: the rate is 0
    assert features(invoice).vendor_tax_rate == 0.0


# -- decide ------------------------------------------------------------------------------------


def test_clean_invoice_under_the_limit_is_approved_automatically() -> None:
    # Given a low score, no duplicate, an amount under the limit
    invoice = an_invoice()

    # When deciding
    decision = decide(deciding(invoice, score=0.1), POLICY)

    # Then no human is asked, and the ladder and summary are still given
    assert (decision.route, decision.decision, decision.reasons) == ("auto", "auto-approved", [])
    assert decision.ladder == LADDER
    assert decision.summary.model_dump(mode="json") == {
        "invoice_id": "INV-1001",
        "vendor_name": "Harbor Freight Partners LLC",
        "amount": "1250.00",
        "currency": "SEK",
        "due_date": "2024-06-12",
        "reason": "clean",
    }


def test_amount_exactly_at_the_limit_is_still_automatic() -> None:
    invoice = an_invoice(amount=Decimal("5000.00"), tax_amount=Decimal("1000.00"))
    assert decide(deciding(invoice), POLICY).route == "auto"


@pytest.mark.parametrize(
    ("score", "duplicate_of", "amount", "reasons"),
    [
        pytest.param(0.5, None, "1250.00", ["anomaly score 0.50"], id="score at the threshold"),
        pytest.param(0.97, None, "1250.00", ["anomaly score 0.97"], id="score above the threshold"),
        pytest.param(None, None, "1250.00", ["anomaly model unavailable"], id="model unavailable"),
        pytest.param(0.1, "erp:INV-0999", "1250.00", ["possible duplicate of erp:INV-0999"], id="duplicate"),
        pytest.param(
            0.1, None, "5000.01", ["amount above the auto-approval limit of 5000"], id="over the limit"
        ),
        pytest.param(
            None,
            "erp:INV-0999",
            "7200.00",
            [
                "anomaly model unavailable",
                "possible duplicate of erp:INV-0999",
                "amount above the auto-approval limit of 5000",
            ],
            id="every reason",
        ),
    ],
)
def test_a_human_decides_when_a_reason_says_so(
    score: float | None, duplicate_of: str | None, amount: str, reasons: list[str]
) -> None:
    # Given an invoice with one or more reasons for a human
    invoice = an_invoice(amount=Decimal(amount), tax_amount=Decimal("0"))

    # When deciding
    decision = decide(deciding(invoice, score=score, duplicate_of=duplicate_of), POLICY)

    # Then it goes to a human, with every reason, shown to the approver too
    assert (decision.route, decision.decision) == ("human", "needs-approval")
    assert decision.reasons == reasons
    assert decision.summary.reason == "; ".join(reasons)


def test_score_just_below_the_threshold_is_automatic() -> None:
    assert decide(deciding(an_invoice(), score=0.4999), POLICY).route == "auto"


def test_the_workflow_payloads_parse_into_the_operations() -> None:
    # Given the payloads the state machine sends (score item as model-invoke returns it)
    invoice = an_invoice().model_dump(mode="json")
    payloads = {
        "validate": {"operation": "validate", "business_key": "erp:INV-1001", "invoice": invoice},
        "decide": {
            "operation": "decide",
            "business_key": "erp:INV-1001",
            "invoice": invoice,
            "duplicate_of": None,
            "score": {"business_key": "erp:INV-1001", "score": 0.2, "model_version": "abc"},
        },
        "complete": {
            "operation": "complete",
            "business_key": "erp:INV-1001",
            "outcome": "paid",
            "route": None,
            "received_at": "2024-06-01T11:59:00Z",
        },
    }

    # When / Then each parses into its operation
    assert isinstance(REQUEST.validate_python(payloads["validate"]), Validate)
    decide_request = REQUEST.validate_python(payloads["decide"])
    assert isinstance(decide_request, Decide)
    assert decide_request.score.score == 0.2
    assert isinstance(REQUEST.validate_python(payloads["complete"]), Complete)


def test_policy_is_read_from_the_function_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the deployment's policy environment (the platform description's)
    for name, value in POLICY_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(variable("approval_reminder_seconds"), "3")
    settings.cache_clear()
    try:
        # When the policy is read
        policy = Policy.from_settings()
    finally:
        settings.cache_clear()

    # Then it has the limit, threshold and ladder
    assert policy.auto_approval_limit == Decimal("5000")
    assert policy.anomaly_threshold == 0.5
    assert policy.ladder == Ladder(
        remind_after_seconds=3, escalate_after_seconds=72000, expire_after_seconds=172800
    )


# -- complete ----------------------------------------------------------------------------------


def completing(outcome: str, route: str | None, received_at: datetime | None = None) -> Complete:
    return Complete.model_validate(
        {
            "operation": "complete",
            "business_key": "erp:INV-1001",
            "outcome": outcome,
            "route": route,
            "received_at": received_at,
        }
    )


def test_invoice_paid_without_a_human_counts_as_automated() -> None:
    # Given an invoice paid on the automatic route, received 90 s ago
    request = completing("paid", "auto", received_at=NOW - timedelta(seconds=90))

    # When the books are closed
    completed = complete(request, now=NOW)

    # Then the outcome, an automated completion, ratio 1 and the cycle time are counted
    assert (completed.outcome, completed.route) == ("paid", "auto")
    assert recorded() == {
        "InvoicesPaid": [1.0],
        "AutomatedCompletions": [1.0],
        "AutomationRatio": [1.0],
        "CycleTimeSeconds": [90.0],
    }


def test_invoice_decided_by_a_human_counts_against_the_automation_ratio() -> None:
    # Given an invoice paid after a human approved it
    request = completing("paid", "human")

    # When the books are closed
    complete(request, now=NOW)

    # Then it counts as a human completion with ratio 0, and no cycle time without a receipt
    assert recorded() == {"InvoicesPaid": [1.0], "AutomationRatio": [0.0], "HumanCompletions": [1.0]}


def test_compensation_is_counted() -> None:
    # Given a payment that failed after posting, on the automatic route
    request = completing("compensated", "auto", received_at=NOW - timedelta(seconds=5))

    # When the books are closed
    complete(request, now=NOW)

    # Then the compensation is counted, and it is not an automated completion
    assert recorded() == {
        "InvoicesCompensated": [1.0],
        "Compensations": [1.0],
        "AutomationRatio": [1.0],
        "CycleTimeSeconds": [5.0],
    }


@pytest.mark.parametrize("outcome", ["invalid", "failed"])
def test_outcomes_without_a_route_count_only_the_outcome(outcome: str) -> None:
    # Given an invoice that never reached a decision
    complete(completing(outcome, None), now=NOW)

    # Then only its outcome is counted: it says nothing about automation
    assert recorded() == {f"Invoices{outcome.capitalize()}": [1.0]}


def test_cycle_time_is_never_negative() -> None:
    # Given a receipt time after "now" (clock skew between hosts)
    complete(completing("expired", "human", received_at=NOW + timedelta(seconds=3)), now=NOW)

    # Then the cycle time is 0, not negative
    assert recorded()["CycleTimeSeconds"] == [0.0]
    assert recorded()["InvoicesExpired"] == [1.0]


@pytest.mark.parametrize("vendor_mean_log_amount", [None, 7.1])
def test_zero_amount_invoice_fails_validation(vendor_mean_log_amount: float | None) -> None:
    # Given an invoice of amount zero (the canonical model allows it; the anomaly model does not)
    invoice = an_invoice(
        amount=Decimal("0"), tax_amount=Decimal("0"), vendor_mean_log_amount=vendor_mean_log_amount
    )

    # When it is validated / Then it is Validation.Failed, which the workflow rejects as invalid
    with pytest.raises(ValidationFailed):
        validate(validating(invoice), FakeFingerprints(), key=fingerprint_key)


# -- claim and retention -------------------------------------------------------------------------


class _ConditionalCheckFailed(Exception):
    pass


class FakeDynamo:
    """``put_item`` with ``attribute_not_exists(pk)`` and ``get_item``, on a dict."""

    class exceptions:
        ConditionalCheckFailedException = _ConditionalCheckFailed

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def put_item(self, *, TableName: str, Item: dict[str, Any], ConditionExpression: str) -> None:
        assert ConditionExpression == "attribute_not_exists(pk)"
        if Item["pk"]["S"] in self.items:
            raise _ConditionalCheckFailed
        self.items[Item["pk"]["S"]] = Item

    def get_item(self, *, TableName: str, Key: dict[str, Any], ConsistentRead: bool) -> dict[str, Any]:
        return {"Item": self.items[Key["pk"]["S"]]}


def a_table(retention: int | None = 400) -> tuple[FingerprintStore, FakeDynamo]:
    client = FakeDynamo()
    store = FingerprintStore("approvals", client, retention=retention, clock=NOW.timestamp)  # type: ignore[arg-type]
    return store, client


def test_first_execution_claims_and_a_retry_of_it_still_holds_the_claim() -> None:
    store, client = a_table()
    first = claim(Claim(operation="claim", business_key="erp:INV-1", execution="arn:exec:a"), store)
    again = claim(Claim(operation="claim", business_key="erp:INV-1", execution="arn:exec:a"), store)
    other = claim(Claim(operation="claim", business_key="erp:INV-1", execution="arn:exec:b"), store)

    assert (first.claimed, again.claimed) == (True, True)
    assert (other.claimed, other.execution) == (False, "arn:exec:a")
    item = client.items["claim#erp:INV-1"]
    assert item["claimed_at"] == {"S": "2024-06-01T12:00:00.000Z"}


def test_every_item_written_carries_the_declared_retention() -> None:
    # Given the approvals table's retention from the description
    days = APPROVALS.retention_days
    assert days is not None
    store, client = a_table(days)

    # When a claim and a fingerprint are written
    store.claim("erp:INV-1", "arn:exec:a")
    store.first_seen("f" * 64, "erp:INV-1")

    # Then both expire that many days after they were written (epoch seconds, DynamoDB TTL)
    expected = {"N": str(int(NOW.timestamp()) + days * 86_400)}
    assert [item[APPROVALS.ttl_attribute or ""] for item in client.items.values()] == [expected, expected]


def test_no_declared_retention_writes_no_ttl() -> None:
    store, client = a_table(None)
    store.claim("erp:INV-1", "arn:exec:a")
    assert "expires_at" not in client.items["claim#erp:INV-1"]


def test_functions_that_write_the_approvals_table_get_its_retention() -> None:
    for name in ("invoice-policy", "approval-request", "slack-interactions"):
        environment = PLATFORM.function_environment(PLATFORM.function(name))
        assert json.loads(environment[variable("table_retention_days")].id) == {"approvals": 400}
    assert variable("table_retention_days") not in PLATFORM.function_environment(
        PLATFORM.function("erp-connector")
    )


# -- the error of a failed invoice ----------------------------------------------------------------


def test_failed_invoice_keeps_the_error_name_and_message_not_the_stack() -> None:
    cause = json.dumps(
        {
            "errorMessage": "erp get_invoice: 404 invoice_not_found",
            "errorType": "Connector.Rejected",
            "stackTrace": ['  File "/var/task/handler.py", line 1'],
        }
    )
    completed = complete(
        Complete(
            operation="complete",
            business_key="erp:INV-1",
            outcome="failed",
            error=StepError(Error="Connector.Rejected", Cause=cause),
        ),
        now=NOW,
    )
    assert (completed.error, completed.error_cause) == (
        "Connector.Rejected",
        "erp get_invoice: 404 invoice_not_found",
    )


def test_workflow_closing_payload_with_an_error_parses() -> None:
    request = REQUEST.validate_python(
        {
            "operation": "complete",
            "business_key": "erp:INV-1001",
            "outcome": "failed",
            "route": None,
            "received_at": "2024-06-01T11:59:00Z",
            "error": {"Error": "States.Runtime", "Cause": "An error occurred"},
        }
    )
    assert isinstance(request, Complete) and request.error is not None
    paid = REQUEST.validate_python(
        {"operation": "complete", "business_key": "erp:INV-1001", "outcome": "paid", "error": None}
    )
    assert isinstance(paid, Complete) and paid.error is None
