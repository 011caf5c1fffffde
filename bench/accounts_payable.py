"""State transitions of the accounts-payable workflow and its Step Functions cost.

Runs the local mode, sends one clean invoice (the happy path: automatic approval, posted,
paid) and one anomalous invoice approved in Slack, and counts from each execution's history
what AWS bills a Standard workflow for: state transitions (every state entered, plus every
retry of a task). Prints the counts, the Lambda invocations, and the cost per 1,000 invoices
at the list price, with the human-approval path as a ratio of the happy path.

    .venv/bin/python bench/accounts_payable.py
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infrastructure.local.harness import (
    LocalProcess,
    invoice_webhook,
    sign_slack,
    sign_standard,
    slack_action_body,
)
from infrastructure.platform.payables import APPROVERS_ENVIRONMENT

#: Step Functions Standard list price, us-east-1, per state transition (USD 0.025 per 1,000).
PRICE_PER_TRANSITION = 0.025 / 1000
CLEAN, ANOMALOUS = "INV-2001", "INV-2002"
WORKFLOW = "accounts-payable"


@dataclass(frozen=True)
class ExecutionPath:
    name: str
    states_entered: int
    retries: int
    lambda_invocations: int
    final_state: str

    @property
    def transitions(self) -> int:
        return self.states_entered + self.retries


def _measure(name: str, events: list[dict[str, Any]]) -> ExecutionPath:
    entered = [e for e in events if e["type"].endswith("StateEntered")]
    scheduled = sum(1 for e in events if e["type"] == "TaskScheduled")
    task_states = sum(1 for e in entered if e["type"] == "TaskStateEntered")
    lambdas = sum(
        1
        for e in events
        if e["type"] == "TaskScheduled" and e["taskScheduledEventDetails"]["resourceType"] == "lambda"
    )
    return ExecutionPath(
        name=name,
        states_entered=len(entered),
        retries=scheduled - task_states,
        lambda_invocations=lambdas,
        final_state=str(entered[-1]["stateEnteredEventDetails"]["name"]),
    )


def _execution_of(local: LocalProcess, business_key: str, deadline: float) -> str:
    while time.monotonic() < deadline:
        if found := local.executions_for(WORKFLOW, business_key):
            return found[0]
        time.sleep(0.2)
    raise TimeoutError(f"no execution for {business_key}")


def _wait_finished(local: LocalProcess, arn: str, deadline: float) -> None:
    sfn = local.client("stepfunctions")
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
        if time.monotonic() > deadline:
            raise TimeoutError(arn)
        time.sleep(0.2)


def main() -> int:
    local = LocalProcess.start()
    try:
        deadline = time.monotonic() + 120
        for invoice_id in (CLEAN, ANOMALOUS):
            body = invoice_webhook(invoice_id)
            local.request("POST", "/webhooks/standard", body, sign_standard(local.secrets["standard"], body))
        clean = _execution_of(local, f"erp:{CLEAN}", deadline)
        anomalous = _execution_of(local, f"erp:{ANOMALOUS}", deadline)
        while not local.approval_ids():
            if time.monotonic() > deadline:
                raise TimeoutError("no approval request")
            time.sleep(0.2)
        approver, channel = (
            APPROVERS_ENVIRONMENT["AIOS_APPROVERS"],
            APPROVERS_ENVIRONMENT["AIOS_APPROVAL_CHANNEL"],
        )
        message = next(m for m in local.slack_messages(channel=channel) if not m.get("thread_ts"))
        body = slack_action_body(local.approval_ids()[0], "approve", approver, channel, message["ts"])
        local.request("POST", "/approvals/slack", body, sign_slack(local.secrets["slack"], body))
        for arn in (clean, anomalous):
            _wait_finished(local, arn, deadline)
        happy = _measure("clean invoice: automatic approval, posted, paid", local.history(clean))
        human = _measure("anomalous invoice: approved in Slack, posted, paid", local.history(anomalous))
    finally:
        local.stop()

    print(f"{'path':<52} {'states':>6} {'retries':>7} {'transitions':>11} {'lambdas':>7}  final state")
    for path in (happy, human):
        print(
            f"{path.name:<52} {path.states_entered:>6} {path.retries:>7} {path.transitions:>11}"
            f" {path.lambda_invocations:>7}  {path.final_state}"
        )
    print(
        f"\nStep Functions Standard list price: USD {PRICE_PER_TRANSITION * 1000:.3f} per 1,000 transitions"
    )
    for path in (happy, human):
        print(f"  {path.name}: USD {path.transitions * PRICE_PER_TRANSITION * 1000:.3f} per 1,000 invoices")
    print(f"human path / happy path transitions: {human.transitions / happy.transitions:.2f}x")
    return 0 if happy.final_state == human.final_state == "Invoice paid" else 1


if __name__ == "__main__":
    sys.exit(main())
