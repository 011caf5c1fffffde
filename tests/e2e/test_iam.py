"""IAM enforced in the local mode: one grant removed, and the flow fails with AccessDenied.

``NARROWED`` is the default platform with webhook-ingest's idempotency table declared
read-only: CDK then grants it no ``dynamodb:PutItem`` there, so the first step of every
delivery (claiming it in the idempotency table) is denied, the ingest answers 503 and
nothing reaches the bus. The same platform with ``AIOS_LOCAL_IAM=off`` accepts the same
delivery: the failure is the enforcement of the synthesized policy, nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infrastructure.local.harness import LocalProcess, invoice_webhook, sign_standard
from infrastructure.platform import PLATFORM
from infrastructure.platform.spec import Access

NARROWED = PLATFORM.model_copy(
    update={
        "functions": tuple(
            spec.model_copy(update={"tables": {**spec.tables, "idempotency": Access.READ}})
            if spec.name == "webhook-ingest"
            else spec
            for spec in PLATFORM.functions
        )
    }
)
# `aios local up --platform` loads this file: it imports only what a platform module may (the
# test helpers come from tests.e2e.conftest inside the tests, where pytest makes them importable).
NARROWED_REF = "tests/e2e/test_iam.py:NARROWED"
IDEMPOTENCY_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/aios-local-idempotency"


def start(iam: str) -> LocalProcess:
    from tests.e2e.conftest import ENV  # noqa: PLC0415 - see NARROWED_REF

    return LocalProcess.start(env={**ENV, "AIOS_LOCAL_IAM": iam}, platform=NARROWED_REF, timeout=240)


def stop(local: LocalProcess) -> None:
    assert local.stop(timeout=10) == 0, "".join(local.output[-40:])


@pytest.fixture(scope="module")
def enforced() -> Iterator[LocalProcess]:
    local = start("enforce")
    try:
        yield local
    finally:
        stop(local)


def ready_line(local: LocalProcess) -> str:
    return next(line for line in local.output if line.startswith("aios local ready "))


def test_the_ready_line_says_iam_is_enforced(enforced: LocalProcess) -> None:
    assert ready_line(enforced).split()[-1] == "iam=enforce"


def test_a_removed_grant_fails_the_flow_with_access_denied(enforced: LocalProcess) -> None:
    from tests.e2e.conftest import STANDARD_SECRET, eventually  # noqa: PLC0415 - see NARROWED_REF

    # Given a signed invoice delivery
    body = invoice_webhook("INV-IAM-1")
    headers = sign_standard(STANDARD_SECRET, body)

    # When it is posted to a platform whose ingest may not write its idempotency table
    status, _, reply = enforced.request("POST", "/webhooks/standard", body, headers)

    # Then the ingest cannot claim the delivery: 503, nothing on the bus, nothing in lineage
    assert status == 503, reply
    denial = eventually(
        lambda: next((line for line in enforced.output if "aios iam: AccessDenied" in line), None), timeout=5
    )
    assert "is not authorized to perform: dynamodb:PutItem" in denial
    assert f"on resource: {IDEMPOTENCY_ARN}" in denial
    assert "assumed-role/aios-local-webhook-ingest/aios-local-webhook-ingest" in denial
    assert enforced.lineage("erp:INV-IAM-1") == []
    assert enforced.executions("intake") == []


def test_the_same_platform_without_enforcement_accepts_it() -> None:
    from tests.e2e.conftest import STANDARD_SECRET, eventually  # noqa: PLC0415 - see NARROWED_REF

    local = start("off")
    try:
        assert ready_line(local).split()[-1] == "iam=off"
        body = invoice_webhook("INV-IAM-2")
        status, _, reply = local.request(
            "POST", "/webhooks/standard", body, sign_standard(STANDARD_SECRET, body)
        )
        assert status == 202, reply
        assert eventually(lambda: local.lineage("erp:INV-IAM-2"))
        assert not any("aios iam: AccessDenied" in line for line in local.output)
    finally:
        stop(local)
