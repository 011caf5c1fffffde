"""Cost per 1,000 invoices, all-in at list price, for each candidate endpoint instance type.

    .venv/bin/python bench/cost.py [--markdown]

For 1k, 10k and 1M invoices a day: Step Functions (Standard transitions, Express requests and
duration), Lambda (requests, GB-seconds from each function's memory in the platform
description), DynamoDB on-demand requests, EventBridge events, API Gateway HTTP API requests,
CloudWatch Logs ingestion, CloudTrail data events, S3 requests of data capture, and the
endpoint's instance hours (24 h a day: a real-time endpoint bills while it exists). The
default instance of each stage (``INVOICE_ANOMALY.stages``, ``infrastructure/platform/models.py``) is
the cheapest candidate whose capacity covers the stage's peak at every volume; a test checks
that the code's choice is the one this table makes.

Prices: us-east-1, on-demand list prices, USD, from the AWS pricing pages named beside each,
as the author last knew them (2024-2025 list prices; ``PRICES_AS_OF``). This machine has no
network access, so they were not re-fetched: check them before a budget depends on them.
Usage per invoice is a model of the happy path (``PER_INVOICE``), stated field by field.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from infrastructure.platform import PLATFORM  # noqa: E402

PRICES_AS_OF: Final[str] = (
    "us-east-1 on-demand list prices as last published to the author (2024-2025); not re-fetched"
)
VOLUMES: Final[tuple[int, ...]] = (1_000, 10_000, 1_000_000)
HOURS_PER_DAY: Final[int] = 24
#: Peak rate over the day's average (business hours, month-end runs).
PEAK_FACTOR: Final[float] = 10.0


@dataclass(frozen=True)
class Prices:
    """USD, us-east-1, on-demand."""

    # https://aws.amazon.com/step-functions/pricing/
    sfn_standard_per_transition: float = 0.025 / 1_000
    sfn_express_per_request: float = 1.00 / 1_000_000
    sfn_express_per_gb_second: float = 0.00001667
    # https://aws.amazon.com/lambda/pricing/ (Arm)
    lambda_per_request: float = 0.20 / 1_000_000
    lambda_per_gb_second: float = 0.0000133334
    # https://aws.amazon.com/dynamodb/pricing/on-demand/ (after the November 2024 reduction)
    dynamodb_per_write_unit: float = 0.625 / 1_000_000
    dynamodb_per_read_unit: float = 0.125 / 1_000_000
    # https://aws.amazon.com/eventbridge/pricing/ (custom events)
    eventbridge_per_event: float = 1.00 / 1_000_000
    # https://aws.amazon.com/api-gateway/pricing/ (HTTP APIs, first 300M)
    http_api_per_request: float = 1.00 / 1_000_000
    # https://aws.amazon.com/cloudwatch/pricing/ (Logs, standard ingestion)
    logs_per_gb: float = 0.50
    # https://aws.amazon.com/cloudtrail/pricing/ (data events)
    cloudtrail_per_data_event: float = 0.10 / 100_000
    # https://aws.amazon.com/s3/pricing/ (PUT requests, S3 Standard)
    s3_per_put: float = 0.005 / 1_000


@dataclass(frozen=True)
class Instance:
    """A candidate endpoint instance: list price an hour and what it serves.

    Prices: https://aws.amazon.com/sagemaker/ai/pricing/ (real-time inference, on-demand).
    ``rows_per_s``: one-row requests a second one instance sustains through Triton. The CPU
    figure is scaled from ``bench/serving.py`` (about 2,000 one-row requests a second through a
    real Triton on 2 shared vCPUs, client-bound); the GPU figures are not measured here (no
    GPU machine) and are set to the same per-request bound, since a one-row request is
    HTTP- and launch-bound, not compute-bound.
    """

    name: str
    usd_per_hour: float
    vcpus: int
    gpus: int

    @property
    def rows_per_s(self) -> float:
        return 1_000.0 * self.vcpus


CANDIDATES: Final[tuple[Instance, ...]] = (
    Instance("ml.c6i.large", 0.119, 2, 0),
    Instance("ml.m5.large", 0.134, 2, 0),
    Instance("ml.c6i.xlarge", 0.238, 4, 0),
    Instance("ml.g4dn.xlarge", 0.736, 4, 1),
    Instance("ml.g5.xlarge", 1.408, 4, 1),
    Instance("ml.g5.12xlarge", 7.09, 48, 4),
)


@dataclass(frozen=True)
class PerInvoice:
    """What one invoice costs in requests on the happy path (assumptions, not measurements)."""

    http_requests: float = 1  # POST /webhooks/{source}
    lambda_invocations: dict[str, float] | None = None  # function -> invocations per invoice
    lambda_seconds: float = 0.25  # average billed duration of one invocation
    express_requests: float = 1  # intake
    express_seconds: float = 0.5
    express_memory_gb: float = 0.064  # Express bills duration in 64 MB units
    standard_transitions: float = 30  # accounts-payable, incl. expanded lineage blocks
    dynamodb_writes: float = 14  # idempotency, claim, ~10 lineage rows, breaker
    dynamodb_reads: float = 6
    events: float = 4  # verified webhook, Invoice Received, Approved, Paid
    log_bytes: float = 12_000  # structured logs of every function and both workflows
    cloudtrail_data_events: float = 8  # Lambda invokes and S3 object events
    capture_puts: float = 0.01  # data capture batches many invocations per object

    def invocations(self) -> dict[str, float]:
        return self.lambda_invocations or {
            "webhook-ingest": 1,
            "erp-connector": 2,  # fetch, post
            "payments-connector": 1,
            "model-invoke": 1,
            "invoice-policy": 1,
            "approval-request": 0.05,  # the share sent to a human
            "slack-interactions": 0.05,
        }


PER_INVOICE: Final[PerInvoice] = PerInvoice()


def breakdown(prices: Prices = Prices(), usage: PerInvoice = PER_INVOICE) -> dict[str, float]:
    """USD per invoice of each service but the endpoint."""
    memory_gb = {spec.name: spec.memory_mb / 1024 for spec in PLATFORM.functions}
    invocations = usage.invocations()
    gb_seconds = sum(count * memory_gb[name] * usage.lambda_seconds for name, count in invocations.items())
    express_gb_s = usage.express_requests * usage.express_seconds * usage.express_memory_gb
    return {
        "API Gateway HTTP API": usage.http_requests * prices.http_api_per_request,
        "Lambda requests": sum(invocations.values()) * prices.lambda_per_request,
        "Lambda GB-seconds": gb_seconds * prices.lambda_per_gb_second,
        "Step Functions Express": usage.express_requests * prices.sfn_express_per_request
        + express_gb_s * prices.sfn_express_per_gb_second,
        "Step Functions Standard transitions": usage.standard_transitions
        * prices.sfn_standard_per_transition,
        "DynamoDB requests": usage.dynamodb_writes * prices.dynamodb_per_write_unit
        + usage.dynamodb_reads * prices.dynamodb_per_read_unit,
        "EventBridge events": usage.events * prices.eventbridge_per_event,
        "CloudWatch Logs ingestion": usage.log_bytes / 1e9 * prices.logs_per_gb,
        "CloudTrail data events": usage.cloudtrail_data_events * prices.cloudtrail_per_data_event,
        "S3 data capture PUTs": usage.capture_puts * prices.s3_per_put,
    }


def serverless_cost_per_invoice(prices: Prices = Prices(), usage: PerInvoice = PER_INVOICE) -> float:
    """Everything but the endpoint, for one invoice."""
    return sum(breakdown(prices, usage).values())


def endpoint_cost_per_day(instance: Instance, count: int) -> float:
    return instance.usd_per_hour * HOURS_PER_DAY * count


def covers(instance: Instance, count: int, invoices_per_day: int) -> bool:
    """Enough capacity at the peak, with one instance out (a rollout or a failed AZ) when
    there are two or more."""
    serving = count - 1 if count >= 2 else count
    return serving * instance.rows_per_s >= invoices_per_day / 86_400 * PEAK_FACTOR


@dataclass(frozen=True)
class Row:
    instance: Instance
    count: int
    invoices_per_day: int
    per_1000: float
    per_day: float
    endpoint_share: float
    covers: bool


def table(count: int, prices: Prices = Prices()) -> list[Row]:
    per_invoice = serverless_cost_per_invoice(prices)
    rows = []
    for instance in CANDIDATES:
        for volume in VOLUMES:
            endpoint = endpoint_cost_per_day(instance, count)
            day = endpoint + per_invoice * volume
            rows.append(
                Row(
                    instance,
                    count,
                    volume,
                    day / volume * 1000,
                    day,
                    endpoint / day,
                    covers(instance, count, volume),
                )
            )
    return rows


def cheapest(count: int) -> Instance:
    """The stage default: the cheapest candidate that covers the peak at every volume."""
    eligible = [
        instance for instance in CANDIDATES if all(covers(instance, count, volume) for volume in VOLUMES)
    ]
    return min(eligible, key=lambda instance: endpoint_cost_per_day(instance, count))


def render(markdown: bool) -> str:
    lines: list[str] = []
    per_invoice = serverless_cost_per_invoice()
    lines.append(f"prices: {PRICES_AS_OF}; serverless part per 1,000 invoices: USD {per_invoice * 1000:.4f}")
    lines += [f"  {name}: USD {value * 1000:.4f}" for name, value in breakdown().items()]
    for stage, count in (("dev", 1), ("prod", 2)):
        rows = table(count)
        lines.append("")
        lines.append(f"{stage}: {count} instance(s); USD per 1,000 invoices (per day)")
        header = ["instance", *[f"{v:,}/day" for v in VOLUMES], "endpoint share at 1M"]
        if markdown:
            lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        else:
            lines.append(f"{header[0]:<16}" + "".join(f"{h:>24}" for h in header[1:]))
        for instance in CANDIDATES:
            cells = [r for r in rows if r.instance == instance]
            values = [f"{r.per_1000:,.2f} ({r.per_day:,.2f}){'' if r.covers else ' *'}" for r in cells] + [
                f"{cells[-1].endpoint_share:.0%}"
            ]
            if markdown:
                lines.append(f"| `{instance.name}` | " + " | ".join(values) + " |")
            else:
                lines.append(f"{instance.name:<16}" + "".join(f"{v:>24}" for v in values))
        choice = cheapest(count)
        lines.append(
            f"{stage} default: {count} x {choice.name} (USD {endpoint_cost_per_day(choice, count):.2f} a day "
            f"for the endpoint; * = below the peak capacity at that volume)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Cost per 1,000 invoices by endpoint instance type.")
    parser.add_argument("--markdown", action="store_true", help="print the README tables")
    args = parser.parse_args(argv)
    print(render(args.markdown))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
