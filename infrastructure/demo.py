"""``make demo``: the platform on the embedded AWS, driven over HTTP like a SaaS would.

Starts ``aios local up`` on free ports, sends signed Standard Webhooks invoice deliveries
(plus a repeated delivery and an unsigned one), waits for the intake workflow to finish,
prints each execution's state-by-state history and the lineage rows, and stops everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from infrastructure.local.harness import LocalProcess, invoice_webhook, sign_standard

INVOICES = ("INV-1001", "INV-1002", "INV-1003")
WAIT_SECONDS = 60


def _send(local: LocalProcess, body: bytes, headers: dict[str, str], label: str) -> None:
    status, _, reply = local.request("POST", "/webhooks/standard", body, headers)
    print(f"  {label:<38} -> {status} {reply.decode()}")


def _wait_for_executions(local: LocalProcess, expected: int) -> list[dict[str, object]]:
    sfn = local.client("stepfunctions")
    machine = next(m for m in sfn.list_state_machines()["stateMachines"] if m["name"].endswith("-intake"))
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        executions = sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]
        finished = [e for e in executions if e["status"] != "RUNNING"]
        if len(finished) >= expected or time.monotonic() > deadline:
            return finished
        time.sleep(0.2)


def main() -> int:
    print("starting the local mode (moto on 127.0.0.1, handlers in-process) ...")
    local = LocalProcess.start()
    try:
        print(f"ready: api={local.api} aws={local.aws}\n")
        secret = local.secrets["standard"]
        print("sending webhooks to POST /webhooks/standard:")
        first = invoice_webhook(INVOICES[0])
        first_headers = sign_standard(secret, first)
        _send(local, first, first_headers, f"invoice.received {INVOICES[0]}")
        _send(local, first, first_headers, f"same delivery again ({INVOICES[0]})")
        for invoice_id in INVOICES[1:]:
            body = invoice_webhook(invoice_id)
            _send(local, body, sign_standard(secret, body), f"invoice.received {invoice_id}")
        _send(local, invoice_webhook("INV-6666"), {"content-type": "application/json"}, "unsigned delivery")

        executions = _wait_for_executions(local, expected=len(INVOICES))
        print(f"\n{len(executions)} intake executions finished:")
        for execution in executions:
            print(f"  {execution['name']}  {execution['status']}")
        if executions:
            print()
            subprocess.run(  # noqa: S603 - our own CLI
                [sys.executable, "-m", "infrastructure.cli", "executions", "show",
                 str(executions[0]["executionArn"]), "--endpoint-url", local.aws],
                check=True,
            )  # fmt: skip

        print("\nlineage rows (table aios-local-lineage, by business key):")
        dynamodb = local.client("dynamodb")
        table = next(name for name in dynamodb.list_tables()["TableNames"] if name.endswith("-lineage"))
        for invoice_id in INVOICES:
            rows = dynamodb.query(
                TableName=table,
                IndexName="by-business-key",
                KeyConditionExpression="business_key = :key",
                ExpressionAttributeValues={":key": {"S": f"erp:{invoice_id}"}},
            )["Items"]
            for row in rows:
                print("  " + json.dumps({k: next(iter(v.values())) for k, v in sorted(row.items())}))
        succeeded = sum(1 for e in executions if e["status"] == "SUCCEEDED")
        print(f"\nsummary: {succeeded}/{len(INVOICES)} invoices received, recorded and announced")
        return 0 if succeeded == len(INVOICES) else 1
    finally:
        status = local.stop()
        print(f"local mode stopped (exit {status})")


if __name__ == "__main__":
    sys.exit(main())
