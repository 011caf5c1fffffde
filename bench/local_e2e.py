"""Local mode throughput and acknowledgement latency, each against a floor measured in the same run.

Starts ``aios local up`` (free ports), warms it up (rounds of ``--warmup`` unmeasured
deliveries until a round starts no new worker of webhook-ingest, as ``/_aios/lambda``
counts them: every sender then meets a warm execution environment), then sends
``--count`` signed Standard Webhooks deliveries over HTTP from ``--concurrency`` senders
(``vendor.updated``: the ingest -> bus -> intake -> lineage path alone; an invoice would
also start accounts payable and add lineage rows of its own), timing each acknowledgement
(HTTP 202), and waits until their lineage rows exist. Then:

- **flows floor**: on the same embedded AWS, ``--count`` executions of a pass-only state
  machine, timed from the first start to the last one's ``stopDate`` (what moto's Step
  Functions alone sustains; the flows are timed to their last lineage row alike);
- **ack floor**: the same deliveries, from the same number of senders, to a bare HTTP server
  in this process that verifies the same signature (``aios.webhooks.schemes.verify_standard``)
  and answers 202 (what an HTTP round trip plus the verification costs here);
- **handler floor**: the same deliveries to the real webhook-ingest handler behind the local
  mode's own HTTP API and Lambda workers (``HttpApiServer``, ``LambdaRuntime``), whose three
  AWS calls a stub answers at once instead of moto (a process of its own, canned answers):
  the fastest any local mode that runs the real handler could acknowledge on this machine.

Prints complete flows/s against the pass-only floor (issue 11's target: at least 1/3), and
ack latency p50/p95 against the bare server's (target: p95 at most 5x) and the handler floor's.

    .venv/bin/python bench/local_e2e.py [--count 200] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "layers" / "aios" / "python"))

from aios.webhooks.schemes import standard_key, verify_standard
from infrastructure.local.harness import LocalProcess, sign_standard

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 - a local test secret


def wait_for(probe: Any, timeout: float, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError("bench did not complete in time")
        time.sleep(interval)


def _intake_pages(local: LocalProcess, **projection: str) -> Iterator[dict[str, Any]]:
    """The pages of a scan of the intake lineage rows (``Select`` or ``ProjectionExpression``)."""
    dynamodb = local.client("dynamodb")
    kwargs: dict[str, Any] = {
        "TableName": "aios-local-lineage",
        "FilterExpression": "workflow = :w",
        "ExpressionAttributeValues": {":w": {"S": "intake"}},
        **projection,
    }
    while True:
        page: dict[str, Any] = dynamodb.scan(**kwargs)
        yield page
        if not page.get("LastEvaluatedKey"):
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def lineage_count(local: LocalProcess) -> int:
    return sum(int(page["Count"]) for page in _intake_pages(local, Select="COUNT"))


def last_recorded(local: LocalProcess) -> float:
    """Epoch seconds of the newest intake lineage row (its ``recorded_at``: when the state that
    writes it was entered, milliseconds before the row exists)."""
    newest = max(
        (
            item["recorded_at"]["S"]
            for page in _intake_pages(local, ProjectionExpression="recorded_at")
            for item in page["Items"]
        ),
        default="",
    )
    return datetime.fromisoformat(newest.replace("Z", "+00:00")).timestamp()


def delivery(index: int) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "type": "vendor.updated",
            "timestamp": "2026-11-27T00:00:00Z",
            "data": {"vendor_id": f"V-{index:05d}"},
        }
    ).encode()
    return body, sign_standard(SECRET, body)


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, float]:
    """(status, seconds) of one POST."""
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    return status, time.perf_counter() - started


def send_all(url: str, count: int, concurrency: int) -> list[tuple[int, float]]:
    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(lambda i: post(url, *delivery(i)), range(count)))


def cold_starts(local: LocalProcess, function: str = "webhook-ingest") -> int:
    status, _, body = local.request("GET", "/_aios/lambda")
    assert status == 200, body
    return int(json.loads(body)[function]["cold_starts"])


def warm_up(local: LocalProcess, count: int, concurrency: int, max_rounds: int = 10) -> tuple[float, int]:
    """Rounds of deliveries before the measured ones, until a round starts no new execution
    environment: each sender then finds a warm one (Lambda's steady state; a cold start is a
    one-off per environment, and the pool grows one worker at a time). (Seconds, deliveries.)"""
    started = time.perf_counter()
    sent = 0
    for _ in range(max_rounds):
        before = cold_starts(local)
        with ThreadPoolExecutor(concurrency) as pool:
            results = list(
                pool.map(
                    lambda i: post(local.api + "/webhooks/standard", *delivery(-1 - i)),
                    range(sent, sent + count),
                )
            )
        assert all(status == 202 for status, _ in results), results
        sent += count
        if cold_starts(local) == before:
            break
    wait_for(lambda: lineage_count(local) >= sent, timeout=300)
    return time.perf_counter() - started, sent


def flows(local: LocalProcess, count: int, concurrency: int, offset: int) -> tuple[float, list[float]]:
    """Flows/s from the first send to the newest lineage row's ``recorded_at``. The rows are
    counted every half second only: a count scans the lineage table in the process that
    runs the flows (100-200 ms of its time at a few hundred rows), and polling it every 50 ms
    slowed the very flows it timed."""
    started, started_at = time.perf_counter(), time.time()
    results = send_all(local.api + "/webhooks/standard", count, concurrency)
    statuses = [status for status, _ in results]
    assert statuses.count(202) == count, statuses
    accepted = time.perf_counter() - started
    print(f"accepted (HTTP 202) /s     : {count / accepted:8.1f}")
    wait_for(lambda: lineage_count(local) >= offset + count, timeout=900, interval=0.5)
    return count / (last_recorded(local) - started_at), [seconds for _, seconds in results]


def floor(local: LocalProcess, count: int, concurrency: int) -> float:
    """Pass-only executions/s. STANDARD, because only Standard executions can be described
    (on AWS and in the local mode), and the interpreter is the same for both types."""
    sfn = local.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="bench-pass",
        roleArn="arn:aws:iam::123456789012:role/aios-local",
        type="STANDARD",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
    )["stateMachineArn"]
    started = time.time()
    with ThreadPoolExecutor(concurrency) as pool:
        arns = list(
            pool.map(
                lambda i: sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"],
                range(count),
            )
        )

    def done() -> bool:
        return all(sfn.describe_execution(executionArn=a)["status"] == "SUCCEEDED" for a in arns)

    wait_for(done, timeout=600, interval=0.5)
    # Until the last execution stopped, as the flows are timed to their last lineage row: the
    # polls (and the last one's describe of every execution) are not the floor's work.
    last = max(sfn.describe_execution(executionArn=a)["stopDate"].timestamp() for a in arns)
    return count / (last - started)


class _BareHandler(BaseHTTPRequestHandler):
    """Verifies a Standard Webhooks signature and answers 202: the ack floor."""

    protocol_version = "HTTP/1.1"
    keys = (standard_key(SECRET),)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            verify_standard(headers, body, self.keys, time.time())
            status, reply = 202, b'{"accepted": true}'
        except Exception:  # the floor only needs to do the same work
            status, reply = 401, b'{"message": "invalid signature"}'
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    """socketserver's threaded HTTP server with a real listen backlog (its default of 5 drops
    the SYNs of more senders than that: the client resends a second later)."""

    daemon_threads = True
    request_queue_size = socket.SOMAXCONN


def ack_floor(count: int, concurrency: int) -> list[float]:
    server = _Server(("127.0.0.1", 0), _BareHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        results = send_all(
            f"http://127.0.0.1:{server.server_address[1]}/webhooks/standard", count, concurrency
        )
    finally:
        server.shutdown()
        server.server_close()
    assert all(status == 202 for status, _ in results), results[:3]
    return [seconds for _, seconds in results]


class _StubAws(BaseHTTPRequestHandler):
    """Answers webhook-ingest's AWS calls at once: the signing secret, the idempotency record's
    put and update, the bus put. Nothing is stored: what is left is the handler's own cost."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        operation = str(self.headers.get("x-amz-target", "")).rpartition(".")[2]
        answer: dict[str, Any] = {}
        if operation == "GetSecretValue":
            name = json.loads(body)["SecretId"]
            arn = f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}"
            answer = {
                "ARN": arn,
                "Name": name,
                "SecretString": json.dumps({"current": SECRET}),
                "VersionId": "v1",
            }
        elif operation == "PutEvents":
            answer = {"FailedEntryCount": 0, "Entries": [{"EventId": str(uuid.uuid4())}]}
        data = json.dumps(answer).encode()
        head = (
            f"HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {len(data)}\r\n"
        )
        self.wfile.write(head.encode() + b"\r\n" + data)  # one write: no Nagle and delayed-ACK stall

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(server: ThreadingHTTPServer, conn: Connection) -> None:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    conn.send(server.server_address[1])
    conn.recv()  # until the bench is done


def _serve_stub_aws(conn: Connection) -> None:
    _serve(_Server(("127.0.0.1", 0), _StubAws), conn)


def _serve_handler(conn: Connection, aws_endpoint: str, concurrency: int) -> None:
    """webhook-ingest as ``aios local up`` runs it (its CDK environment, its worker processes,
    the HTTP API's payload v2 events), without moto."""
    from infrastructure.local.deploy import LocalNames  # noqa: PLC0415
    from infrastructure.local.faults import Faults  # noqa: PLC0415
    from infrastructure.local.http_api import HttpApiServer  # noqa: PLC0415
    from infrastructure.local.lambda_runtime import LambdaRuntime  # noqa: PLC0415
    from infrastructure.local.runtime import local_function  # noqa: PLC0415
    from infrastructure.platform import PLATFORM  # noqa: PLC0415

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)  # the handler's log lines (its workers inherit this stderr)
    routes = [r for r in PLATFORM.routes if r.function == "webhook-ingest"]
    spec = next(f for f in PLATFORM.functions if f.name == "webhook-ingest")
    function = local_function(PLATFORM, spec, LocalNames())
    runtime = LambdaRuntime(
        {spec.name: function}, Faults(), aws_endpoint=aws_endpoint, default_concurrency=concurrency
    )
    try:
        _serve(HttpApiServer(("127.0.0.1", 0), routes=routes, runtime=runtime), conn)
    finally:
        runtime.stop()


def handler_floor(count: int, concurrency: int, warmup: int) -> list[float]:
    """Ack latencies of the real handler behind the local HTTP API and workers, moto replaced
    by a stub (each in a process of its own, as ``aios local up``'s parts are)."""
    context = multiprocessing.get_context("spawn")
    stub_end, stub_child = context.Pipe()
    stub = context.Process(target=_serve_stub_aws, args=(stub_child,), daemon=True)
    stub.start()
    aws = f"http://127.0.0.1:{stub_end.recv()}"
    api_end, api_child = context.Pipe()
    api = context.Process(target=_serve_handler, args=(api_child, aws, concurrency), daemon=True)
    api.start()
    url = f"http://127.0.0.1:{api_end.recv()}/webhooks/standard"
    try:
        for round_ in range(3):  # every worker started and warm
            warm = [post(url, *delivery(10**6 * (round_ + 1) + i)) for i in range(warmup)]
            assert all(status == 202 for status, _ in warm), warm[:3]
            send_all(url, warmup, concurrency)
        results = send_all(url, count, concurrency)
    finally:
        for end, process in ((api_end, api), (stub_end, stub)):
            end.send("stop")
            process.join(timeout=10)
    assert all(status == 202 for status, _ in results), results[:3]
    return [seconds for _, seconds in results]


def percentile(values: list[float], fraction: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="unmeasured deliveries per warm-up round (default 2x concurrency; 0: no warm-up)",
    )
    args = parser.parse_args()
    warmup = 2 * args.concurrency if args.warmup is None else args.warmup
    local = LocalProcess.start(env={"AIOS_LOCAL_SECRET_STANDARD": SECRET, "POWERTOOLS_LOG_LEVEL": "WARNING"})
    try:
        offset = 0
        if warmup:
            seconds, offset = warm_up(local, warmup, args.concurrency)
            print(f"warm-up ({offset} deliveries): {seconds:.1f} s")
        flow_rate, acks = flows(local, args.count, args.concurrency, offset)
        floor_rate = floor(local, args.count, args.concurrency)
    finally:
        local.stop()
    bare = ack_floor(args.count, args.concurrency)
    handler = handler_floor(args.count, args.concurrency, warmup=max(warmup, args.concurrency))
    print(f"webhook-to-lineage flows/s : {flow_rate:8.1f}  ({args.count} signed webhooks over HTTP)")
    print(f"pass-only executions/s     : {floor_rate:8.1f}  (floor: moto Step Functions alone)")
    print(f"ratio flows / floor        : {flow_rate / floor_rate:8.2f}  (target >= 0.33)")
    ack50, ack95 = percentile(acks, 0.50) * 1000, percentile(acks, 0.95) * 1000
    bare50, bare95 = percentile(bare, 0.50) * 1000, percentile(bare, 0.95) * 1000
    print(f"ack latency p50 / p95 ms   : {ack50:8.1f} / {ack95:.1f}  ({args.concurrency} concurrent senders)")
    print(f"bare server p50 / p95 ms   : {bare50:8.1f} / {bare95:.1f}  (floor: HTTP + signature check)")
    print(f"ratio ack p95 / floor p95  : {ack95 / bare95:8.1f}  (target <= 5)")
    handler50, handler95 = percentile(handler, 0.50) * 1000, percentile(handler, 0.95) * 1000
    print(
        f"handler floor p50 / p95 ms : {handler50:8.1f} / {handler95:.1f}"
        "  (the real handler, local HTTP API and workers, AWS stubbed)"
    )
    print(
        f"ratio handler floor / bare : {handler95 / bare95:8.1f}  (p95: the best any local mode could reach)"
    )
    print(f"ratio ack p95 / handler    : {ack95 / handler95:8.1f}  (p95: what moto and the flows add)")


if __name__ == "__main__":
    main()
