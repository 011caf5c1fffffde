"""``make demo``: accounts payable on the embedded AWS, driven over HTTP like the real systems.

Starts ``aios local up`` on free ports (sandbox ERP with 20 invoices, some anomalous; sandbox
payments and Slack), sends one signed ``invoice.received`` webhook per invoice, refuses the
payment of one invoice (compensation), answers the Slack approvals with signed callbacks the
way an approver's clicks arrive (approve, reject, or no answer: reminder, escalation,
automatic rejection), waits for every workflow, prints a summary and the full lineage of one
escalated invoice, and stops everything it started.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from infrastructure.local.harness import (
    LocalProcess,
    approval_id_of,
    invoice_webhook,
    sign_slack,
    sign_standard,
    slack_action_body,
)
from infrastructure.platform import PLATFORM
from infrastructure.platform.payables import APPROVERS_ENVIRONMENT, with_approval_ladder

#: The demo's platform: the default one with an approval ladder of seconds, not hours.
DEMO_PLATFORM = with_approval_ladder(PLATFORM, reminder=8, escalation=8, expiry=8)

INVOICES = [f"INV-{number}" for number in range(2001, 2021)]
REFUSED_PAYMENT = "INV-2010"  # a clean invoice whose payment the processor declines
REJECTED = "INV-2005"  # the changed bank account: the approver says no
UNANSWERED = "INV-2017"  # nobody clicks: reminder, escalation, automatic rejection
APPROVER = APPROVERS_ENVIRONMENT["AIOS_APPROVERS"].split(",")[0]
CHANNEL = APPROVERS_ENVIRONMENT["AIOS_APPROVAL_CHANNEL"]
DEADLINE_SECONDS = 100
WORKFLOW = "accounts-payable"

OUTCOMES = {
    "Invoice paid": "paid",
    "Invoice rejected by the approver": "rejected",
    "Invoice rejected: nobody answered": "rejected (no answer)",
    "Invoice rejected as invalid": "rejected (invalid)",
    "Payment failed: posting reversed": "compensated",
    "Invoice not processed": "failed",
}


#: The summary's outcome words, as ``infrastructure.ops.report.summary_counts`` counts them.
SUMMARY_WORDS = {
    "rejected": "rejected",
    "rejected (no answer)": "auto-rejected",
    "rejected (invalid)": "invalid",
    "compensated": "compensated",
    "failed": "failed",
}


def summary(outcomes: Mapping[str, str], asked: set[str]) -> dict[str, int]:
    """The demo's own count (from each execution's last state and what Slack was asked)."""
    counts = Counter(outcomes.values())
    automated = sum(1 for key, outcome in outcomes.items() if outcome == "paid" and key not in asked)
    result = {"invoices": len(outcomes), "automated": automated, "approved": counts["paid"] - automated}
    result["paid"] = counts["paid"]
    result |= {word: counts[outcome] for outcome, word in SUMMARY_WORDS.items()}
    result["other"] = counts["other"]
    return result


def report_disagreements(local: LocalProcess, expected: Mapping[str, int]) -> list[str]:
    """Where ``aios report`` (executions and lineage) says otherwise than the demo's summary."""
    from infrastructure.ops.report import Report, summary_counts  # noqa: PLC0415

    answer = subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "infrastructure.cli", "report", "--json", "--endpoint-url", local.aws],
        check=True,
        capture_output=True,
        text=True,
    )
    counts = summary_counts(Report.model_validate_json(answer.stdout))
    return [
        f"{k}: demo {expected[k]}, aios report {counts.get(k)}"
        for k in expected
        if counts.get(k) != expected[k]
    ]


class Demo:
    def __init__(self, local: LocalProcess, invoices: Sequence[str] = INVOICES) -> None:
        self.local = local
        self.invoices = list(invoices)
        self.answered: set[str] = set()
        #: Invoices whose approval was asked in Slack (read before the message is updated).
        self.asked: set[str] = set()

    def send_invoices(self) -> None:
        secret = self.local.secrets["standard"]
        statuses: Counter[int] = Counter()
        for invoice_id in self.invoices:
            body = invoice_webhook(invoice_id)
            status, _, _ = self.local.request("POST", "/webhooks/standard", body, sign_standard(secret, body))
            statuses[status] += 1
        print(f"sent {len(self.invoices)} signed invoice.received webhooks: HTTP {dict(statuses)}")

    def answer_approvals(self) -> None:
        """Click approve (or reject) on every approval request that has not been answered."""
        secret = self.local.secrets["slack"]
        for message in self.local.slack_messages(channel=CHANNEL):
            approval_id = approval_id_of(message)
            if approval_id is None or approval_id in self.answered or message.get("thread_ts"):
                continue
            invoice_id = _invoice_id(message)
            if invoice_id is None:
                continue
            self.asked.add(f"erp:{invoice_id}")
            if invoice_id == UNANSWERED:
                continue
            action: Literal["approve", "reject"] = "reject" if invoice_id == REJECTED else "approve"
            body = slack_action_body(approval_id, action, APPROVER, CHANNEL, message["ts"])
            status, _, reply = self.local.request("POST", "/approvals/slack", body, sign_slack(secret, body))
            print(f"  {APPROVER} clicks {action:<7} on {invoice_id}: HTTP {status} {reply.decode()}")
            self.answered.add(approval_id)

    def executions(self) -> list[dict[str, Any]]:
        return self.local.executions(WORKFLOW)

    def final_state(self, execution_arn: str) -> str:
        entered = [e for e in self.local.history(execution_arn) if e["type"].endswith("StateEntered")]
        return str(entered[-1]["stateEnteredEventDetails"]["name"]) if entered else "?"

    def wait(self) -> list[dict[str, Any]]:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline:
            self.answer_approvals()
            executions = self.executions()
            if len(executions) >= len(self.invoices) and all(e["status"] != "RUNNING" for e in executions):
                return executions
            time.sleep(0.5)
        raise TimeoutError("the workflows did not finish in time")


def _invoice_id(message: dict[str, Any]) -> str | None:
    text = json.dumps(message.get("blocks") or message.get("text"))
    return next((invoice_id for invoice_id in INVOICES if invoice_id in text), None)


def _print_lineage(local: LocalProcess, business_key: str) -> None:
    rows = local.lineage(business_key)
    print(f"\nlineage of {business_key} ({len(rows)} steps, one query on index by-business-key):")
    for values in rows:
        facts = [
            f"{name}={values[name]}"
            for name in (
                "connector",
                "connector_version",
                "model_version",
                "model_variant",
                "approver",
                "decision",
                "outcome",
            )
            if name in values
        ]
        when, workflow, state = values["recorded_at"][:23], values["workflow"], values["state"]
        print(f"  {when}  {workflow:<16} {state:<32} {' '.join(facts)}")
        print(f"  {'':23}  in {values['input_digest'][:23]}…  out {values.get('output_digest', '-')[:23]}…")


def main() -> int:
    print("starting the local mode (moto on 127.0.0.1, each function in its own worker processes) ...")
    local = LocalProcess.start(
        platform="infrastructure.demo:DEMO_PLATFORM", env={"AIOS_LOCAL_TIME_SCALE": "0.05"}
    )
    try:
        print(f"ready: api={local.api} aws={local.aws} iam={local.iam}\n")
        local.refuse_payment(REFUSED_PAYMENT)
        print(f"the payment processor will decline {REFUSED_PAYMENT}")
        demo = Demo(local)
        demo.send_invoices()
        print("answering approval requests in Slack as they arrive:")
        executions = demo.wait()

        keys = {e["executionArn"]: local.business_key_of(e["executionArn"]) for e in executions}
        outcomes = {keys[arn]: OUTCOMES.get(demo.final_state(arn), "other") for arn in keys}
        asked = demo.asked
        counts = Counter(outcomes.values())
        automated = sum(1 for key, outcome in outcomes.items() if outcome == "paid" and key not in asked)
        print(
            f"\nsummary of {len(outcomes)} invoices: automated {automated}, "
            f"approved {counts['paid'] - automated}, rejected {counts['rejected']}, "
            f"auto-rejected {counts['rejected (no answer)']}, paid {counts['paid']}, "
            f"compensated {counts['compensated']}, failed {counts['failed']}"
        )
        disagreements = report_disagreements(local, summary(outcomes, asked))
        print("aios report: " + ("; ".join(disagreements) if disagreements else "agrees with this summary"))
        approved = sorted(key for key in asked if outcomes.get(key) == "paid")
        if approved:
            example = approved[0]
            arn = next(arn for arn, key in keys.items() if key == example)
            print(f"\nexecution of {example} (escalated to a human, approved in Slack):")
            subprocess.run(  # noqa: S603 - our own CLI
                [
                    sys.executable,
                    "-m",
                    "infrastructure.cli",
                    "executions",
                    "show",
                    arn,
                    "--endpoint-url",
                    local.aws,
                ],
                check=True,
            )
            _print_lineage(local, example)
        return 0 if counts["failed"] == 0 and len(outcomes) == len(INVOICES) and not disagreements else 1
    finally:
        print(f"\nlocal mode stopped (exit {local.stop()})")


if __name__ == "__main__":
    sys.exit(main())
