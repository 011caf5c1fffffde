"""The closing lineage row of an accounts-payable execution that failed at a step
(``aios.payables.record_failure``), from Step Functions' status change event.

The events below have the shape AWS documents for "Step Functions Execution Status Change":
``detail`` carries what ``DescribeExecution`` answers, ``startDate``/``stopDate`` in epoch
milliseconds, ``input`` as a JSON string, ``error`` and ``cause``
(https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from aios import payables
from aios.lineage import LineageWriter, lineage_time
from aios.payables import CLOSED_ERRORS, FAILED_STATE, REQUEST, RecordFailure, as_request, record_failure
from functions.invoice_policy import handler as invoice_policy
from infrastructure.ops.report import ExecutionFacts, compute
from infrastructure.platform import PLATFORM
from tests.lambda_context import LambdaContext

MACHINE = "arn:aws:states:eu-west-1:123456789012:stateMachine:aios-dev-accounts-payable"
EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:aios-dev-accounts-payable:3f6c"
STOPPED_MS = 1_764_640_000_123  # 2025-12-02T01:46:40.123Z
IBAN = "DE89370400440532013000"
#: What the interpreter writes when a Lambda's error survives the retries: the Lambda's error
#: JSON; its message may quote the payload the connector got back.
CAUSE = json.dumps(
    {
        "errorMessage": 'ERP is down: answered 503 {"vendor": "ACME", "iban": "' + IBAN + '"}',
        "errorType": "Connector.Unavailable",
        "stackTrace": ['  File "/var/task/handler.py", line 12, in handler'],
    }
)


def status_change(
    status: str = "FAILED",
    *,
    error: str | None = "Connector.Unavailable",
    cause: str | None = CAUSE,
    stopped_ms: int = STOPPED_MS,
) -> dict[str, Any]:
    execution_input = {
        "detail-type": "Invoice Received",
        "source": "aios.invoices",
        "detail": {"business_key": "erp:INV-9001", "invoice_id": "INV-9001", "bank_account": IBAN},
    }
    return {
        "version": "0",
        "id": "315c1398-40ff-a850-213b-158f73e60175",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2025-12-02T01:46:40Z",
        "region": "eu-west-1",
        "resources": [EXECUTION],
        "detail": {
            "executionArn": EXECUTION,
            "stateMachineArn": MACHINE,
            "name": "3f6c",
            "status": status,
            "startDate": stopped_ms - 60_000,
            "stopDate": stopped_ms,
            "input": json.dumps(execution_input),
            "inputDetails": {"included": True},
            "output": None,
            "outputDetails": None,
            "error": error,
            "cause": cause,
        },
    }


class FakeDynamoDB:
    """The lineage table's items by key: a put overwrites, as DynamoDB's does."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}

    def put_item(self, *, TableName: str, Item: dict[str, Any]) -> None:
        assert TableName == "aios-test-lineage"
        self.items[Item["pk"]["S"], Item["sk"]["S"]] = Item


def writer() -> tuple[LineageWriter, FakeDynamoDB]:
    table = FakeDynamoDB()
    return LineageWriter("aios-test-lineage", client=table), table  # type: ignore[arg-type]


def request(event: dict[str, Any]) -> RecordFailure:
    parsed = REQUEST.validate_python(as_request(event))
    assert isinstance(parsed, RecordFailure)
    return parsed


def test_a_failed_execution_gets_one_closing_row_with_the_error_and_a_cut_cause() -> None:
    lineage, table = writer()

    result = record_failure(request(status_change()), lineage)

    ((key, item),) = table.items.items()
    row = {name: value["S"] for name, value in item.items()}
    at = lineage_time(datetime.fromtimestamp(STOPPED_MS / 1000, UTC))
    assert at == "2025-12-02T01:46:40.123Z"
    assert key == (EXECUTION, f"{at}#{FAILED_STATE}")
    assert row["business_key"] == "erp:INV-9001"
    assert (row["workflow"], row["state"], row["recorded_at"]) == ("accounts-payable", FAILED_STATE, at)
    assert (row["outcome"], row["error"]) == ("failed", "Connector.Unavailable")
    # The message before the quoted payload, never the stack trace or the payload itself.
    assert row["error_cause"] == "ERP is down: answered 503"
    assert row["input_digest"].startswith("sha256:")
    assert not any(IBAN in value or "ACME" in value or "stackTrace" in value for value in row.values())
    assert result.recorded and (result.outcome, result.error_cause) == ("failed", "ERP is down: answered 503")


def test_a_redelivered_event_writes_the_same_row() -> None:
    lineage, table = writer()
    record_failure(request(status_change()), lineage)
    first = dict(table.items)

    record_failure(request(status_change()), lineage)

    assert table.items == first and len(table.items) == 1


def test_a_later_failure_of_a_redrive_gets_its_own_later_row() -> None:
    lineage, table = writer()
    record_failure(request(status_change()), lineage)
    record_failure(request(status_change(stopped_ms=STOPPED_MS + 90_000)), lineage)

    sort_keys = sorted(sk for _, sk in table.items)
    assert len(sort_keys) == 2 and sort_keys[0] < sort_keys[1]


@pytest.mark.parametrize(("status", "outcome"), [("TIMED_OUT", "timed_out"), ("ABORTED", "aborted")])
def test_timed_out_and_aborted_executions_are_closed_too(status: str, outcome: str) -> None:
    lineage, table = writer()

    record_failure(request(status_change(status, error=None, cause=None)), lineage)

    ((_, item),) = table.items.items()
    assert item["outcome"] == {"S": outcome}
    assert "error" not in item and "error_cause" not in item


@pytest.mark.parametrize("error", sorted(CLOSED_ERRORS))
def test_an_execution_that_closed_its_books_before_its_fail_state_is_not_closed_again(error: str) -> None:
    lineage, table = writer()

    result = record_failure(request(status_change(error=error, cause="see lineage")), lineage)

    assert not result.recorded and table.items == {}


def test_an_event_without_the_input_records_nothing() -> None:
    # AWS leaves ``input`` out when it is too large for the event (inputDetails.included false).
    event = status_change()
    event["detail"] |= {"input": None, "inputDetails": {"included": False}}
    lineage, table = writer()

    assert not record_failure(request(event), lineage).recorded and table.items == {}


def test_the_closed_errors_are_those_of_the_fail_states_after_close_the_books() -> None:
    states = json.loads(PLATFORM.workflow("accounts-payable").read_definition())["States"]
    after_closing = states[states["Close the books"]["Next"]]
    targets = {c["Next"] for c in after_closing["Choices"]} | {after_closing["Default"]}
    assert {states[t]["Error"] for t in targets if states[t]["Type"] == "Fail"} == CLOSED_ERRORS
    # ... and a Fail state reached without closing the books is recorded by the rule.
    others = {s["Error"] for n, s in states.items() if s["Type"] == "Fail" and n not in targets}
    assert others == {"Invoice.CompensationFailed"} and not others & CLOSED_ERRORS


def test_the_function_handles_the_event_as_the_rule_delivers_it(monkeypatch: pytest.MonkeyPatch) -> None:
    lineage, table = writer()
    monkeypatch.setattr(payables, "default_writer", lambda: lineage)

    answer = invoice_policy.handler(status_change(), LambdaContext())  # type: ignore[arg-type]

    assert answer["recorded"] is True and answer["business_key"] == "erp:INV-9001"
    assert len(table.items) == 1


def test_the_report_takes_the_latest_closing_row_of_an_invoice() -> None:
    lineage, table = writer()
    record_failure(request(status_change()), lineage)
    failed_row = {name: value["S"] for name, value in next(iter(table.items.values())).items()}
    started = datetime(2025, 12, 2, 1, 45, tzinfo=UTC)
    running = ExecutionFacts(
        arn=EXECUTION,
        status="RUNNING",
        started=started,
        stopped=None,
        transitions=9,
        lambda_requests=3,
        lambda_gb_seconds=1.0,
        put_events=0,
    )
    failed = running.model_copy(
        update={"status": "FAILED", "stopped": datetime(2025, 12, 2, 1, 46, tzinfo=UTC)}
    )
    paid_row = {
        **failed_row,
        "sk": "2025-12-02T01:50:00.000Z#Close the books",
        "recorded_at": "2025-12-02T01:50:00.000Z",
        "state": "Close the books",
        "outcome": "paid",
    }
    paid_row.pop("error"), paid_row.pop("error_cause")

    assert compute([failed], [failed_row]).outcomes == {"failed": 1}
    # A redrive runs on from the failure: in progress, not failed.
    assert compute([running], [failed_row]).outcomes == {"in progress": 1}
    # ... and once it closed the books, its later row is the invoice's outcome.
    succeeded = failed.model_copy(update={"status": "SUCCEEDED"})
    assert compute([succeeded], [failed_row, paid_row]).outcomes == {"paid": 1}
    # A later execution of the same invoice (a forced replay) that failed at a step: failed.
    replay = "arn:aws:states:eu-west-1:123456789012:execution:aios-dev-accounts-payable:77aa"
    replay_failed = failed.model_copy(
        update={"arn": replay, "started": datetime(2025, 12, 2, 2, 0, tzinfo=UTC), "status": "TIMED_OUT"}
    )
    replay_row = {**failed_row, "pk": replay, "sk": "2025-12-02T02:01:00.000Z#Execution failed"}
    replay_row |= {"recorded_at": "2025-12-02T02:01:00.000Z", "outcome": "failed"}
    assert compute([succeeded, replay_failed], [failed_row, paid_row, replay_row]).outcomes == {"failed": 1}


def test_the_local_mode_emits_the_event_shape_aws_documents_and_the_function_reads() -> None:
    from types import SimpleNamespace  # noqa: PLC0415 - only this test needs them

    from infrastructure.local.status_events import status_change as local_status_change  # noqa: PLC0415

    execution = SimpleNamespace(
        exec_arn=EXECUTION.replace("eu-west-1", "us-east-1"),
        exec_status=SimpleNamespace(value="FAILED"),
        name="3f6c",
        start_date=datetime(2025, 12, 2, 1, 45, 40, 123000, tzinfo=UTC),
        stop_date=datetime(2025, 12, 2, 1, 46, 40, 123000, tzinfo=UTC),
        input_data={"detail": {"business_key": "erp:INV-9001"}},
        output=None,
        error="Connector.Unavailable",
        cause=CAUSE,
    )

    entry = local_status_change(execution)

    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == (
        "aws.states",
        "Step Functions Execution Status Change",
        "default",
    )
    detail = json.loads(entry["Detail"])
    assert detail["stateMachineArn"] == MACHINE.replace("eu-west-1", "us-east-1")
    assert (detail["startDate"], detail["stopDate"]) == (STOPPED_MS - 60_000, STOPPED_MS)
    assert json.loads(detail["input"]) == execution.input_data and detail["output"] is None
    event = {"source": entry["Source"], "detail-type": entry["DetailType"], "detail": detail}
    lineage, _ = writer()
    assert record_failure(request(event), lineage).business_key == "erp:INV-9001"
