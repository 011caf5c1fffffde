"""The operator verbs' computation and formatting, on recorded shapes of the AWS answers.

No sockets: clients are fakes holding what DynamoDB, SQS and Step Functions return.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from infrastructure.cli import main
from infrastructure.ops import approvals, dlq, lineage, report
from infrastructure.ops.target import Target, age, parse_time, render_table

T0 = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)
AP = "arn:aws:states:us-east-1:123456789012:execution:aios-dev-accounts-payable:"
INTAKE = "arn:aws:states:us-east-1:123456789012:express:aios-dev-intake:"


def ddb(**values: Any) -> dict[str, Any]:
    """A DynamoDB item from plain values (strings, lists of strings, bools)."""
    item: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, bool):
            item[name] = {"BOOL": value}
        elif isinstance(value, list):
            item[name] = {"L": [{"S": v} for v in value]}
        else:
            item[name] = {"S": str(value)}
    return item


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def row(execution: str, state: str, seconds: float, key: str = "erp:INV-1", **facts: str) -> dict[str, Any]:
    workflow = "intake" if execution.startswith(INTAKE) else "accounts-payable"
    return ddb(
        pk=execution,
        sk=f"{at(seconds)}#{state}",
        business_key=key,
        recorded_at=at(seconds),
        workflow=workflow,
        state=state,
        input_digest="sha256:in",
        output_digest="sha256:out",
        **facts,
    )


# -- tables and times ----------------------------------------------------------------------------


def test_render_table_aligns_columns() -> None:
    text = render_table(["A", "LONG"], [["x", "1"], ["yyyy", "22"]], right=frozenset({1}))
    assert text.splitlines() == ["A     LONG", "----  ----", "x        1", "yyyy    22"]


def test_parse_time_accepts_iso_and_ages() -> None:
    assert parse_time("2026-12-01T10:00:00Z") == T0
    assert parse_time("2026-12-01") == datetime(2026, 12, 1, tzinfo=UTC)
    ago = datetime.now(UTC) - parse_time("24h")
    assert timedelta(hours=23, minutes=59) < ago < timedelta(hours=24, minutes=1)


def test_age_reads_like_an_operator_would() -> None:
    assert age(T0, T0 + timedelta(seconds=42)) == "42s"
    assert age(T0, T0 + timedelta(minutes=30)) == "30m"
    assert age(T0, T0 + timedelta(hours=5, minutes=7)) == "5h07m"
    assert age(T0, T0 + timedelta(days=3, hours=2)) == "3d02h"


# -- lineage -------------------------------------------------------------------------------------


def test_lineage_story_orders_steps_and_keeps_what_produced_them() -> None:
    # Given the rows of one invoice, out of order, and its execution's end
    items = [
        row(AP + "a", "Close the books", 30, outcome="paid"),
        row(INTAKE + "i", "Record receipt", 0, outcome="received"),
        row(AP + "a", "Fetch the invoice from the ERP", 10, connector="erp", connector_version="1.2.0"),
        row(AP + "a", "Human decision", 20, approver="slack:U1", decision="approved"),
    ]
    end = lineage.ExecutionEnd(execution=AP + "a", status="SUCCEEDED")
    # When the story is told
    found = lineage.story("erp:INV-1", items, [end])
    # Then the steps are in order, with their facts, and the outcome is the last one
    assert [s.state for s in found.steps] == [
        "Record receipt",
        "Fetch the invoice from the ERP",
        "Human decision",
        "Close the books",
    ]
    assert found.steps[1].facts == {"connector": "erp", "connector_version": "1.2.0"}
    assert found.outcome == "paid"
    text = lineage.render(found)
    assert "approver=slack:U1 decision=approved" in text
    assert "outcome paid" in text
    assert "SUCCEEDED" in text


def test_lineage_reads_execution_ends_of_standard_executions_only() -> None:
    class Sfn:
        def __init__(self) -> None:
            self.asked: list[str] = []

        def describe_execution(self, executionArn: str) -> dict[str, Any]:
            self.asked.append(executionArn)
            return {"status": "FAILED", "error": "Connector.Rejected", "cause": "402 card_declined"}

    sfn = Sfn()
    target = Target(stage="dev", _clients={"stepfunctions": sfn})
    ends = lineage.execution_ends(target, [AP + "a", INTAKE + "i", AP + "a"])
    assert sfn.asked == [AP + "a"]  # Express has no describable history on AWS; each once
    assert ends == [
        lineage.ExecutionEnd(
            execution=AP + "a", status="FAILED", error="Connector.Rejected", cause="402 card_declined"
        )
    ]


def test_lineage_command_json_and_exit_status() -> None:
    class Dynamo:
        def get_paginator(self, name: str) -> Any:
            assert name == "query"
            return self

        def paginate(self, **request: Any) -> list[dict[str, Any]]:
            assert request["IndexName"] == "by-business-key"
            assert request["TableName"] == "aios-dev-lineage"
            key = request["ExpressionAttributeValues"][":key"]["S"]
            rows = (
                [row(AP + "a", "Close the books", 3, key=key, outcome="rejected")]
                if key == "erp:INV-1"
                else []
            )
            return [{"Items": rows}]

    targets: list[Target] = []

    def of(stage: str | None, endpoint_url: str | None) -> Target:
        target = Target(stage=stage or "dev", endpoint_url=endpoint_url, _clients={"dynamodb": Dynamo()})
        targets.append(target)
        return target

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Target, "of", staticmethod(of))
        found = CliRunner().invoke(main, ["lineage", "erp:INV-1", "--json", "--no-executions"])
        missing = CliRunner().invoke(main, ["lineage", "erp:INV-404", "--no-executions"])
    assert found.exit_code == 0, found.output
    assert json.loads(found.output)["outcome"] == "rejected"
    assert missing.exit_code == 1
    assert "no lineage for erp:INV-404" in missing.output


# -- approvals -----------------------------------------------------------------------------------


def approval(
    approval_id: str, status: str, entered: float, notices: list[str] | None = None
) -> dict[str, Any]:
    context = {
        "execution": AP + approval_id,
        "state": "Ask an approver in Slack",
        "entered_at": at(entered),
        "business_key": f"erp:{approval_id}",
        "workflow": "accounts-payable",
    }
    invoice = {"invoice_id": approval_id, "vendor_name": "Acme", "amount": "7151.42", "currency": "SEK"}
    return ddb(
        pk=f"approval#{approval_id}",
        approval_id=approval_id,
        business_key=f"erp:{approval_id}",
        allowed_approvers=["U1", "U2"],
        status=status,
        channel="C1",
        lineage=json.dumps(context),
        invoice=json.dumps(invoice),
        notices=notices or [],
        delivered=False,
        updated_at=at(entered),
        task_token="never-shown",
    )


def test_pending_approvals_say_who_since_when_and_which_stage() -> None:
    items = [
        approval("apr_b", "pending", 600, notices=[f"reminder#{at(900)}", f"escalation#{at(1200)}"]),
        approval("apr_a", "pending", 0),
        approval("apr_c", "approved", 0),
        ddb(pk="claim#erp:INV-9", status="pending"),
    ]
    found = approvals.pending(items)
    assert [p.approval_id for p in found] == ["apr_a", "apr_b"]  # oldest first, decided ones left out
    assert (found[0].stage, found[0].waiting_since) == ("request", T0)
    assert (found[1].stage, found[1].stage_since) == ("escalation", T0 + timedelta(seconds=1200))
    assert found[1].approvers == ("U1", "U2")
    text = approvals.render(found, T0 + timedelta(hours=2))
    assert "erp:apr_b" in text and "escalation" in text and "U1,U2" in text and "7151.42 SEK" in text
    assert "never-shown" not in text + json.dumps([p.model_dump(mode="json") for p in found])


def test_waiting_since_is_the_request_even_after_a_reminder() -> None:
    # Given an approval at its reminder stage (the item keeps only the reminder's time) and
    # the execution's lineage: the decision to ask a human, then the request, then the reminder
    item = approval("apr_r", "pending", 900, notices=[f"reminder#{at(900)}"])
    rows = lineage_rows(
        [
            row(AP + "apr_r", "Decide: automatic or human", 5, decision="needs-approval"),
            row(AP + "apr_r", "Ask an approver in Slack", 6),
            row(AP + "apr_r", "Remind the approver", 900),
        ]
    )
    # When pending approvals are listed with the request times
    [found] = approvals.pending([item], approvals.request_times(rows))
    # Then it waits since the request, in the reminder stage since the reminder
    assert (found.waiting_since, found.stage, found.stage_since) == (
        T0 + timedelta(seconds=6),
        "reminder",
        T0 + timedelta(seconds=900),
    )


def lineage_rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [lineage.plain(item) for item in items]


def test_pending_scan_never_asks_for_the_task_token() -> None:
    assert "task_token" not in approvals.PROJECTION
    assert "#status" in approvals.PROJECTION


# -- dead letters --------------------------------------------------------------------------------

RULE = "arn:aws:events:us-east-1:123456789012:rule/aios-dev-aios/aios-dev-accounts-payable-trigger"
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:aios-dev-accounts-payable"


def message(message_id: str, *, target: str | None = MACHINE, event_id: str = "ev-1") -> dict[str, Any]:
    event = {
        "id": event_id,
        "detail-type": "Invoice Received",
        "source": "aios.invoices",
        "detail": {"business_key": "erp:INV-7"},
    }
    attributes = {
        "RULE_ARN": RULE,
        "ERROR_CODE": "ThrottlingException",
        "ERROR_MESSAGE": "Rate exceeded",
        "RETRY_ATTEMPTS": "185",
    }
    if target:
        attributes["TARGET_ARN"] = target
    return {
        "MessageId": message_id,
        "ReceiptHandle": f"rh-{message_id}",
        "Body": json.dumps(event),
        "Attributes": {"SentTimestamp": str(int(T0.timestamp() * 1000)), "ApproximateReceiveCount": "1"},
        "MessageAttributes": {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    }


def test_a_dead_letter_says_its_target_error_and_item() -> None:
    found = dlq.letter(message("m-1"))
    assert (found.target_arn, found.target_kind, found.rule_arn) == (MACHINE, "workflow", RULE)
    assert (found.error_code, found.error_message, found.retry_attempts) == (
        "ThrottlingException",
        "Rate exceeded",
        185,
    )
    assert (found.event_id, found.detail_type, found.business_key) == (
        "ev-1",
        "Invoice Received",
        "erp:INV-7",
    )
    assert found.sent_at == T0
    assert "receipt_handle" not in found.summary()
    text = dlq.render_list([found])
    assert "aios-dev-accounts-payable (workflow)" in text and "erp:INV-7" in text
    assert '"detail-type": "Invoice Received"' in dlq.render_show(found)


def test_lambda_dlq_messages_have_no_target() -> None:
    lambda_message = {
        "MessageId": "m-9",
        "ReceiptHandle": "rh",
        "Body": "{}",
        "MessageAttributes": {
            "ErrorCode": {"StringValue": "200"},
            "ErrorMessage": {"StringValue": "boom"},
        },
    }
    found = dlq.letter(lambda_message)
    assert (found.target_kind, found.error_code, found.error_message) == ("unknown", "200", "boom")


def test_execution_names_are_one_per_event_and_target() -> None:
    name = dlq.execution_name(MACHINE, "ev-1")
    assert name == dlq.execution_name(MACHINE, "ev-1")
    assert name != dlq.execution_name(MACHINE, "ev-2")
    assert len(name) <= 80


def test_find_needs_a_unique_id_or_prefix() -> None:
    letters = [dlq.letter(message("abc-1")), dlq.letter(message("abd-2"))]
    assert dlq.find(letters, "abc").message_id == "abc-1"
    with pytest.raises(Exception, match="more than one"):
        dlq.find(letters, "ab")
    with pytest.raises(Exception, match="no dead letter"):
        dlq.find(letters, "zzz")


class FakeSqs:
    def __init__(self, messages: list[dict[str, Any]]) -> None:
        self.messages = {m["MessageId"]: m for m in messages}
        self.hidden: set[str] = set()
        self.deleted: list[str] = []

    def get_queue_url(self, QueueName: str) -> dict[str, str]:
        assert QueueName == "aios-dev-dead-letters"
        return {"QueueUrl": "https://sqs/dlq"}

    def receive_message(self, **request: Any) -> dict[str, Any]:
        visible = [m for i, m in self.messages.items() if i not in self.hidden][
            : request["MaxNumberOfMessages"]
        ]
        self.hidden |= {m["MessageId"] for m in visible}
        return {"Messages": visible} if visible else {}

    def change_message_visibility(self, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int) -> None:
        assert VisibilityTimeout == 0
        self.hidden.discard(ReceiptHandle.removeprefix("rh-"))

    def delete_message(self, QueueUrl: str, ReceiptHandle: str) -> None:
        message_id = ReceiptHandle.removeprefix("rh-")
        self.deleted.append(message_id)
        del self.messages[message_id]
        self.hidden.discard(message_id)


class FakeSfn:
    def __init__(self, refuse: str | None = None) -> None:
        self.names: set[str] = set()
        self.started: list[dict[str, Any]] = []
        self.refuse = refuse

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        from botocore.exceptions import ClientError  # noqa: PLC0415

        if executionArn.rsplit(":", 1)[-1] in self.names:
            return {"executionArn": executionArn, "status": "RUNNING"}
        raise ClientError({"Error": {"Code": "ExecutionDoesNotExist", "Message": "no"}}, "DescribeExecution")

    def start_execution(self, stateMachineArn: str, name: str, input: str) -> dict[str, Any]:
        from botocore.exceptions import ClientError  # noqa: PLC0415

        if self.refuse:
            raise ClientError({"Error": {"Code": self.refuse, "Message": "no"}}, "StartExecution")
        if name in self.names:
            raise ClientError(
                {"Error": {"Code": "ExecutionAlreadyExists", "Message": name}}, "StartExecution"
            )
        self.names.add(name)
        self.started.append({"stateMachineArn": stateMachineArn, "name": name, "input": json.loads(input)})
        return {"executionArn": f"{MACHINE}:{name}"}


def test_redrive_delivers_each_letter_once_and_deletes_only_what_was_accepted() -> None:
    # Given two letters of the same event (a redrive whose delete failed) and one without target
    sqs = FakeSqs([message("m-1"), message("m-2"), message("m-3", target=None)])
    sfn = FakeSfn()
    target = Target(stage="dev", _clients={"sqs": sqs, "stepfunctions": sfn})
    queue = dlq.Queue(target)
    # When every letter is redriven
    results = dlq.redrive_letters(target, queue, queue.receive_all())
    # Then the event starts one execution, under its derived name, with the event as input
    assert [s["name"] for s in sfn.started] == [dlq.execution_name(MACHINE, "ev-1")]
    assert sfn.started[0]["input"]["detail"]["business_key"] == "erp:INV-7"
    assert [r.outcome for r in results] == ["redriven", "already-redriven", "skipped"]
    # ... both copies are gone, and the letter without a target is back in the queue
    assert sqs.deleted == ["m-1", "m-2"]
    assert set(sqs.messages) == {"m-3"} and not sqs.hidden


def test_a_refused_redrive_keeps_the_letter() -> None:
    sqs = FakeSqs([message("m-1")])
    target = Target(
        stage="dev", _clients={"sqs": sqs, "stepfunctions": FakeSfn(refuse="AccessDeniedException")}
    )
    queue = dlq.Queue(target)
    [result] = dlq.redrive_letters(target, queue, queue.receive_all())
    assert result.outcome == "failed" and "AccessDeniedException" in result.detail
    assert sqs.deleted == [] and set(sqs.messages) == {"m-1"} and not sqs.hidden


# -- report --------------------------------------------------------------------------------------


def history(*, callback: bool = False, scored_seconds: float = 2.0) -> list[dict[str, Any]]:
    """A short accounts-payable history: entered states, two Lambda tasks, one PutEvents."""
    function = "arn:aws:lambda:us-east-1:123456789012:function:aios-dev-model-invoke:7"
    resource = "invoke.waitForTaskToken" if callback else "invoke"
    return [
        {"id": 1, "type": "ExecutionStarted", "timestamp": T0},
        {"id": 2, "type": "TaskStateEntered", "timestamp": T0},
        {
            "id": 3,
            "type": "TaskScheduled",
            "timestamp": T0,
            "taskScheduledEventDetails": {
                "resourceType": "lambda",
                "resource": resource,
                "parameters": json.dumps({"FunctionName": function}),
            },
        },
        {"id": 4, "type": "TaskStarted", "timestamp": T0},
        {"id": 5, "type": "TaskSucceeded", "timestamp": T0 + timedelta(seconds=scored_seconds)},
        {"id": 6, "type": "TaskStateEntered", "timestamp": T0},
        {
            "id": 7,
            "type": "TaskScheduled",
            "timestamp": T0,
            "taskScheduledEventDetails": {
                "resourceType": "events",
                "resource": "putEvents",
                "parameters": "{}",
            },
        },
        {"id": 8, "type": "TaskSucceeded", "timestamp": T0},
        {"id": 9, "type": "SucceedStateEntered", "timestamp": T0},
    ]


def test_execution_facts_count_transitions_lambda_seconds_and_events() -> None:
    execution = {"executionArn": AP + "a", "status": "SUCCEEDED", "startDate": T0, "stopDate": T0}
    facts = report.execution_facts(execution, history(), {"aios-dev-model-invoke": 1024})
    assert (facts.transitions, facts.lambda_requests, facts.put_events) == (3, 1, 1)
    assert facts.lambda_gb_seconds == pytest.approx(2.0)
    # A callback task's wait for a human is not Lambda time
    waiting = report.execution_facts(
        execution, history(callback=True, scored_seconds=3600), {"aios-dev-model-invoke": 1024}
    )
    assert waiting.lambda_gb_seconds == pytest.approx(report.CALLBACK_TASK_SECONDS)


def facts(
    arn: str, status: str = "SUCCEEDED", stop: float | None = 60.0, transitions: int = 10
) -> report.ExecutionFacts:
    return report.ExecutionFacts(
        arn=arn,
        status=status,
        started=T0 + timedelta(seconds=1),
        stopped=T0 + timedelta(seconds=stop) if stop is not None else None,
        transitions=transitions,
        lambda_requests=6,
        lambda_gb_seconds=3.0,
        put_events=1,
    )


def plain_rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [lineage.plain(item) for item in items]


def test_report_counts_automation_touches_outcomes_and_cycle_time() -> None:
    # Given an automatic payment, a human approval, a rejection still... and a duplicate delivery
    rows = plain_rows(
        [
            row(INTAKE + "1", "Record receipt", 0, key="erp:A", outcome="received"),
            row(AP + "a", "Decide: automatic or human", 5, key="erp:A", decision="auto-approved"),
            row(AP + "a", "Close the books", 9, key="erp:A", outcome="paid"),
            row(INTAKE + "2", "Record receipt", 0, key="erp:B", outcome="received"),
            row(AP + "b", "Decide: automatic or human", 5, key="erp:B", decision="needs-approval"),
            row(AP + "b", "Human decision", 30, key="erp:B", decision="approved", approver="slack:U1"),
            row(AP + "b", "Close the books", 40, key="erp:B", outcome="paid"),
            row(INTAKE + "3", "Record receipt", 0, key="erp:C", outcome="received"),
            row(AP + "c", "Decide: automatic or human", 5, key="erp:C", decision="needs-approval"),
        ]
    )
    executions = [
        facts(AP + "a", stop=10),
        facts(AP + "b", stop=120),
        facts(AP + "c", status="RUNNING", stop=None),
        facts(AP + "dup", stop=2, transitions=3),  # "Already handled": no lineage rows
    ]
    # When the report is computed
    result = report.compute(executions, rows)
    # Then
    assert (result.invoices, result.ended, result.automated, result.duplicates) == (3, 2, 1, 1)
    assert result.automation_coverage == pytest.approx(0.5)
    assert result.human_touches == 1
    assert result.outcomes == {"paid": 2, "in progress": 1}
    assert (result.cycle_time_p50_seconds, result.cycle_time_p95_seconds) == (10.0, 120.0)
    assert result.transitions_per_invoice == pytest.approx(10.0)
    per_invoice = result.cost_per_1000_invoices_usd
    assert per_invoice is not None and 0.1 < per_invoice < 2.0  # ~10 transitions at $0.025/1000 dominate
    text = report.render(result)
    assert "automated" in text and "50.0% of ended" in text and "outcome paid" in text


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert report.percentile(values, 50) == 50.0
    assert report.percentile(values, 95) == 95.0
    assert report.percentile([], 50) is None
    assert report.percentile([7.0], 95) == 7.0


def test_every_verb_has_help() -> None:
    runner = CliRunner()
    for verb in (
        ["lineage"],
        ["approvals", "pending"],
        ["dlq", "list"],
        ["dlq", "show"],
        ["dlq", "redrive"],
        ["report"],
    ):
        result = runner.invoke(main, [*verb, "--help"])
        assert result.exit_code == 0, result.output
        assert "--json" in result.output and "--endpoint-url" in result.output and "--stage" in result.output


def test_a_function_target_is_invoked_asynchronously_with_the_event() -> None:
    class FakeLambda:
        def __init__(self) -> None:
            self.calls: list[dict[str, Any]] = []

        def invoke(self, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:
            self.calls.append(
                {"function": FunctionName, "type": InvocationType, "event": json.loads(Payload)}
            )
            return {"StatusCode": 202}

    function = "arn:aws:lambda:us-east-1:123456789012:function:aios-dev-webhook-ingest"
    sqs, fake = FakeSqs([message("m-1", target=function)]), FakeLambda()
    target = Target(stage="dev", _clients={"sqs": sqs, "lambda": fake})
    queue = dlq.Queue(target)
    [result] = dlq.redrive_letters(target, queue, queue.receive_all())
    assert result.outcome == "redriven" and "202" in result.detail
    assert [(c["function"], c["type"], c["event"]["id"]) for c in fake.calls] == [(function, "Event", "ev-1")]
    assert sqs.deleted == ["m-1"]
