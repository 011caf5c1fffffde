"""Webhook ingest: in-process throughput of our path against the bare floor, and cold import.

Prints, in one run:
- ours: API Gateway event -> WebhookRequest -> verify (Stripe) -> JSON parse -> Delivery ->
  Envelope -> EventBridge detail string (no AWS; secrets in memory);
- ours+dedup: the whole ``ingest`` with a fake publisher and an in-memory idempotency store;
- floor: HMAC-SHA256 over the same signed payload, a constant-time compare and ``json.loads``;
- the ratio ours/floor (target >= 0.5);
- cold import of the handler module in a fresh interpreter against ``import boto3`` alone
  (target <= 1.5x), with ``aios.observability`` alone for attribution, and what Powertools'
  ``Tracer()`` (the X-Ray SDK, no longer on the path: aios/observability.py) would add;
- with SnapStart the import runs once per published version, not per cold start: what a
  restored environment pays instead is the after-restore hooks (``aios.snapstart.restore``),
  timed here after the handler's import.

Run: ``.venv/bin/python bench/ingest.py``
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "layers" / "aios" / "python")]

from aws_lambda_powertools.utilities.idempotency.exceptions import (  # noqa: E402
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer  # noqa: E402
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord  # noqa: E402

from aios.envelope import DocumentRef  # noqa: E402
from aios.secrets import WebhookSecret  # noqa: E402
from aios.webhooks.adapters import BusEntry  # noqa: E402
from aios.webhooks.ingest import Prepared, WebhookIngestor  # noqa: E402
from aios.webhooks.request import WebhookRequest  # noqa: E402

SECRET = "whsec_bench_secret_value_0123456789"  # noqa: S105 - a bench key
NOW = 1_750_000_000
ROUNDS = 5


def stripe_event_body(line_items: int = 12) -> bytes:
    """A Stripe ``invoice.paid`` event; 12 line items make about 1.6 KB, 40 about 4 KB."""
    lines = [
        {"id": f"il_{i}", "amount": 1000 + i, "currency": "eur", "description": f"Line {i}", "quantity": 1}
        for i in range(line_items)
    ]
    event = {
        "id": "evt_1PbenchAAAAAAAAAAAAAAAA",
        "object": "event",
        "api_version": "2024-06-20",
        "created": NOW - 3,
        "type": "invoice.paid",
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "data": {
            "object": {
                "id": "in_1PbenchBBBBBBBBBBBBBBBB",
                "object": "invoice",
                "customer": "cus_bench",
                "amount_due": 13266,
                "amount_paid": 13266,
                "currency": "eur",
                "status": "paid",
                "lines": {"object": "list", "data": lines, "has_more": False},
                "metadata": {"erp_invoice": "INV-1001"},
            }
        },
    }
    return json.dumps(event).encode()


class Secrets:
    def __init__(self) -> None:
        self.secret = WebhookSecret.model_validate({"current": SECRET})

    def get(self, source: str) -> WebhookSecret:
        return self.secret


class Publisher:
    def put(self, entry: BusEntry) -> None:
        return None


class Documents:
    def put(self, body: bytes, *, key: str, content_type: str = "application/json") -> DocumentRef:
        raise AssertionError("the bench body is below the claim-check threshold")


class MemoryStore(BasePersistenceLayer):
    def __init__(self) -> None:
        super().__init__()
        self.records: dict[str, DataRecord] = {}

    def _get_record(self, idempotency_key: str) -> DataRecord:
        try:
            return self.records[idempotency_key]
        except KeyError:
            raise IdempotencyItemNotFoundError from None

    def _put_record(self, data_record: DataRecord) -> None:
        if data_record.idempotency_key in self.records:
            raise IdempotencyItemAlreadyExistsError(old_data_record=self.records[data_record.idempotency_key])
        self.records[data_record.idempotency_key] = data_record

    def _update_record(self, data_record: DataRecord) -> None:
        self.records[data_record.idempotency_key] = data_record

    def _delete_record(self, data_record: DataRecord) -> None:
        self.records.pop(data_record.idempotency_key, None)


def api_event(body: bytes) -> dict[str, Any]:
    signature = hmac.new(SECRET.encode(), f"{NOW}.".encode() + body, hashlib.sha256).hexdigest()
    return {
        "version": "2.0",
        "rawPath": "/webhooks/stripe",
        "headers": {"content-type": "application/json", "stripe-signature": f"t={NOW},v1={signature}"},
        "pathParameters": {"source": "stripe"},
        "body": body.decode(),
        "isBase64Encoded": False,
    }


def rate(fn: Any, iterations: int) -> float:
    """Best of ``ROUNDS`` runs, in operations per second."""
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(iterations):
            fn()
        best = min(best, time.perf_counter() - start)
    return iterations / best


#: A fresh interpreter's environment: the repository and the layer on its path, as here.
_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "layers" / "aios" / "python")])}


def _median_seconds(code: str, runs: int) -> float:
    """The median of what ``code`` prints (seconds), each run in a fresh interpreter."""
    return statistics.median(
        float(
            subprocess.run(
                [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=_ENV, cwd=REPO
            ).stdout
        )
        for _ in range(runs)
    )


def cold_import(statement: str, runs: int = 7) -> float:
    """Median seconds of ``statement`` in fresh interpreters (bytecode already cached)."""
    subprocess.run([sys.executable, "-c", statement], check=True, env=_ENV, cwd=REPO)  # warm the .pyc
    return _median_seconds(
        f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)", runs
    )


def throughput(line_items: int) -> None:
    body = stripe_event_body(line_items)
    event = api_event(body)
    key = SECRET.encode()
    header = event["headers"]["stripe-signature"]
    expected_signature = header.split("v1=")[1]

    ingestor = WebhookIngestor(
        secrets=Secrets(),
        publisher=Publisher(),
        documents=Documents(),
        persistence=MemoryStore(),
        clock=lambda: NOW,
    )

    def ours() -> None:
        prepared = ingestor.prepare(WebhookRequest.from_api_gateway(event), now=NOW)
        assert isinstance(prepared, Prepared)
        prepared.inline_detail()

    counter = iter(range(10**9))

    def ours_with_dedup() -> None:
        # a new delivery id each time, so every call publishes
        fresh = {**event, "body": event["body"]}
        request = WebhookRequest.from_api_gateway(fresh)
        prepared = ingestor.prepare(request, now=NOW)
        assert isinstance(prepared, Prepared)
        ingestor._publish_once(  # the idempotent put, without metrics and logs
            delivery={"source": "stripe", "delivery_id": f"evt_{next(counter)}"}, prepared=prepared
        )

    def floor() -> None:
        digest = hmac.new(key, f"{NOW}.".encode() + body, hashlib.sha256).hexdigest()
        hmac.compare_digest(digest.encode(), expected_signature.encode())
        json.loads(body)

    iterations = 5000
    ours_rate = rate(ours, iterations)
    dedup_rate = rate(ours_with_dedup, iterations // 5)
    floor_rate = rate(floor, iterations)
    print(f"body: {len(body)} bytes (Stripe invoice.paid)")
    print(f"ours  (verify+validate+envelope): {ours_rate:>10,.0f} /s  ({1e6 / ours_rate:6.1f} us)")
    print(f"ours + idempotent put (in-memory): {dedup_rate:>9,.0f} /s  ({1e6 / dedup_rate:6.1f} us)")
    print(f"floor (hmac + json.loads):        {floor_rate:>10,.0f} /s  ({1e6 / floor_rate:6.1f} us)")
    print(f"ratio ours/floor: {ours_rate / floor_rate:.2f}x (target >= 0.5x)")


def main() -> None:
    warnings.simplefilter("ignore")
    for line_items in (12, 40, 160):
        throughput(line_items)
        print()
    boto3_s = cold_import("import boto3")
    observability_s = cold_import("import aios.observability")
    handler_s = cold_import("import functions.webhook_ingest.handler")
    # The X-Ray SDK is no longer a dependency (aios.observability); timed only where installed.
    tracer_s = (
        cold_import("from aws_lambda_powertools import Tracer; Tracer()")
        if importlib.util.find_spec("aws_xray_sdk")
        else None
    )
    print(f"cold import boto3:                   {boto3_s * 1000:7.1f} ms")
    print(f"cold import aios.observability:      {observability_s * 1000:7.1f} ms")
    print(f"cold import webhook_ingest.handler:  {handler_s * 1000:7.1f} ms")
    if tracer_s is not None:
        print(f"(not imported) Powertools Tracer():  {tracer_s * 1000:7.1f} ms  (X-Ray SDK + patching)")
    print(f"ratio handler/boto3: {handler_s / boto3_s:.2f}x (target <= 1.5x)")
    restore_s = after_import(
        "import functions.webhook_ingest.handler", "from aios import snapstart; snapstart.restore()"
    )
    print(f"SnapStart after-restore hooks:       {restore_s * 1000:7.3f} ms (per restore, not the import)")


def after_import(setup: str, statement: str, runs: int = 7) -> float:
    """Median seconds of ``statement`` in fresh interpreters, once ``setup`` has run."""
    return _median_seconds(
        f"{setup}; import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)", runs
    )


if __name__ == "__main__":
    main()
