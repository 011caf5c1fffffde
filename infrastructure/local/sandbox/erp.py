"""The sandbox ERP (``/_sandbox/erp``): the ERP connector's default ``ErpPaths`` and field
names. ``GET /invoices/{id}``, ``POST /invoices/{id}/postings`` and ``POST /postings/{id}/reversal``
(``Idempotency-Key`` honoured: the same key answers the same posting or reversal); errors
are ``{"code": ..., "message": ...}``. Admin: ``GET|POST /invoices``, ``GET /postings``."""

from __future__ import annotations

import re
import secrets as random_secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from infrastructure.local.sandbox.base import (
    ProviderFault,
    Reply,
    Request,
    json_reply,
    retry_after,
    same_secret,
    utc_now,
)
from infrastructure.local.sandbox.seed import seed_catalog, validate_invoice

_ERP_GET = re.compile(r"^/invoices/(?P<id>[^/]+)$")
_ERP_POST = re.compile(r"^/invoices/(?P<id>[^/]+)/postings$")
_ERP_REVERSE = re.compile(r"^/postings/(?P<id>[^/]+)/reversal$")


def _erp_error(status: int, code: str, message: str) -> Reply:
    return json_reply(status, {"code": code, "message": message})


@dataclass
class Erp:
    name: ClassVar[str] = "erp"

    token: str | None = None
    api_key: str | None = None
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    postings: dict[str, dict[str, Any]] = field(default_factory=dict)
    reversals: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotency: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)

    def credentials(self, base_url: str) -> dict[str, Any]:
        self.token = "erp_" + random_secrets.token_urlsafe(24)
        return {"base_url": base_url, "token": self.token}

    def fault_reply(self, fault: ProviderFault) -> Reply:
        status = fault.status
        code = fault.error or (
            "rate_limited" if status == 429 else "service_unavailable" if status >= 500 else "error"
        )
        return json_reply(
            status, {"code": code, "message": f"sandbox fault: HTTP {status}"}, retry_after(fault)
        )

    def reset(self) -> None:
        self.seed()

    def seed(self) -> None:
        self.invoices = {i["invoice_id"]: dict(i) for i in seed_catalog().invoices}
        self.postings.clear()
        self.reversals.clear()
        self.idempotency.clear()

    def authorised(self, request: Request) -> bool:
        if self.token is None and self.api_key is None:
            return True
        return same_secret(request.bearer(), self.token) or same_secret(
            request.header("x-api-key"), self.api_key
        )

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
            "posted_at": utc_now(),
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
            "reversed_at": utc_now(),
        }
        posting["status"] = "reversed"
        self.reversals[reversal_id] = reversal
        return 201, reversal
