"""Local mode throughput: complete webhook-to-lineage flows per second, against the floor.

Starts ``aios local up`` (free ports), sends 200 signed Standard Webhooks deliveries over HTTP
(``vendor.updated``: the ingest -> bus -> intake -> lineage path alone; an invoice would also
start accounts payable, whose own steps would compete for the in-process Lambda lock and
add lineage rows) and waits until their 200 lineage rows exist; then, on the same embedded AWS, starts 200
executions of a pass-only state machine and waits until all succeeded (the floor: what moto's
Step Functions alone sustains). Prints both rates and their ratio.

    .venv/bin/python bench/local_e2e.py [--count 200] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infrastructure.local.harness import LocalProcess, sign_standard

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 - a local test secret


def wait_for(probe: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError("bench did not complete in time")
        time.sleep(0.05)


def lineage_count(local: LocalProcess) -> int:
    dynamodb = local.client("dynamodb")
    count, start = 0, None
    while True:
        kwargs: dict[str, Any] = {
            "TableName": "aios-local-lineage",
            "Select": "COUNT",
            "FilterExpression": "workflow = :w",
            "ExpressionAttributeValues": {":w": {"S": "intake"}},
        }
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = dynamodb.scan(**kwargs)
        count += int(page["Count"])
        start = page.get("LastEvaluatedKey")
        if not start:
            return count


def flows(local: LocalProcess, count: int, concurrency: int) -> float:
    def send(index: int) -> int:
        body = json.dumps(
            {
                "type": "vendor.updated",
                "timestamp": "2026-11-27T00:00:00Z",
                "data": {"vendor_id": f"V-{index:05d}"},
            }
        ).encode()
        status, _, _ = local.request("POST", "/webhooks/standard", body, sign_standard(SECRET, body))
        return status

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        statuses = list(pool.map(send, range(count)))
    assert statuses.count(202) == count, statuses
    accepted = time.perf_counter() - started
    print(f"accepted (HTTP 202) /s     : {count / accepted:8.1f}  (ingest only, webhook-ingest in-process)")
    wait_for(lambda: lineage_count(local) >= count, timeout=600)
    return count / (time.perf_counter() - started)


def floor(local: LocalProcess, count: int, concurrency: int) -> float:
    sfn = local.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="bench-pass",
        roleArn="arn:aws:iam::123456789012:role/aios-local",
        type="EXPRESS",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
    )["stateMachineArn"]
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        arns = list(
            pool.map(
                lambda i: sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"],
                range(count),
            )
        )

    def done() -> bool:
        return all(sfn.describe_execution(executionArn=a)["status"] == "SUCCEEDED" for a in arns)

    wait_for(done, timeout=600)
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    local = LocalProcess.start(env={"AIOS_LOCAL_SECRET_STANDARD": SECRET, "POWERTOOLS_LOG_LEVEL": "WARNING"})
    try:
        flow_rate = flows(local, args.count, args.concurrency)
        floor_rate = floor(local, args.count, args.concurrency)
    finally:
        local.stop()
    print(f"webhook-to-lineage flows/s : {flow_rate:8.1f}  ({args.count} signed webhooks over HTTP)")
    print(f"pass-only executions/s     : {floor_rate:8.1f}  (floor: moto Step Functions alone)")
    print(f"ratio flows / floor        : {flow_rate / floor_rate:8.2f}")


if __name__ == "__main__":
    main()
