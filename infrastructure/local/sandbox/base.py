"""What every sandbox provider shares: the request and reply shapes, injected faults, and
the ``Provider`` protocol each provider module implements."""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Protocol

PREFIX = "/_sandbox"


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


def same_secret(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and hmac.compare_digest(a.encode(), b.encode())


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def retry_after(fault: ProviderFault) -> list[tuple[str, str]]:
    """The ``Retry-After`` header of a faulted 429/503 answer."""
    return [("Retry-After", f"{fault.retry_after:g}")] if fault.status in (429, 503) else []


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


class Provider(Protocol):
    """A stand-in for one provider's API, served under ``/_sandbox/<name>``."""

    #: The connector (and its secret) this provider answers for.
    name: ClassVar[str]

    def reset(self) -> None:
        """Back to the seeded state."""

    def credentials(self, base_url: str) -> dict[str, Any]:
        """The connector's secret (``ConnectorSecret`` JSON) pointing at ``base_url``; the
        provider remembers the token and checks it as the real API does."""

    def admin(self, request: Request) -> Reply | None:
        """An answer to an admin endpoint (no auth), or ``None`` for the provider's API."""

    def handle(self, request: Request) -> Reply:
        """The provider's API."""

    def fault_reply(self, fault: ProviderFault) -> Reply:
        """An injected fault, in the provider's own error shape."""
