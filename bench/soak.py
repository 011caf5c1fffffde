"""Soak: many invoices at once through the local mode, with faults, and an account of each one.

Starts ``aios local up`` on the default platform with a short approval ladder
(``bench/soak_platform.py``: ``AIOS_SOAK_LADDER_SECONDS`` per stage, default 5) and, from
``--concurrency`` sender threads, sends ``--count`` invoices (clean, amount outliers, above
the auto-approval limit) as signed webhooks, with:

- redeliveries of the same delivery (answered as duplicates) and re-announcements (a new
  delivery of the same invoice: a second execution that finds the invoice claimed);
- forged webhooks and forged Slack clicks (answered 401, changing nothing);
- random transient faults: the sandbox ERP, payment processor and Slack answer 503 now and
  then, and the local Lambda runtime fails connector, policy, approval and model invocations
  with their retryable errors;
- approvals answered at random moments, many of them right at a ladder stage's timeout,
  approve or reject, some never.

At the end it accounts for every accepted delivery: each invoice has exactly one execution
that did the work (any other found it claimed) and it ended in the state its click's answer
says (approved: paid; rejected: rejected by the approver; expired or no answer: rejected,
nobody answered); a paid invoice has exactly one live payment and every other invoice none;
nothing is still running; every accepted delivery has its intake lineage row or a dead
letter; every closing lineage row has an outcome (and an error when it failed). It prints
the violations (exit 1 if any), the webhook acknowledgement latency p50/p95/p99 against a
floor measured in the same run (a bare HTTP server verifying the same signature), and
completed flows per second against pass-only executions on the same embedded AWS.

    .venv/bin/python bench/soak.py --count 40 --concurrency 8 --seed 1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aios.lineage import failure
from bench.local_e2e import ack_floor, floor, percentile
from infrastructure.local.harness import (
    LocalProcess,
    approval_id_of,
    invoice_webhook,
    sign_slack,
    sign_standard,
    slack_action_body,
)
from infrastructure.ops.report import CLOSING_STATES
from infrastructure.platform.payables import APPROVERS_ENVIRONMENT

LADDER_SECONDS = int(os.environ.get("AIOS_SOAK_LADDER_SECONDS", "5"))
STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 - local test secrets
SLACK_SECRET = "soak-slack-signing-secret-5e1d"  # noqa: S105
WORKFLOW = "accounts-payable"
CHANNEL = APPROVERS_ENVIRONMENT["AIOS_APPROVAL_CHANNEL"]
APPROVER = APPROVERS_ENVIRONMENT["AIOS_APPROVERS"].split(",")[0]
TEMPLATES = {"clean": "INV-2001", "outlier": "INV-2002", "large": "INV-2003"}
#: What the approver was told -> the state the execution must end in.
EXPECTED_END = {
    "approved": "Invoice paid",
    "rejected": "Invoice rejected by the approver",
    "expired": "Invoice rejected: nobody answered",
}
ALREADY_HANDLED = "Already handled by another execution"
#: States whose answers a violation shows (what the approval stages found).
APPROVAL_STEPS = {
    "Ask an approver in Slack",
    "Remind the approver",
    "Escalate to the second approver",
    "Expire the approval request",
    "Follow the recorded outcome",
}
FUNCTION_FAULTS = {
    "erp-connector": {"error": "Connector.Unavailable", "probability": 0.1},
    "payments-connector": {"error": "Connector.Unavailable", "probability": 0.1},
    "invoice-policy": {"error": "Connector.Throttled", "probability": 0.05},
    "approval-request": {"error": "Connector.Unavailable", "probability": 0.1},
    "model-invoke": {"error": "Model.Unavailable", "probability": 0.15},
}


@dataclass
class Invoice:
    invoice_id: str
    kind: str
    deliveries: list[str] = field(default_factory=list)  # accepted event ids
    acks: list[float] = field(default_factory=list)
    click: str | None = None  # the answer the approver got: approved / rejected / expired / None
    click_at: str = ""
    #: A click that got no answer: its decision, which may or may not have been recorded.
    unknown: str | None = None

    @property
    def business_key(self) -> str:
        return f"erp:{self.invoice_id}"


@dataclass
class Report:
    invoices: list[Invoice]
    violations: list[str]
    ends: dict[str, int]
    elapsed: float
    forged: int
    unanswered: int
    dead_letters: int

    def completed(self) -> int:
        return sum(self.ends.values())


class Soak:
    def __init__(
        self,
        local: LocalProcess,
        *,
        count: int,
        concurrency: int,
        seed: int,
        ladder_seconds: int = LADDER_SECONDS,
    ) -> None:
        self.local = local
        self.ladder = ladder_seconds
        self.count = count
        self.concurrency = concurrency
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.violations: list[str] = []
        self.forged = 0
        self.stop = threading.Event()
        self.final_states: dict[str, str] = {}
        #: Requests that got a 5xx or no answer (retried by the sender).
        self.unanswered = 0
        self.seeded = local.seeded_invoices()
        base = 90000 + seed * 100 % 9000
        kinds = self.random.choices(["clean", "outlier", "large"], weights=[4, 3, 3], k=count)
        self.invoices = [Invoice(f"INV-{base + i}", kind) for i, kind in enumerate(kinds)]

    def violation(self, text: str) -> None:
        with self.lock:
            self.violations.append(text)

    # -- sending ---------------------------------------------------------------------------------

    def add(self, invoice: Invoice, index: int) -> None:
        template = self.seeded[TEMPLATES[invoice.kind]]
        gross = Decimal(str(template["amount"])) + Decimal(index) / 100 + Decimal("0.07")
        rate = Decimal(str(template["vendor_tax_rate"]))
        copy = {
            **template,
            "invoice_id": invoice.invoice_id,
            "business_key": invoice.business_key,
            "amount": float(gross),
            "tax_amount": float((gross * rate / (1 + rate)).quantize(Decimal("0.01"))),
        }
        status, answer = self.local.sandbox("POST", "erp/invoices", copy)
        assert status == 200, answer

    def deliver(self, invoice: Invoice, body: bytes, headers: dict[str, str]) -> int:
        status, seconds, reply = self._post("/webhooks/standard", body, headers)
        # 200 duplicate: an earlier attempt that got no answer was accepted after all.
        if status == 202 or (status == 200 and reply.get("duplicate")):
            with self.lock:
                if str(reply["event_id"]) not in invoice.deliveries:
                    invoice.deliveries.append(str(reply["event_id"]))
                invoice.acks.append(seconds)
        return status

    def _post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, float, dict[str, Any]]:
        """(status, seconds, JSON reply); status 0 when no answer came (timeout, reset)."""
        started = time.perf_counter()
        try:
            status, _, raw = self.local.request("POST", path, body, headers)
        except OSError:  # urllib's URLError and socket timeouts
            return 0, time.perf_counter() - started, {}
        seconds = time.perf_counter() - started
        try:
            reply = json.loads(raw) if raw else {}
        except ValueError:
            reply = {}
        return status, seconds, reply

    def send(self, index: int) -> None:
        invoice = self.invoices[index]
        self.add(invoice, index)
        body = invoice_webhook(invoice.invoice_id)
        headers = sign_standard(STANDARD_SECRET, body)
        # A producer retries a delivery that got no 2xx (same delivery id, as Standard Webhooks
        # senders do); only a delivery accepted (202) must be accounted for.
        for _ in range(4):
            status = self.deliver(invoice, body, headers)
            if status in (200, 202):
                break
            with self.lock:
                self.unanswered += 1
        else:
            self.violation(f"{invoice.invoice_id}: never accepted (last answer {status})")
        if self.random.random() < 0.25:  # the producer retries the same delivery
            status, _, reply = self._post("/webhooks/standard", body, headers)
            if status == 202 or (status == 200 and not reply.get("duplicate")):
                self.violation(f"{invoice.invoice_id}: redelivery answered {status} {reply}")
        if self.random.random() < 0.15:  # re-announced as another delivery
            again = invoice_webhook(invoice.invoice_id)
            self.deliver(invoice, again, sign_standard(STANDARD_SECRET, again))
        if self.random.random() < 0.2:  # forged: signed with another secret
            forged = invoice_webhook(invoice.invoice_id)
            headers = sign_standard("whsec_" + "Zm9yZ2VkLXNlY3JldC1mb3Itc29haw==", forged)
            status, _, _ = self._post("/webhooks/standard", forged, headers)
            with self.lock:
                self.forged += 1
            if 200 <= status < 300:
                self.violation(f"{invoice.invoice_id}: forged webhook answered {status}")

    # -- background: faults and approvals --------------------------------------------------------

    def faults(self) -> None:
        providers = ["erp", "payments", "slack", None]
        while not self.stop.wait(1.5):
            provider = self.random.choice(providers)
            fault = {provider: {"status": 503, "times": 1, "retry_after": 0.1}} if provider else None
            with contextlib.suppress(AssertionError):  # a refused setting is just no fault
                self.local.sandbox_faults(fault)
        self.local.sandbox_faults(None)

    def approvals(self) -> None:
        seen: set[str] = set()
        timers: list[threading.Timer] = []
        by_id = {invoice.invoice_id: invoice for invoice in self.invoices}
        while not self.stop.wait(0.2):
            for message in self.local.slack_messages(CHANNEL):
                approval_id = approval_id_of(message)
                text = str(message.get("text", ""))
                invoice = by_id.get(text.rsplit(" ", 1)[-1])
                if approval_id is None or invoice is None or approval_id in seen:
                    continue
                seen.add(approval_id)
                delay, when = self.moment()
                if when == "never":
                    continue
                timer = threading.Timer(delay, self.answer, (invoice, approval_id, message, when))
                timer.daemon = True
                timer.start()
                timers.append(timer)
        for timer in timers:
            timer.join(timeout=self.ladder * 4)

    def moment(self) -> tuple[float, str]:
        """When to click after the request appeared: soon, around a stage's timeout, or never."""
        choice = self.random.random()
        if choice < 0.3:
            return self.random.uniform(0.2, 1.0), "soon"
        if choice < 0.85:
            stage = self.random.choice([1, 2, 3])
            return max(0.0, stage * self.ladder + self.random.uniform(-0.4, 0.4)), f"~stage {stage} timeout"
        return float("inf"), "never"

    def answer(self, invoice: Invoice, approval_id: str, message: dict[str, Any], when: str) -> None:
        if when == "never":
            return
        action: Literal["approve", "reject"] = "approve" if self.random.random() < 0.7 else "reject"
        if self.random.random() < 0.2:  # a forged click first: must change nothing
            forged = slack_action_body(approval_id, action, APPROVER, CHANNEL, str(message["ts"]))
            status, _, _ = self._post("/approvals/slack", forged, sign_slack("not-the-secret", forged))
            with self.lock:
                self.forged += 1
            if 200 <= status < 300:
                self.violation(f"{invoice.invoice_id}: forged click answered {status}")
        body = slack_action_body(approval_id, action, APPROVER, CHANNEL, str(message["ts"]))
        status, _, reply = self._post("/approvals/slack", body, sign_slack(SLACK_SECRET, body))
        with self.lock:
            invoice.click_at = when
            if status == 200 and reply.get("status") in EXPECTED_END:
                invoice.click = str(reply["status"])
            elif status == 0 or status >= 500:
                # No answer: the decision may or may not have been recorded.
                invoice.unknown = "approved" if action == "approve" else "rejected"
                self.unanswered += 1

    # -- the account -----------------------------------------------------------------------------

    def run(self) -> Report:
        self.local.set_faults(FUNCTION_FAULTS)
        background = [threading.Thread(target=self.faults), threading.Thread(target=self.approvals)]
        for thread in background:
            thread.start()
        started = time.perf_counter()
        try:
            with ThreadPoolExecutor(self.concurrency) as pool:
                list(pool.map(self.send, range(self.count)))
            ends = self.wait_for_the_end(deadline=started + 120 + 6 * self.ladder * self.count / 4)
        finally:
            self.stop.set()
            for thread in background:
                thread.join()
            self.local.set_faults({})
        elapsed = time.perf_counter() - started
        letters = self.account(ends)
        return Report(
            invoices=self.invoices,
            violations=self.violations,
            ends=_tally(ends),
            elapsed=elapsed,
            forged=self.forged,
            unanswered=self.unanswered,
            dead_letters=letters,
        )

    def wait_for_the_end(self, deadline: float) -> dict[str, dict[str, str]]:
        """Business key -> {execution ARN: final state} once nothing runs (or the deadline)."""
        while True:
            ends: dict[str, dict[str, str]] = {}
            running = 0
            for execution in self.local.executions(WORKFLOW):
                arn = execution["executionArn"]
                key = self.local.business_key_of(arn)
                if execution["status"] == "RUNNING":
                    running += 1
                    continue
                if arn not in self.final_states:
                    names = [
                        e["stateEnteredEventDetails"]["name"]
                        for e in self.local.history(arn)
                        if "stateEnteredEventDetails" in e
                    ]
                    self.final_states[arn] = names[-1] if names else str(execution["status"])
                ends.setdefault(key, {})[arn] = self.final_states[arn]
            expected = sum(len(invoice.deliveries) for invoice in self.invoices)
            finished = sum(len(found) for found in ends.values())
            if (running == 0 and finished >= expected) or time.monotonic() > deadline:
                if running:
                    self.violation(f"{running} executions still RUNNING at the deadline")
                return ends
            time.sleep(1.0)

    def account(self, ends: dict[str, dict[str, str]]) -> int:
        intents = self.local.payment_intents()
        letters = self.dead_letter_events()
        for invoice in self.invoices:
            key = invoice.business_key
            found = ends.get(key, {})
            workers = [state for state in found.values() if state != ALREADY_HANDLED]
            worker = next((arn for arn, state in found.items() if state != ALREADY_HANDLED), "")
            if len(found) + sum(1 for event in invoice.deliveries if event in letters) < len(
                invoice.deliveries
            ):
                self.violation(f"{key}: {len(invoice.deliveries)} deliveries, {len(found)} executions")
            if len(workers) != 1:
                self.violation(f"{key}: {len(workers)} executions did the work: {sorted(found.values())}")
                continue
            [end] = workers
            expected = EXPECTED_END.get(invoice.click or "")
            if invoice.click is None:
                # Nobody was told a decision: automatic approval (paid), the ladder expired, or
                # an unanswered click's decision was recorded after all.
                allowed = {"Invoice paid", EXPECTED_END["expired"]}
                if invoice.unknown:
                    allowed.add(EXPECTED_END[invoice.unknown])
                if end not in allowed:
                    self.violation(f"{key}: no decision, ended {end!r} {self.failures(worker)}")
            elif end != expected:
                self.violation(
                    f"{key}: approver told {invoice.click!r} ({invoice.click_at}), ended {end!r} "
                    f"{self.failures(worker)}"
                )
            live = [
                i for i in intents if i["metadata"].get("business_key") == key and i["status"] != "canceled"
            ]
            if len(live) != (1 if end == "Invoice paid" else 0):
                self.violation(f"{key}: ended {end!r} with {len(live)} live payments")
            self.check_lineage(invoice, end)
        return len(letters)

    def failures(self, execution_arn: str) -> list[str]:
        """``state: error`` of each failed or timed-out task of an execution, and what the
        approval steps answered, to say why it ended so."""
        found, state = [], ""
        for event in self.local.history(execution_arn):
            if "stateEnteredEventDetails" in event:
                state = event["stateEnteredEventDetails"]["name"]
            if event["type"] == "TaskFailed":
                details = event["taskFailedEventDetails"]
                _, cause = failure(details.get("error"), details.get("cause"))
                found.append(f"{state}: {details.get('error')} ({cause or ''})")
            elif event["type"] == "TaskTimedOut":
                found.append(f"{state}: timed out")
            elif event["type"] == "TaskSucceeded" and state in APPROVAL_STEPS:
                output = str(event["taskSucceededEventDetails"].get("output", ""))
                found.append(f"{state}: {output[:160]}")
        return found

    def check_lineage(self, invoice: Invoice, end: str) -> None:
        rows = self.local.lineage(invoice.business_key)
        intake = {row.get("event_id") for row in rows if row.get("workflow") == "intake"}
        for event in invoice.deliveries:
            if event not in intake:
                self.violation(f"{invoice.business_key}: delivery {event} has no intake lineage row")
        # "Close the books", or "Execution failed" for one that failed at a step (no redrive here)
        closing = [row for row in rows if row.get("state") in CLOSING_STATES]
        if end != ALREADY_HANDLED and len(closing) != 1:
            self.violation(f"{invoice.business_key}: {len(closing)} closing lineage rows")
        for row in closing:
            if row.get("outcome") == "failed" and not row.get("error"):
                self.violation(f"{invoice.business_key}: failed without an error in lineage")
        steps = [row for row in rows if row.get("connector")]
        if any(not row.get("connector_version") for row in steps):
            self.violation(f"{invoice.business_key}: a connector step without its version")

    def dead_letter_events(self) -> set[str]:
        sqs = self.local.client("sqs")
        url = sqs.get_queue_url(QueueName="aios-local-dead-letters")["QueueUrl"]
        events: set[str] = set()
        for _ in range(10):
            batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)
            messages = batch.get("Messages", [])
            if not messages:
                break
            for message in messages:
                try:
                    events.add(str(json.loads(message["Body"]).get("id")))
                except ValueError:
                    self.violation("a dead letter that is not an event")
        return events


def _tally(ends: dict[str, dict[str, str]]) -> dict[str, int]:
    tally: dict[str, int] = {}
    for found in ends.values():
        for state in found.values():
            tally[state] = tally.get(state, 0) + 1
    return tally


def start(*, ladder_seconds: int = LADDER_SECONDS) -> LocalProcess:
    """``aios local up`` for the soak, ``ladder_seconds`` per approval stage (give the
    ``Soak`` the same, so that its clicks land around the stage timeouts)."""
    return LocalProcess.start(
        env={
            "AIOS_LOCAL_SECRET_STANDARD": STANDARD_SECRET,
            "AIOS_LOCAL_SECRET_SLACK": SLACK_SECRET,
            "AIOS_LOCAL_TIME_SCALE": "0.01",
            # One warm worker per function, as the e2e tier starts: stages of a few seconds
            # should not all wait behind first cold starts.
            "AIOS_LOCAL_LAMBDA_PREWARM": "1",
            "AIOS_SOAK_LADDER_SECONDS": str(ladder_seconds),
        },
        platform="bench/soak_platform.py:PLATFORM",
        timeout=300,
    )


def running_local() -> Iterator[LocalProcess]:
    local = start()
    try:
        yield local
    finally:
        local.stop(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    for local in running_local():
        report = Soak(local, count=args.count, concurrency=args.concurrency, seed=args.seed).run()
        flow_floor = floor(local, args.count, args.concurrency)
    bare = ack_floor(args.count, args.concurrency)
    acks = [seconds for invoice in report.invoices for seconds in invoice.acks]
    rate = report.completed() / report.elapsed
    accepted = sum(len(invoice.deliveries) for invoice in report.invoices)
    print(
        f"seed {args.seed}: {args.count} invoices, {accepted} accepted deliveries, "
        f"{report.forged} forged requests refused, {report.dead_letters} dead letters, "
        f"{report.unanswered} requests answered 5xx or not at all (retried)"
    )
    print("final states               : " + ", ".join(f"{k}: {v}" for k, v in sorted(report.ends.items())))
    print(
        "answers                    : "
        + ", ".join(f"{k}: {sum(1 for i in report.invoices if i.click == k)}" for k in EXPECTED_END)
    )
    moments: dict[str, dict[str, int]] = {}
    for invoice in report.invoices:
        if invoice.click_at:
            answers = moments.setdefault(invoice.click_at, {})
            answer = invoice.click or invoice.unknown or "no answer"
            answers[answer] = answers.get(answer, 0) + 1
    print(
        "answers by click moment    : "
        + "; ".join(
            f"{moment}: " + ", ".join(f"{k} {v}" for k, v in sorted(answers.items()))
            for moment, answers in sorted(moments.items())
        )
    )
    for name, values in (("soak ack", acks), ("bare server", bare)):
        p50, p95, p99 = (percentile(values, q) * 1000 for q in (0.5, 0.95, 0.99))
        print(f"{name:<27}: p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  p99 {p99:7.1f} ms")
    print(
        f"ratio ack p95 / floor p95  : {percentile(acks, 0.95) / percentile(bare, 0.95):8.1f}  (target <= 5)"
    )
    print(f"completed flows /s         : {rate:8.2f}  vs pass-only {flow_floor:.1f}/s")
    for violation in report.violations:
        print("VIOLATION", violation)
    print("soak passed" if not report.violations else f"soak FAILED: {len(report.violations)} violations")
    sys.exit(1 if report.violations else 0)


if __name__ == "__main__":
    main()
