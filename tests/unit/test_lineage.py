"""Lineage records: one time format whoever writes them, and errors without payloads."""

from __future__ import annotations

import json

import pytest

from aios.approvals.models import utc_now_iso
from aios.lineage import MAX_CAUSE_CHARS, LineageContext, build_record, failure, lineage_time

AWS = "2019-03-26T20:14:13.192Z"


@pytest.mark.parametrize(
    "value",
    [
        AWS,
        "2019-03-26T20:14:13.192000+00:00",  # the local interpreter's EnteredTime
        "2019-03-26T20:14:13.192456+00:00",
        "2019-03-26T21:14:13.192+01:00",
        "2019-03-26T20:14:13.192",
        1553631253.192,
    ],
)
def test_every_time_is_written_in_aws_entered_time_format(value: str | float) -> None:
    assert lineage_time(value) == AWS


def test_our_own_clock_stamps_the_same_format() -> None:
    assert utc_now_iso(1553631253.192) == AWS


def test_record_keys_use_the_one_format_whatever_the_interpreter_sent() -> None:
    # Given a step entered at a time the local interpreter formats its own way
    context = LineageContext(
        execution="arn:aws:states:eu-west-1:1:execution:ap:x",
        state="Fetch the invoice from the ERP",
        entered_at="2019-03-26T20:14:13.192000+00:00",
        business_key="erp:INV-1",
        workflow="accounts-payable",
    )
    # When its record is built
    record = build_record(context, {"operation": "get_invoice"}, {"connector": "erp"})
    # Then its sort key and time are AWS's format
    assert record.recorded_at == AWS
    assert record.sk == f"{AWS}#Fetch the invoice from the ERP"


def test_failure_keeps_a_lambda_errors_message_without_its_stack() -> None:
    cause = json.dumps({"errorMessage": "payments create_payment: 402 card_declined", "stackTrace": ["x"]})
    assert failure("Connector.Rejected", cause) == (
        "Connector.Rejected",
        "payments create_payment: 402 card_declined",
    )


def test_failure_never_keeps_the_state_input_an_interpreter_error_quotes() -> None:
    cause = (
        "The JSONPath '$.erp.invoice' specified for the field 'invoice.$' could not be found in the input "
        '\'{"detail": {"vendor_name": "Harbor Freight Partners LLC", '
        '"bank_account": "DE89370400440532013000"}}\''
    )
    error, kept = failure("States.Runtime", cause)
    assert error == "States.Runtime"
    assert kept is not None
    assert kept.startswith("The JSONPath '$.erp.invoice'")
    assert "Harbor" not in kept and "DE89" not in kept


def test_failure_is_bounded_and_a_json_cause_without_message_is_dropped() -> None:
    assert len(failure("X", "y" * 5000)[1] or "") == MAX_CAUSE_CHARS
    assert failure("X", json.dumps({"detail": {"iban": "DE89"}})) == ("X", None)
    assert failure("X", None) == ("X", None)
