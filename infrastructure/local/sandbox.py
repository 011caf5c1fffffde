"""Sandbox providers of the local mode: an ERP, a payment processor (Stripe) and Slack's Web API.

In AWS the connectors call the real systems; locally their secrets point here instead
(``{api}/_sandbox/<connector>``), and these in-memory stand-ins answer with the shapes the
connectors parse, so the accounts-payable workflow runs end to end offline. They are
served by the local HTTP API under ``/_sandbox/`` (``bridges.HttpApiServer``).

Provider APIs (what the connectors call; auth required as the real API does):

- ERP ``/_sandbox/erp``: the ERP connector's default ``ErpPaths`` and field names:
  ``GET /invoices/{id}``, ``POST /invoices/{id}/postings`` and ``POST /postings/{id}/reversal``
  (``Idempotency-Key`` honoured: the same key answers the same posting or reversal).
  Errors are ``{"code": ..., "message": ...}``.
- Payments ``/_sandbox/payments``: Stripe's ``/v1/payment_intents`` (form-encoded create with
  ``Idempotency-Key``, get, cancel, and search by ``metadata['business_key']:'...'``),
  Stripe's objects and ``{"error": {...}}`` bodies.
- Slack ``/_sandbox/slack``: ``chat.postMessage``, ``chat.update`` and ``auth.test``;
  HTTP 200 with ``{"ok": false, "error": ...}`` as Slack does.

Admin endpoints (no auth), for tests and the demo:

- ``GET|POST /_sandbox/erp/invoices`` (list; add or replace Invoice-shaped objects),
  ``GET /_sandbox/erp/postings``
- ``GET /_sandbox/payments/intents``, ``GET|POST|DELETE /_sandbox/payments/refuse``
- ``GET /_sandbox/slack/messages`` (``?channel=``)
- ``GET|POST|DELETE /_sandbox/faults`` (``{"erp": {"status": 503, "times": 2}}``; with
  ``"after_commit": true`` the provider does the work first and then answers the fault, as a
  timeout after acceptance or a 5xx after commit does)
- ``POST /_sandbox/reset``: every provider back to its seeded state (faults cleared)

Everything is in memory and guarded by one lock per sandbox.
"""

from __future__ import annotations

import contextlib
import hmac
import importlib.util
import json
import re
import secrets as random_secrets
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, parse_qsl

from pydantic import ValidationError

from aios.invoices import Invoice

PREFIX = "/_sandbox"
PROVIDERS = ("erp", "payments", "slack")
REPO_ROOT = Path(__file__).resolve().parents[2]
GENERATOR = REPO_ROOT / "models" / "invoice-anomaly" / "generate.py"

#: The demo catalog: ``generate(20, seed=SEED, n_vendors=12, anomaly_rate=0.25)``, ids INV-2001..
SEED = 2000
SEED_COUNT = 20
FIRST_NUMBER = 2001
ERP_SOURCE = "erp"
SLACK_TS_BASE = 1_700_000_000
SLACK_BOT_USER = "U0SANDBOXBOT"
SLACK_BOT_ID = "B0SANDBOX"
SLACK_TEAM = "T0SANDBOX"

_VENDOR_NAMES = (
    "Acme Industrial Supply",
    "Nordlicht Logistik GmbH",
    "Bureau Parisien SARL",
    "Van Dijk Facilities B.V.",
    "Thames Office Services Ltd",
    "Svea Maskin AB",
    "Alpenblick Consulting AG",
    "Harbor Freight Partners LLC",
    "Rheinwerk Elektro GmbH",
    "Lumiere Catering SAS",
    "Amsterdam Cloud Hosting B.V.",
    "Kestrel Security Ltd",
)
_ZERO_DECIMAL = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND"}
)
_CARD_CODES = frozenset(
    {"card_declined", "insufficient_funds", "expired_card", "incorrect_cvc", "processing_error", "lost_card"}
)


class Reply(NamedTuple):
    """An HTTP answer: status, headers, body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def json_reply(status: int, body: Any, headers: Sequence[tuple[str, str]] = ()) -> Reply:
    return Reply(status, [("content-type", "application/json"), *headers], json.dumps(body).encode("utf-8"))


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # below the provider: "/invoices/INV-2001"
    query: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def bearer(self) -> str | None:
        value = self.header("authorization") or ""
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and hmac.compare_digest(a.encode(), b.encode())


# -- seeded invoices ----------------------------------------------------------------------------
@dataclass(frozen=True)
class SeedCatalog:
    invoices: tuple[dict[str, Any], ...]
    #: invoice id -> planted anomaly kind (only the anomalous ones).
    anomalies: dict[str, str]


def _load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("aios_invoice_anomaly_generate", GENERATOR)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {GENERATOR}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def erp_invoice(generated: Mapping[str, Any], invoice_id: str) -> dict[str, Any]:
    """One generated invoice in the ``Invoice`` shape (default ERP field names)."""
    vendor_number = int(str(generated["vendor_id"]).lstrip("V") or 0)
    currency = str(generated["currency"])
    amount = float(generated["amount"])
    tax = float(generated["tax_amount"])
    if currency in _ZERO_DECIMAL:
        amount, tax = float(round(amount)), float(round(tax))
    invoice_date = date.fromisoformat(str(generated["invoice_date"]))
    days_last = generated.get("days_since_last_invoice")
    return {
        "invoice_id": invoice_id,
        "business_key": f"{ERP_SOURCE}:{invoice_id}",
        "vendor_id": str(generated["vendor_id"]),
        "vendor_name": _VENDOR_NAMES[vendor_number % len(_VENDOR_NAMES)],
        "amount": amount,
        "tax_amount": min(tax, amount),
        "currency": currency,
        "invoice_date": invoice_date.isoformat(),
        "due_date": (invoice_date + timedelta(days=30)).isoformat(),
        # Raw, as an ERP answers: the ERP connector turns it into a keyed reference.
        "bank_account": str(generated["bank_account"]),
        "purchase_order": f"PO-{generated['invoice_number']}",
        "vendor_mean_log_amount": generated["vendor_mean_log_amount"],
        "vendor_std_log_amount": generated["vendor_std_log_amount"],
        "bank_account_changed": bool(generated["bank_account_changed"]),
        "days_since_last_invoice": None if days_last is None else round(float(days_last)),
        "vendor_invoice_count": int(generated["vendor_invoice_count"]),
        "vendor_currency": generated["vendor_currency"],
        "vendor_tax_rate": generated["vendor_tax_rate"],
        "days_since_similar_invoice": generated.get("days_since_similar_invoice"),
        "similar_invoice_number_similarity": generated.get("similar_invoice_number_similarity"),
    }


@cache
def seed_catalog() -> SeedCatalog:
    """The deterministic demo catalog: 20 invoices INV-2001..INV-2020, 5 with planted anomalies."""
    dataset = _load_generator().generate(SEED_COUNT, seed=SEED, n_vendors=12, anomaly_rate=0.25)
    invoices: list[dict[str, Any]] = []
    anomalies: dict[str, str] = {}
    for index, (generated, kind) in enumerate(zip(dataset.invoices, dataset.kinds, strict=True)):
        invoice_id = f"INV-{FIRST_NUMBER + index}"
        invoices.append({k: v for k, v in erp_invoice(generated, invoice_id).items() if v is not None})
        if kind:
            anomalies[invoice_id] = str(kind)
    return SeedCatalog(invoices=tuple(invoices), anomalies=anomalies)


def validate_invoice(document: Any) -> dict[str, Any]:
    """An admin-posted invoice, checked against ``aios.invoices.Invoice`` (``business_key``
    defaults to ``erp:<invoice_id>``); ``ValueError`` names the bad fields."""
    if not isinstance(document, dict) or not document.get("invoice_id"):
        raise ValueError("an invoice is a JSON object with an invoice_id")
    invoice: dict[str, Any] = {"business_key": f"{ERP_SOURCE}:{document['invoice_id']}", **document}
    try:
        # The ERP holds raw bank accounts; the connector references them (keyed), so the
        # check stands a reference in for one.
        Invoice.model_validate(
            {**invoice, **({"bank_account": "ref:sandbox"} if "bank_account" in invoice else {})}
        )
    except ValidationError as error:
        fields = sorted({".".join(str(p) for p in e["loc"]) or "invoice" for e in error.errors()})
        raise ValueError(f"invalid invoice {invoice['invoice_id']}: fields {fields}") from None
    return invoice


# -- faults -------------------------------------------------------------------------------------
@dataclass
class ProviderFault:
    """The next ``times`` requests (``None``: all) to a provider answer ``status``."""

    status: int = 503
    times: int | None = None
    retry_after: float = 1.0
    error: str | None = None  # provider error code (Slack: the ``error`` of an ``ok: false``)
    delay_seconds: float = 0.0
    #: The request is served (and its effect kept) before the fault answers instead.
    after_commit: bool = False
    injected: int = 0

    @classmethod
    def parse(cls, value: Any) -> ProviderFault:
        if not isinstance(value, dict):
            raise ValueError('a fault is an object: {"status": 503, "times": 2}')
        unknown = set(value) - {"status", "times", "retry_after", "error", "delay_seconds", "after_commit"}
        if unknown:
            raise ValueError(f"unknown fault fields {sorted(unknown)}")
        status = int(value.get("status", 503))
        if not 200 <= status <= 599:
            raise ValueError("status must be an HTTP status")
        times = value.get("times")
        if times is not None and int(times) < 0:
            raise ValueError("times must be >= 0")
        delay = float(value.get("delay_seconds", 0.0))
        if not 0 <= delay <= 60:
            raise ValueError("delay_seconds must be in [0, 60]")
        return cls(
            status=status,
            times=None if times is None else int(times),
            retry_after=float(value.get("retry_after", 1.0)),
            error=None if value.get("error") is None else str(value["error"]),
            delay_seconds=delay,
            after_commit=bool(value.get("after_commit", False)),
        )

    def snapshot(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "times": self.times,
            "retry_after": self.retry_after,
            "error": self.error,
            "delay_seconds": self.delay_seconds,
            "after_commit": self.after_commit,
            "injected": self.injected,
        }


def _fault_reply(provider: str, fault: ProviderFault) -> Reply:
    status = fault.status
    retry = [("Retry-After", f"{fault.retry_after:g}")] if status in (429, 503) else []
    if provider == "slack":
        if status == 429:
            return json_reply(429, {"ok": False, "error": fault.error or "ratelimited"}, retry)
        return json_reply(status, {"ok": False, "error": fault.error or "internal_error"})
    if provider == "payments":
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
        return json_reply(status, {"error": error}, retry)
    code = fault.error or (
        "rate_limited" if status == 429 else "service_unavailable" if status >= 500 else "error"
    )
    return json_reply(status, {"code": code, "message": f"sandbox fault: HTTP {status}"}, retry)


# -- ERP ----------------------------------------------------------------------------------------
_ERP_GET = re.compile(r"^/invoices/(?P<id>[^/]+)$")
_ERP_POST = re.compile(r"^/invoices/(?P<id>[^/]+)/postings$")
_ERP_REVERSE = re.compile(r"^/postings/(?P<id>[^/]+)/reversal$")


def _erp_error(status: int, code: str, message: str) -> Reply:
    return json_reply(status, {"code": code, "message": message})


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Erp:
    token: str | None = None
    api_key: str | None = None
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    postings: dict[str, dict[str, Any]] = field(default_factory=dict)
    reversals: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotency: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)

    def seed(self) -> None:
        self.invoices = {i["invoice_id"]: dict(i) for i in seed_catalog().invoices}
        self.postings.clear()
        self.reversals.clear()
        self.idempotency.clear()

    def authorised(self, request: Request) -> bool:
        if self.token is None and self.api_key is None:
            return True
        return _same(request.bearer(), self.token) or _same(request.header("x-api-key"), self.api_key)

    def admin(self, request: Request) -> Reply | None:
        if request.path == "/invoices" and request.method == "GET":
            catalog = seed_catalog()
            return json_reply(200, {"invoices": list(self.invoices.values()), "anomalies": catalog.anomalies})
        if request.path == "/invoices" and request.method in {"POST", "PUT"}:
            try:
                body = request.json()
                documents = [validate_invoice(d) for d in (body if isinstance(body, list) else [body])]
            except ValueError as error:
                return _erp_error(400, "invalid_invoice", str(error))
            for document in documents:
                self.invoices[document["invoice_id"]] = document
            return json_reply(200, {"invoices": [d["invoice_id"] for d in documents]})
        if request.path == "/postings" and request.method == "GET":
            return json_reply(
                200, {"postings": list(self.postings.values()), "reversals": list(self.reversals.values())}
            )
        return None

    def handle(self, request: Request) -> Reply:
        if not self.authorised(request):
            return _erp_error(401, "unauthorized", "missing or invalid credentials")
        if (match := _ERP_GET.match(request.path)) and request.method == "GET":
            invoice = self.invoices.get(match["id"])
            if invoice is None:
                return _erp_error(404, "invoice_not_found", f"no invoice {match['id']}")
            return json_reply(200, invoice)
        if (match := _ERP_POST.match(request.path)) and request.method == "POST":
            invoice_id = match["id"]
            return self._idempotent(request, lambda: self._post(invoice_id, request))
        if (match := _ERP_REVERSE.match(request.path)) and request.method == "POST":
            posting_id = match["id"]
            return self._idempotent(request, lambda: self._reverse(posting_id, request))
        return _erp_error(404, "not_found", f"no route {request.method} {request.path}")

    def _idempotent(self, request: Request, action: Callable[[], tuple[int, dict[str, Any]]]) -> Reply:
        key = request.header("idempotency-key")
        scoped = f"{request.path}#{key}"
        if key and scoped in self.idempotency:
            status, body = self.idempotency[scoped]
            return json_reply(status, body, [("Idempotent-Replayed", "true")])
        status, body = action()
        if key and status < 500:
            self.idempotency[scoped] = (status, body)
        return json_reply(status, body)

    def _post(self, invoice_id: str, request: Request) -> tuple[int, dict[str, Any]]:
        try:
            document = request.json()
        except ValueError:
            return 400, {"code": "invalid_json", "message": "the body is not JSON"}
        if not isinstance(document, dict):
            return 400, {"code": "invalid_document", "message": "the body is not an object"}
        if document.get("invoice_id", invoice_id) != invoice_id:
            return 422, {"code": "invoice_id_mismatch", "message": "invoice_id differs from the path"}
        active = [
            p for p in self.postings.values() if p["invoice_id"] == invoice_id and p["status"] == "posted"
        ]
        if active:
            return 409, {
                "code": "duplicate_posting",
                "message": f"invoice {invoice_id} is already posted",
                "posting_id": active[0]["posting_id"],
            }
        posting_id = f"PST-{len(self.postings) + 1:06d}"
        posting = {
            "posting_id": posting_id,
            "invoice_id": invoice_id,
            "status": "posted",
            "posted_at": _now(),
            "idempotency_key": request.header("idempotency-key"),
            "document": document,
        }
        self.postings[posting_id] = posting
        return 201, {k: v for k, v in posting.items() if k not in {"document", "idempotency_key"}}

    def _reverse(self, posting_id: str, request: Request) -> tuple[int, dict[str, Any]]:
        posting = self.postings.get(posting_id)
        if posting is None:
            return 404, {"code": "posting_not_found", "message": f"no posting {posting_id}"}
        if posting["status"] == "reversed":
            return 409, {"code": "already_reversed", "message": f"posting {posting_id} is already reversed"}
        try:
            body = request.json()
        except ValueError:
            body = None
        reason = body.get("reason") if isinstance(body, dict) else None
        reversal_id = f"REV-{len(self.reversals) + 1:06d}"
        reversal = {
            "reversal_id": reversal_id,
            "posting_id": posting_id,
            "invoice_id": posting["invoice_id"],
            "status": "reversed",
            "reason": reason,
            "reversed_at": _now(),
        }
        posting["status"] = "reversed"
        self.reversals[reversal_id] = reversal
        return 201, reversal


# -- payments (Stripe) --------------------------------------------------------------------------
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
    token: str | None = None
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotency: dict[str, tuple[str, int, dict[str, Any]]] = field(default_factory=dict)
    refusals: dict[str, Refusal] = field(default_factory=dict)  # invoice id or business key
    attempts: list[dict[str, Any]] = field(default_factory=list)

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
        if self.token is not None and not _same(token, self.token):
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
        self.attempts.append({"form": form, "at": _now()})
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


# -- Slack --------------------------------------------------------------------------------------
@dataclass
class Slack:
    token: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    counter: int = 0

    def reset(self) -> None:
        self.messages.clear()
        self.counter = 0

    def next_ts(self) -> str:
        self.counter += 1
        micros = self.counter * 100
        return f"{SLACK_TS_BASE + micros // 1_000_000}.{micros % 1_000_000:06d}"

    def admin(self, request: Request) -> Reply | None:
        if request.path == "/messages" and request.method == "GET":
            channel = next(iter(parse_qs(request.query).get("channel", [])), None)
            listed = [m for m in self.messages if channel is None or m["channel"] == channel]
            return json_reply(200, {"messages": listed})
        return None

    @staticmethod
    def _arguments(request: Request) -> dict[str, Any]:
        content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
        if content_type == "application/json":
            body = request.json()
            return body if isinstance(body, dict) else {}
        arguments: dict[str, Any] = dict(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))
        if isinstance(arguments.get("blocks"), str):
            with contextlib.suppress(ValueError):
                arguments["blocks"] = json.loads(arguments["blocks"])
        return arguments

    def handle(self, request: Request) -> Reply:  # noqa: PLR0911 - one answer per route
        if request.method != "POST" and request.path != "/auth.test":
            return json_reply(200, {"ok": False, "error": "method_not_supported_for_channel_type"})
        try:
            arguments = self._arguments(request)
        except ValueError:
            return json_reply(200, {"ok": False, "error": "invalid_json"})
        token = request.bearer() or (
            arguments.get("token") if isinstance(arguments.get("token"), str) else None
        )
        if token is None:
            return json_reply(200, {"ok": False, "error": "not_authed"})
        if self.token is not None and not _same(token, self.token):
            return json_reply(200, {"ok": False, "error": "invalid_auth"})
        method = request.path.lstrip("/")
        if method == "auth.test":
            return json_reply(
                200,
                {
                    "ok": True,
                    "url": "https://sandbox.slack.com/",
                    "team": "aios sandbox",
                    "user": "aios",
                    "team_id": SLACK_TEAM,
                    "user_id": SLACK_BOT_USER,
                    "bot_id": SLACK_BOT_ID,
                },
            )
        if method == "chat.postMessage":
            return self._post(arguments)
        if method == "chat.update":
            return self._update(arguments)
        return json_reply(404, {"ok": False, "error": "unknown_method"})

    @staticmethod
    def _channel(arguments: Mapping[str, Any]) -> str | None:
        channel = arguments.get("channel")
        if not isinstance(channel, str) or not channel:
            return None
        if channel.startswith("#"):  # a name: Slack answers with the channel's id
            return "C" + uuid.uuid5(uuid.NAMESPACE_URL, channel).hex[:10].upper()
        return channel

    def _post(self, arguments: Mapping[str, Any]) -> Reply:
        channel = self._channel(arguments)
        if channel is None:
            return json_reply(200, {"ok": False, "error": "channel_not_found"})
        if not arguments.get("text") and not arguments.get("blocks"):
            return json_reply(200, {"ok": False, "error": "no_text"})
        thread_ts = arguments.get("thread_ts")
        if thread_ts and not any(m["channel"] == channel and m["ts"] == thread_ts for m in self.messages):
            return json_reply(200, {"ok": False, "error": "thread_not_found"})
        ts = self.next_ts()
        message = self._message(arguments, ts)
        self.messages.append(
            {
                "channel": channel,
                "ts": ts,
                "thread_ts": thread_ts or None,
                "text": arguments.get("text") or "",
                "blocks": arguments.get("blocks") or [],
                "reply_broadcast": bool(arguments.get("reply_broadcast")),
                "method": "chat.postMessage",
                "updated": False,
            }
        )
        return json_reply(200, {"ok": True, "channel": channel, "ts": ts, "message": message})

    def _update(self, arguments: Mapping[str, Any]) -> Reply:
        channel = self._channel(arguments)
        if channel is None:
            return json_reply(200, {"ok": False, "error": "channel_not_found"})
        ts = arguments.get("ts")
        found = next((m for m in self.messages if m["channel"] == channel and m["ts"] == ts), None)
        if found is None:
            return json_reply(200, {"ok": False, "error": "message_not_found"})
        if "text" in arguments:
            found["text"] = arguments["text"]
        if "blocks" in arguments:
            found["blocks"] = arguments["blocks"]
        found.update(method="chat.update", updated=True)
        message = self._message({"text": found["text"], "blocks": found["blocks"]}, str(ts))
        return json_reply(
            200, {"ok": True, "channel": channel, "ts": ts, "text": found["text"], "message": message}
        )

    @staticmethod
    def _message(arguments: Mapping[str, Any], ts: str) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "message",
            "user": SLACK_BOT_USER,
            "bot_id": SLACK_BOT_ID,
            "team": SLACK_TEAM,
            "text": arguments.get("text") or "",
            "ts": ts,
        }
        if arguments.get("blocks"):
            message["blocks"] = arguments["blocks"]
        if arguments.get("thread_ts"):
            message["thread_ts"] = arguments["thread_ts"]
        return message


# -- the sandbox --------------------------------------------------------------------------------
class Sandbox:
    """The three providers, their faults and one lock; ``handle`` answers ``/_sandbox/...``."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.erp = Erp()
        self.payments = Payments()
        self.slack = Slack()
        self.faults: dict[str, ProviderFault] = {}
        self.erp.seed()

    def credentials(self, api_url: str, connectors: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The secret (``ConnectorSecret`` JSON) of each connector, pointing at this sandbox;
        the tokens are remembered so the providers check them as the real APIs do."""
        base = api_url.rstrip("/") + PREFIX
        values: dict[str, dict[str, Any]] = {}
        with self._lock:
            for name in dict.fromkeys(connectors):
                if name == "erp":
                    self.erp.token = "erp_" + random_secrets.token_urlsafe(24)
                    values[name] = {"base_url": f"{base}/erp", "token": self.erp.token}
                elif name == "payments":
                    self.payments.token = "sk_test_" + random_secrets.token_hex(24)
                    values[name] = {"base_url": f"{base}/payments", "token": self.payments.token}
                elif name == "slack":
                    self.slack.token = "xoxb-" + "-".join(
                        (
                            str(random_secrets.randbelow(10**12)),
                            str(random_secrets.randbelow(10**12)),
                            random_secrets.token_hex(12),
                        )
                    )
                    values[name] = {"base_url": f"{base}/slack", "token": self.slack.token}
                elif name == "email":
                    # SES (moto) does the sending; base_url is unused by the email connector.
                    values[name] = {
                        "base_url": f"{base}/email",
                        "token": random_secrets.token_hex(16),
                        "settings": {"from_address": EMAIL_FROM},
                    }
                else:
                    values[name] = {"base_url": f"{base}/{name}", "token": random_secrets.token_hex(24)}
        return values

    def reset(self) -> None:
        with self._lock:
            self.erp.seed()
            self.payments.reset()
            self.slack.reset()
            self.faults.clear()

    def handle(  # noqa: PLR0911 - one answer per route
        self, method: str, path: str, query: str, headers: Sequence[tuple[str, str]], body: bytes
    ) -> Reply:
        """Answer ``method path`` (``path`` starts with ``/_sandbox``)."""
        rest = path[len(PREFIX) :] if path.startswith(PREFIX) else path
        provider, _, below = rest.lstrip("/").partition("/")
        request = Request(
            method=method,
            path="/" + below,
            query=query,
            headers={name.lower(): value for name, value in headers},
            body=body,
        )
        if provider == "faults" and not below:
            return self._admin_faults(request)
        if provider == "reset" and not below and method == "POST":
            self.reset()
            return json_reply(200, {"reset": True})
        if provider == "" and method == "GET":
            return json_reply(200, {"providers": list(PROVIDERS), "faults": self._fault_snapshot()})
        providers: dict[str, Erp | Payments | Slack] = {
            "erp": self.erp,
            "payments": self.payments,
            "slack": self.slack,
        }
        target = providers.get(provider)
        if target is None:
            return json_reply(404, {"message": "Not Found"})
        with self._lock:
            admin = target.admin(request)
            if admin is not None:
                return admin
            fault = self._take_fault(provider)
        if fault is not None:
            if fault.after_commit:
                with self._lock:
                    target.handle(request)
            if fault.delay_seconds:
                time.sleep(fault.delay_seconds)
            return _fault_reply(provider, fault)
        with self._lock:
            return target.handle(request)

    def _take_fault(self, provider: str) -> ProviderFault | None:
        fault = self.faults.get(provider)
        if fault is None or (fault.times is not None and fault.injected >= fault.times):
            return None
        fault.injected += 1
        return ProviderFault(**{**vars(fault)})

    def _fault_snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {name: fault.snapshot() for name, fault in self.faults.items()}

    def _admin_faults(self, request: Request) -> Reply:
        if request.method == "DELETE":
            with self._lock:
                self.faults.clear()
        elif request.method in {"POST", "PUT"}:
            try:
                body = request.json()
                if not isinstance(body, dict):
                    raise ValueError('faults are an object: {"erp": {"status": 503, "times": 2}}')
                unknown = set(body) - set(PROVIDERS)
                if unknown:
                    raise ValueError(f"unknown providers {sorted(unknown)}; known: {list(PROVIDERS)}")
                parsed = {name: ProviderFault.parse(value) for name, value in body.items()}
            except (ValueError, TypeError) as error:
                return json_reply(400, {"message": str(error)})
            with self._lock:
                self.faults = parsed
        elif request.method != "GET":
            return json_reply(405, {"message": "Method Not Allowed"})
        return json_reply(200, self._fault_snapshot())


EMAIL_FROM = "accounts-payable@aios.local.example.com"

__all__ = [
    "EMAIL_FROM",
    "PREFIX",
    "Reply",
    "Sandbox",
    "SeedCatalog",
    "seed_catalog",
    "stripe_form",
    "validate_invoice",
]
