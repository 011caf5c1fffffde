"""Overhead of the connector kit per call, against a bare httpx call to the same server.

Run: ``.venv/bin/python bench/connectors.py [calls]``

One local HTTP server (stdlib ThreadingHTTPServer on 127.0.0.1) answers as Stripe's
PaymentIntents API. Measured in the same run, µs per call:

- ``bare httpx``: ``client.get(...)`` + ``response.json()``, same timeouts;
- ``validation only``: request parsing and the typed result, no I/O (pure kit CPU);
- ``kit read``: ``get_payment_status``: validation + breaker check + call + mapping;
- ``kit side effect``: ``create_payment`` with a new business key each call: adds the
  idempotency record (in-progress write, completion write).

The breaker and idempotency stores are moto's DynamoDB **in process** (``mock_aws``): each
DynamoDB call goes through botocore and moto's Python emulation, so the figures bound
the kit's own cost plus an in-process store, not a network round trip to DynamoDB
(~2-6 ms each in a region, one consistent read per call on the healthy path, plus two
writes for a side effect).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "aios" / "python")]
for name, value in {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}.items():
    os.environ.setdefault(name, value)

import boto3  # noqa: E402
import httpx  # noqa: E402
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer  # noqa: E402
from moto import mock_aws  # noqa: E402

from aios.connectors import CircuitBreaker, Credentials, Timeouts  # noqa: E402
from aios.connectors.catalog import payments  # noqa: E402

INTENT = json.dumps(
    {"id": "pi_1", "object": "payment_intent", "amount": 123450, "currency": "eur", "status": "processing"}
).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real API

    def setup(self) -> None:
        super().setup()
        # Headers and body are two writes: without this, Nagle + delayed ACK add ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(INTENT)))
        self.end_headers()
        self.wfile.write(INTENT)

    do_GET = do_POST = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


def per_call_us(function: Callable[[int], object], calls: int) -> float:
    for i in range(min(20, calls)):  # warm up (connections, caches)
        function(-1 - i)
    started = time.perf_counter()
    for i in range(calls):
        function(i)
    return (time.perf_counter() - started) / calls * 1e6


def main(calls: int) -> None:
    # Powertools warns that no Lambda context is registered (no remaining-time bound): expected here.
    warnings.simplefilter("ignore", UserWarning)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        for table in ("idempotency", "circuit"):
            dynamodb.create_table(
                TableName=table,
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        secrets = boto3.client("secretsmanager")
        secrets.create_secret(
            Name="bench/connectors/payments", SecretString=json.dumps({"base_url": url, "token": "sk"})
        )
        connector = payments.PaymentsConnector(
            credentials=Credentials(client=secrets, prefix="bench"),
            breaker=CircuitBreaker(table_name="circuit", client=dynamodb),
            idempotency_store=DynamoDBPersistenceLayer(table_name="idempotency", boto3_client=dynamodb),
        )
        bare = httpx.Client(base_url=url, timeout=Timeouts().httpx(), headers={"Authorization": "Bearer sk"})

        def bare_call(_: int) -> object:
            return bare.get("/v1/payment_intents/pi_1").json()

        def validation_only(i: int) -> object:
            request = payments.CreatePayment.model_validate({**CREATE, "business_key": f"erp:INV-{i}"})
            return payments.PaymentResult(
                **connector.result("create_payment"), payment_id="pi_1", status="processing",
                amount=request.amount, currency=request.currency,
            ).model_dump(mode="json")  # fmt: skip

        def kit_read(_: int) -> object:
            request = payments.PaymentsConnector.request_adapter().validate_python(
                {"operation": "get_payment_status", "payment_id": "pi_1"}
            )
            return payments.PaymentsConnector.handle(request, connector).model_dump(mode="json")

        def kit_side_effect(i: int) -> object:
            request = payments.PaymentsConnector.request_adapter().validate_python(
                {**CREATE, "business_key": f"erp:INV-{i}"}
            )
            return payments.PaymentsConnector.handle(request, connector).model_dump(mode="json")

        results = {
            "bare httpx": per_call_us(bare_call, calls),
            "validation only": per_call_us(validation_only, calls),
            "kit read (breaker on moto)": per_call_us(kit_read, calls),
            "kit side effect (+idempotency on moto)": per_call_us(kit_side_effect, calls),
        }
    server.shutdown()
    baseline = results["bare httpx"]
    print(f"{calls} calls each, local server {url}, stores: moto DynamoDB in process")
    for label, micros in results.items():
        ratio = micros / baseline
        print(f"{label:<40} {micros:9.0f} µs/call  x{ratio:5.2f} bare  ({micros - baseline:+.0f} µs)")


CREATE = {
    "operation": "create_payment",
    "invoice_id": "INV-1001",
    "vendor_id": "V-42",
    "amount": "1234.50",
    "currency": "EUR",
}

if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
