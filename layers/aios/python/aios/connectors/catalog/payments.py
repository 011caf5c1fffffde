"""Payments connector, modelled on Stripe's PaymentIntents REST API.

Operations:

- ``create_payment``: ``POST /v1/payment_intents`` (form-encoded, as Stripe: ``amount`` in
  the currency's minor unit, lower-case ``currency``, ``metadata[business_key]``...) with an
  ``Idempotency-Key`` header derived from the business key, so a retried request, even from
  another Lambda instance after our own idempotency record expired, creates one payment.
  Also wrapped in Powertools idempotency: a repeat does not reach the provider at all.
- ``get_payment_status``: ``GET /v1/payment_intents/{id}``.
- ``find_payment``: whether the processor holds a payment for a business key, for
  compensation after a failed ``create_payment`` (the request may have been accepted before
  the call failed): ``GET /v1/payment_intents/search`` with
  ``query=metadata['business_key']:'<key>'`` (Stripe's Search API,
  https://docs.stripe.com/api/payment_intents/search; ``create_payment`` sets that metadata
  on every intent it creates under the derived ``Idempotency-Key``). Search is eventually
  consistent (https://docs.stripe.com/search#data-freshness), so the workflow waits before
  it looks. A live intent is preferred over a cancelled one when several match.
- ``cancel_payment``: ``POST /v1/payment_intents/{id}/cancel`` with ``cancellation_reason``
  (idempotent as above).

Responses are payment-intent objects (``{"id": "pi_...", "object": "payment_intent",
"amount": 123450, "currency": "eur", "status": "processing", ...}``); errors are
``{"error": {"type": "card_error", "code": "card_declined", "message": "..."}}`` with the
HTTP status saying what kind (400/402/404/409 -> Rejected, 401/403 -> AuthFailed,
429 -> Throttled, 5xx -> Unavailable). Only ``type``/``code`` reach our error messages.

Secret: ``{"base_url": "https://api.stripe.com", "token": "sk_live_..."}`` (bearer), any auth
scheme of the kit works. ``settings.payment_intents_path`` changes the path prefix.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aios.connectors.kit import (
    Connector,
    ConnectorRequest,
    ConnectorResult,
    derived_idempotency_key,
    parse_body,
)
from aios.invoices import BusinessKey, CurrencyCode, Identifier, Money

NAME = "payments"
VERSION = "1.0.0"

#: ISO 4217 currencies without a minor unit (Stripe's "zero-decimal currencies").
ZERO_DECIMAL = frozenset(
    {
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    }
)
#: Three-decimal currencies.
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})

PaymentId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,255}$")]
PaymentStatus = Literal[
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "processing",
    "requires_capture",
    "canceled",
    "succeeded",
]


def exponent(currency: str) -> int:
    return 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2


def to_minor(amount: Decimal, currency: str) -> int:
    """``12.34 EUR`` -> ``1234``; refuses amounts with more precision than the currency has."""
    scaled = amount.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more decimals than {currency} allows")
    return int(scaled)


def from_minor(amount: int, currency: str) -> Decimal:
    return Decimal(amount).scaleb(-exponent(currency))


class CreatePayment(ConnectorRequest):
    operation: Literal["create_payment"]
    business_key: BusinessKey
    invoice_id: Identifier
    vendor_id: Identifier
    amount: Annotated[Money, Field(gt=0)]
    currency: CurrencyCode
    #: The provider's reference to the payee's payment method (never raw account data).
    payment_method: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,255}$")] | None = None
    description: Annotated[str, Field(max_length=200)] | None = None

    @model_validator(mode="after")
    def _representable(self) -> CreatePayment:
        to_minor(self.amount, self.currency)  # ValueError -> ValidationError
        return self

    def minor_amount(self) -> int:
        return to_minor(self.amount, self.currency)


class GetPaymentStatus(ConnectorRequest):
    operation: Literal["get_payment_status"]
    payment_id: PaymentId


class FindPayment(ConnectorRequest):
    operation: Literal["find_payment"]
    business_key: BusinessKey


class CancelPayment(ConnectorRequest):
    operation: Literal["cancel_payment"]
    business_key: BusinessKey
    payment_id: PaymentId
    reason: Literal["duplicate", "fraudulent", "requested_by_customer", "abandoned"] = "abandoned"


class PaymentIntent(BaseModel):
    """The part of the provider's payment intent we rely on (other fields ignored)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: PaymentId
    object: Literal["payment_intent"]
    amount: Annotated[int, Field(ge=0)]
    currency: Annotated[str, Field(pattern=r"^[a-z]{3}$")]
    status: PaymentStatus
    metadata: dict[str, str] = Field(default_factory=dict)


class SearchResult(BaseModel):
    """Stripe's search result list (``{"object": "search_result", "data": [...]}``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    object: Literal["search_result"]
    data: list[PaymentIntent]


class PaymentLookup(ConnectorResult):
    """Whether a payment exists for the business key; ``payment_id``/``status`` when it does."""

    business_key: BusinessKey
    found: bool
    payment_id: PaymentId | None = None
    status: PaymentStatus | None = None


class PaymentResult(ConnectorResult):
    payment_id: PaymentId
    status: PaymentStatus
    amount: Decimal
    currency: CurrencyCode
    business_key: BusinessKey | None = None


class PaymentsConnector(Connector):
    name = NAME
    version = VERSION
    default_base_url = "https://api.stripe.com"

    def _path(self, suffix: str = "") -> str:
        prefix = str(self.settings().get("payment_intents_path", "/v1/payment_intents"))
        return prefix.rstrip("/") + suffix

    def _result(self, operation: str, body: dict[str, Any]) -> PaymentResult:
        context = self.context(operation)
        intent = parse_body(PaymentIntent, body, context)
        currency = intent.currency.upper()
        return PaymentResult(
            **self.result(operation),
            payment_id=intent.id,
            status=intent.status,
            amount=from_minor(intent.amount, currency),
            currency=currency,
            business_key=intent.metadata.get("business_key"),
        )

    def _post(
        self, request: CreatePayment | CancelPayment, suffix: str, form: dict[str, str]
    ) -> PaymentResult:
        """A side-effecting Stripe call: its Idempotency-Key is derived from the business key and
        operation, so a retry of the same call is the same request to Stripe."""
        headers = {"Idempotency-Key": derived_idempotency_key(request.business_key, request.operation)}
        body = self.call(request.operation, "POST", self._path(suffix), data=form, headers=headers)
        return self._result(request.operation, body)

    def create_payment(self, request: CreatePayment) -> PaymentResult:
        def produce() -> PaymentResult:
            form = {
                "amount": str(request.minor_amount()),
                "currency": request.currency.lower(),
                "metadata[business_key]": request.business_key,
                "metadata[invoice_id]": request.invoice_id,
                "metadata[vendor_id]": request.vendor_id,
            }
            if request.description:
                form["description"] = request.description
            if request.payment_method:
                form["payment_method"] = request.payment_method
                form["confirm"] = "true"
            return self._post(request, "", form)

        return self.once(
            operation=request.operation,
            business_key=request.business_key,
            model=PaymentResult,
            produce=produce,
        )

    def get_payment_status(self, request: GetPaymentStatus) -> PaymentResult:
        body = self.call(request.operation, "GET", self._path(f"/{request.payment_id}"))
        return self._result(request.operation, body)

    def find_payment(self, request: FindPayment) -> PaymentLookup:
        # Business keys are ``system:id`` of our own identifiers; quotes would end the query.
        key = request.business_key.replace("\\", "\\\\").replace("'", "\\'")
        body = self.call(
            request.operation,
            "GET",
            self._path("/search"),
            params={"query": f"metadata['business_key']:'{key}'", "limit": "10"},
        )
        context = self.context(request.operation)
        found = [
            intent
            for intent in parse_body(SearchResult, body, context).data
            if intent.metadata.get("business_key") == request.business_key
        ]
        live = [intent for intent in found if intent.status != "canceled"]
        chosen = next(iter(live or found), None)
        return PaymentLookup(
            **self.result(request.operation),
            business_key=request.business_key,
            found=chosen is not None,
            payment_id=chosen.id if chosen else None,
            status=chosen.status if chosen else None,
        )

    def cancel_payment(self, request: CancelPayment) -> PaymentResult:
        def produce() -> PaymentResult:
            return self._post(
                request, f"/{request.payment_id}/cancel", {"cancellation_reason": request.reason}
            )

        return self.once(
            operation=request.operation,
            business_key=request.business_key,
            model=PaymentResult,
            produce=produce,
            discriminator=request.payment_id,
        )
