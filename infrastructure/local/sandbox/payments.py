"""The sandbox payment processor (``/_sandbox/payments``): Stripe's ``/v1/payment_intents``
(form-encoded create with ``Idempotency-Key``, get, cancel, and search by
``metadata['business_key']:'...'``), Stripe's objects and ``{"error": {...}}`` bodies.
Admin: ``GET /intents``, ``GET|POST|DELETE /refuse``."""

from __future__ import annotations

import json
import re
import secrets as random_secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qs, parse_qsl

from infrastructure.local.sandbox.base import (
    ProviderFault,
    Reply,
    Request,
    json_reply,
    retry_after,
    same_secret,
    utc_now,
)

_CARD_CODES = frozenset(
    {"card_declined", "insufficient_funds", "expired_card", "incorrect_cvc", "processing_error", "lost_card"}
)

_INTENTS = "/v1/payment_intents"
_INTENT = re.compile(r"^/v1/payment_intents/(?P<id>[^/]+)$")
_INTENT_CANCEL = re.compile(r"^/v1/payment_intents/(?P<id>[^/]+)/cancel$")
_INTENT_SEARCH = "/v1/payment_intents/search"
#: The one clause of Stripe's search query language the sandbox answers.
_METADATA_QUERY = re.compile(r"^metadata\['(?P<key>[A-Za-z0-9_]+)'\]:'(?P<value>(?:[^'\\]|\\.)*)'$")


def _stripe_error(status: int, kind: str, message: str, **extra: Any) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"type": kind, "message": message, **extra}}


def stripe_form(body: bytes) -> dict[str, Any]:
    """Stripe's form encoding: ``metadata[business_key]=...`` -> ``{"metadata": {...}}``."""
    form: dict[str, Any] = {}
    for name, value in parse_qsl(body.decode("utf-8"), keep_blank_values=True):
        if (match := re.fullmatch(r"([A-Za-z_]+)\[([^\]]*)\]", name)) is not None:
            form.setdefault(match[1], {})[match[2]] = value
        else:
            form[name] = value
    return form


@dataclass
class Refusal:
    code: str
    type: str
    status: int
    message: str
    matched: int = 0


@dataclass
class Payments:
    name: ClassVar[str] = "payments"

    token: str | None = None
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotency: dict[str, tuple[str, int, dict[str, Any]]] = field(default_factory=dict)
    refusals: dict[str, Refusal] = field(default_factory=dict)  # invoice id or business key
    attempts: list[dict[str, Any]] = field(default_factory=list)

    def credentials(self, base_url: str) -> dict[str, Any]:
        self.token = "sk_test_" + random_secrets.token_hex(24)
        return {"base_url": base_url, "token": self.token}

    def fault_reply(self, fault: ProviderFault) -> Reply:
        status = fault.status
        if status == 429:
            error = {"type": "invalid_request_error", "code": fault.error or "rate_limit"}
            error["message"] = "Too many requests hit the API too quickly."
        elif status >= 500:
            error = {"type": "api_error", "message": "An error occurred with our connection to Stripe."}
            if fault.error:
                error["code"] = fault.error
        else:
            error = {"type": "invalid_request_error", "code": fault.error or "sandbox_fault"}
            error["message"] = "Injected by the sandbox."
        return json_reply(status, {"error": error}, retry_after(fault))

    def reset(self) -> None:
        self.intents.clear()
        self.idempotency.clear()
        self.refusals.clear()
        self.attempts.clear()

    def admin(self, request: Request) -> Reply | None:
        if request.path == "/intents" and request.method == "GET":
            return json_reply(200, {"data": list(self.intents.values()), "attempts": self.attempts})
        if request.path != "/refuse":
            return None
        if request.method == "DELETE":
            self.refusals.clear()
        elif request.method in {"POST", "PUT"}:
            try:
                body = request.json()
                if not isinstance(body, dict):
                    raise ValueError("not an object")
                target = body.get("invoice_id") or body.get("business_key")
                if not isinstance(target, str) or not target:
                    raise ValueError("invoice_id or business_key is required")
                code = str(body.get("code", "card_declined"))
            except ValueError as error:
                return json_reply(400, {"error": {"type": "invalid_request_error", "message": str(error)}})
            card = code in _CARD_CODES
            self.refusals[target] = Refusal(
                code=code,
                type=str(body.get("type", "card_error" if card else "invalid_request_error")),
                status=int(body.get("status", 402 if card else 400)),
                message=str(body.get("message", "Your card was declined." if card else f"Refused: {code}.")),
            )
        elif request.method != "GET":
            return json_reply(
                405, {"error": {"type": "invalid_request_error", "message": "Method Not Allowed"}}
            )
        return json_reply(200, {"refusals": {k: vars(v) for k, v in self.refusals.items()}})

    def handle(self, request: Request) -> Reply:  # noqa: PLR0911 - one answer per route
        token = request.bearer()
        if token is None:
            status, body = _stripe_error(
                401,
                "invalid_request_error",
                "You did not provide an API key. Provide it in the Authorization header "
                "(i.e. Authorization: Bearer YOUR_SECRET_KEY).",
            )
            return json_reply(status, body)
        if self.token is not None and not same_secret(token, self.token):
            status, body = _stripe_error(
                401, "invalid_request_error", "Invalid API Key provided.", code="api_key_invalid"
            )
            return json_reply(status, body)
        if request.path == _INTENTS and request.method == "POST":
            return self._idempotent(request, self._create)
        if (match := _INTENT_CANCEL.match(request.path)) and request.method == "POST":
            intent_id = match["id"]
            return self._idempotent(request, lambda form: self._cancel(intent_id, form))
        if request.path == _INTENT_SEARCH and request.method == "GET":
            return json_reply(*self._search(request.query))
        if (match := _INTENT.match(request.path)) and request.method == "GET":
            intent = self.intents.get(match["id"])
            if intent is None:
                return json_reply(*self._missing(match["id"]))
            return json_reply(200, intent)
        status, body = _stripe_error(
            404, "invalid_request_error", f"Unrecognized request URL ({request.method}: {request.path})."
        )
        return json_reply(status, body)

    def _idempotent(
        self, request: Request, action: Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]
    ) -> Reply:
        form = stripe_form(request.body)
        key = request.header("idempotency-key")
        fingerprint = json.dumps([request.path, form], sort_keys=True)
        if key and key in self.idempotency:
            first, status, body = self.idempotency[key]
            if first != fingerprint:
                status, body = _stripe_error(
                    400,
                    "idempotency_error",
                    "Keys for idempotent requests can only be used with the same parameters they "
                    "were first used with.",
                )
                return json_reply(status, body)
            return json_reply(status, body, [("Idempotent-Replayed", "true")])
        status, body = action(form)
        if key and status not in (400, 401, 429) and status < 500:
            self.idempotency[key] = (fingerprint, status, body)
        return json_reply(status, body, [("Idempotency-Key", key)] if key else [])

    def _refusal(self, form: Mapping[str, Any]) -> Refusal | None:
        metadata = form.get("metadata") if isinstance(form.get("metadata"), dict) else {}
        assert isinstance(metadata, dict)
        for candidate in (metadata.get("invoice_id"), metadata.get("business_key")):
            if candidate and candidate in self.refusals:
                return self.refusals[candidate]
        description = str(form.get("description") or "")
        return next((r for target, r in self.refusals.items() if description and target in description), None)

    def _create(self, form: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.attempts.append({"form": form, "at": utc_now()})
        amount = str(form.get("amount", ""))
        currency = str(form.get("currency", ""))
        if not amount:
            return _stripe_error(
                400,
                "invalid_request_error",
                "Missing required param: amount.",
                code="parameter_missing",
                param="amount",
            )
        if not amount.isdigit() or int(amount) < 1:
            return _stripe_error(
                400,
                "invalid_request_error",
                "Invalid positive integer",
                code="parameter_invalid_integer",
                param="amount",
            )
        if not re.fullmatch(r"[a-z]{3}", currency):
            return _stripe_error(
                400,
                "invalid_request_error",
                "Missing required param: currency.",
                code="parameter_missing",
                param="currency",
            )
        metadata = form.get("metadata") if isinstance(form.get("metadata"), dict) else {}
        refusal = self._refusal(form)
        if refusal is not None:
            refusal.matched += 1
            return _stripe_error(
                refusal.status,
                refusal.type,
                refusal.message,
                code=refusal.code,
                **({"decline_code": "generic_decline"} if refusal.code == "card_declined" else {}),
            )
        intent_id = "pi_" + uuid.uuid4().hex[:24]
        confirmed = bool(form.get("payment_method")) and str(form.get("confirm")) == "true"
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": int(amount),
            "amount_received": int(amount) if confirmed else 0,
            "currency": currency,
            "status": "succeeded" if confirmed else "requires_payment_method",
            "description": form.get("description"),
            "metadata": dict(metadata or {}),
            "payment_method": form.get("payment_method"),
            "client_secret": f"{intent_id}_secret_{random_secrets.token_hex(12)}",
            "created": int(time.time()),
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": "automatic",
            "confirmation_method": "automatic",
            "livemode": False,
        }
        self.intents[intent_id] = intent
        return 200, intent

    def _search(self, query: str) -> tuple[int, dict[str, Any]]:
        """``GET /v1/payment_intents/search?query=metadata['k']:'v'`` (Stripe's search result)."""
        text = (parse_qs(query).get("query") or [""])[0]
        match = _METADATA_QUERY.match(text.strip())
        if match is None:
            return _stripe_error(
                400, "invalid_request_error", "The sandbox answers metadata['key']:'value' queries only."
            )
        value = re.sub(r"\\(.)", r"\1", match["value"])
        data = [
            dict(intent) for intent in self.intents.values() if intent["metadata"].get(match["key"]) == value
        ]
        data.sort(key=lambda intent: -int(intent["created"]))
        return 200, {
            "object": "search_result",
            "url": _INTENT_SEARCH,
            "has_more": False,
            "data": data,
            "next_page": None,
        }

    def _missing(self, intent_id: str) -> tuple[int, dict[str, Any]]:
        return _stripe_error(
            404,
            "invalid_request_error",
            f"No such payment_intent: '{intent_id}'",
            code="resource_missing",
            param="intent",
        )

    def _cancel(self, intent_id: str, form: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        intent = self.intents.get(intent_id)
        if intent is None:
            return self._missing(intent_id)
        if intent["status"] in {"succeeded", "canceled"}:
            return _stripe_error(
                400,
                "invalid_request_error",
                f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}.",
                code="payment_intent_unexpected_state",
            )
        intent.update(
            status="canceled",
            canceled_at=int(time.time()),
            cancellation_reason=form.get("cancellation_reason") or None,
        )
        return 200, dict(intent)
