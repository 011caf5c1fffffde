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

Each provider is one module of this package implementing ``base.Provider``, listed once in
``PROVIDERS``. Everything is in memory and guarded by one lock per sandbox.
"""

from __future__ import annotations

import secrets as random_secrets
import threading
import time
from collections.abc import Sequence
from typing import Any

from infrastructure.local.sandbox.base import PREFIX, Provider, ProviderFault, Reply, Request, json_reply
from infrastructure.local.sandbox.erp import Erp
from infrastructure.local.sandbox.payments import Payments, stripe_form
from infrastructure.local.sandbox.seed import SeedCatalog, seed_catalog, validate_invoice
from infrastructure.local.sandbox.slack import Slack

#: The providers, each a module of this package: the one list of them.
PROVIDERS: tuple[type[Provider], ...] = (Erp, Payments, Slack)
EMAIL_FROM = "accounts-payable@aios.local.example.com"


class Sandbox:
    """The providers, their faults and one lock; ``handle`` answers ``/_sandbox/...``."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.providers: dict[str, Provider] = {provider.name: provider() for provider in PROVIDERS}
        self.faults: dict[str, ProviderFault] = {}
        for provider in self.providers.values():
            provider.reset()

    def credentials(self, api_url: str, connectors: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The secret (``ConnectorSecret`` JSON) of each connector, pointing at this sandbox;
        the tokens are remembered so the providers check them as the real APIs do."""
        base = api_url.rstrip("/") + PREFIX
        values: dict[str, dict[str, Any]] = {}
        with self._lock:
            for name in dict.fromkeys(connectors):
                provider = self.providers.get(name)
                if provider is not None:
                    values[name] = provider.credentials(f"{base}/{name}")
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
            for provider in self.providers.values():
                provider.reset()
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
            return json_reply(200, {"providers": list(self.providers), "faults": self._fault_snapshot()})
        target = self.providers.get(provider)
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
            return target.fault_reply(fault)
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
                unknown = set(body) - set(self.providers)
                if unknown:
                    raise ValueError(f"unknown providers {sorted(unknown)}; known: {list(self.providers)}")
                parsed = {name: ProviderFault.parse(value) for name, value in body.items()}
            except (ValueError, TypeError) as error:
                return json_reply(400, {"message": str(error)})
            with self._lock:
                self.faults = parsed
        elif request.method != "GET":
            return json_reply(405, {"message": "Method Not Allowed"})
        return json_reply(200, self._fault_snapshot())


__all__ = [
    "EMAIL_FROM",
    "PREFIX",
    "PROVIDERS",
    "Provider",
    "Reply",
    "Sandbox",
    "SeedCatalog",
    "seed_catalog",
    "stripe_form",
    "validate_invoice",
]
