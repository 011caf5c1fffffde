"""The recovery verbs' decisions (replay, pause/resume, redrive), on recorded shapes of the AWS
answers. No sockets: the claim's writer runs against a fake DynamoDB client."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from aios.payables import FingerprintStore
from infrastructure.cli import main
from infrastructure.ops import actions, pause, redrive, replay
from infrastructure.ops.lineage import FACTS

T0 = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:aios-dev-accounts-payable"
AP = "arn:aws:states:us-east-1:123456789012:execution:aios-dev-accounts-payable:"


def previous(status: str, *, error: str | None = None, outcome: str | None = None, ended: float = 60) -> Any:
    return replay.Previous(
        execution=AP + "one",
        status=status,
        started=T0,
        stopped=T0 + timedelta(seconds=ended) if status != "RUNNING" else None,
        error=error,
        outcome=outcome,
    )


# -- replay ------------------------------------------------------------------------------------


def test_replay_is_refused_while_the_item_runs() -> None:
    reason = replay.refusal(previous("RUNNING"), force=True, now=T0 + timedelta(minutes=1))
    assert reason and "still running" in reason


@pytest.mark.parametrize("error", ["Invoice.Compensated", "Invoice.CompensationFailed"])
def test_replay_is_refused_after_a_compensation_even_forced(error: str) -> None:
    reason = replay.refusal(previous("FAILED", error=error), force=True, now=T0 + timedelta(minutes=5))
    assert reason and "reversed" in reason


def test_a_succeeded_item_needs_force_and_is_refused_once_side_effect_records_expired() -> None:
    paid = previous("SUCCEEDED", outcome="paid")
    soon, late = T0 + timedelta(hours=1), T0 + timedelta(hours=25)
    assert "nothing to re-run" in str(replay.refusal(paid, force=False, now=soon))
    assert replay.refusal(paid, force=True, now=soon) is None
    # 24 h: aios.connectors.kit.IDEMPOTENCY_EXPIRES_SECONDS, and Stripe's idempotency key lifetime
    assert "could post or pay again" in str(replay.refusal(paid, force=True, now=late))


def test_a_failure_that_posted_nothing_is_replayable_whenever() -> None:
    nothing = previous("FAILED", error="Invoice.NotProcessed", outcome="failed")
    assert replay.refusal(nothing, force=False, now=T0 + timedelta(days=30)) is None
    # ... but one that failed at a later step (redrive-friendly failures) only within the window
    outage = previous("FAILED", error="Connector.Unavailable")
    assert replay.refusal(outage, force=False, now=T0 + timedelta(hours=1)) is None
    assert replay.refusal(outage, force=False, now=T0 + timedelta(days=2)) is not None


def test_replay_names_are_valid_execution_names_and_distinct() -> None:
    names = {replay.replay_name("erp:INV-1", T0 + timedelta(milliseconds=n)) for n in range(3)}
    assert len(names) == 3
    # StartExecution name: 1-80 characters, no whitespace, brackets, wildcards or punctuation.
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,80}", n) for n in names)


def test_candidates_are_the_workflow_executions_of_lineage_and_the_claim() -> None:
    rows = [
        {"pk": AP + "a"},
        {"pk": "arn:aws:states:us-east-1:123456789012:express:aios-dev-intake:x:y"},
        {"pk": AP + "a"},
        {"pk": "operator#accounts-payable"},
    ]
    assert replay.candidates(rows, MACHINE, AP + "b") == [AP + "a", AP + "b"]
    assert replay.candidates(rows, MACHINE, None) == [AP + "a"]


class FakeDynamo:
    """put_item/get_item/update_item of one table, conditions on ``pk``/``execution`` only."""

    class exceptions:
        class ConditionalCheckFailedException(Exception):
            pass

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.updates: list[dict[str, Any]] = []

    def put_item(self, **request: Any) -> None:
        key = request["Item"]["pk"]["S"]
        if key in self.items and "attribute_not_exists" in request.get("ConditionExpression", ""):
            raise self.exceptions.ConditionalCheckFailedException
        self.items[key] = request["Item"]

    def get_item(self, **request: Any) -> dict[str, Any]:
        return {"Item": self.items[request["Key"]["pk"]["S"]]}

    def update_item(self, **request: Any) -> None:
        from botocore.exceptions import ClientError  # noqa: PLC0415

        item = self.items[request["Key"]["pk"]["S"]]
        values = request["ExpressionAttributeValues"]
        if item["execution"] != values[":from"]:
            raise ClientError({"Error": {"Code": "ConditionalCheckFailedException"}}, "UpdateItem")
        item["execution"] = values[":to"]
        self.updates.append(request)


class FakeTarget:
    def __init__(self, dynamo: FakeDynamo) -> None:
        self.dynamo = dynamo

    def name(self, part: str) -> str:
        return f"aios-dev-{part}"

    def client(self, service: str) -> Any:
        assert service == "dynamodb"
        return self.dynamo


def test_replay_hands_over_the_claim_the_workflow_wrote_and_only_from_its_holder() -> None:
    # Given the claim as the workflow's first step writes it (aios.payables)
    dynamo = FakeDynamo()
    store = FingerprintStore("aios-dev-approvals", dynamo, clock=T0.timestamp)  # type: ignore[arg-type]
    store.claim("erp:INV-1", AP + "one")
    target: Any = FakeTarget(dynamo)
    assert replay.claim_holder(target, "erp:INV-1") == AP + "one"

    # When a replay hands it over, it then names the new execution
    said = replay.hand_over_claim(target, "erp:INV-1", AP + "one", AP + "two", T0)
    assert said == f"handed over from {AP}one"
    assert replay.claim_holder(target, "erp:INV-1") == AP + "two"
    assert dynamo.updates[0]["ConditionExpression"] == "#execution = :from"

    # ... and a second replay that saw the old holder is refused (the claim changed under it)
    with pytest.raises(Exception, match="changed while replaying"):
        replay.hand_over_claim(target, "erp:INV-1", AP + "one", AP + "three", T0)
    assert replay.claim_holder(target, "erp:INV-1") == AP + "two"


def test_operator_facts_are_shown_by_lineage() -> None:
    assert {"replay_of", "action", "operator", "paused_at"} <= set(FACTS)
    assert actions.execution_arn(MACHINE, "n") == AP + "n"
    # an execution started on the alias is named after the state machine, not the alias
    assert actions.execution_arn(MACHINE + ":live", "n") == AP + "n"


# -- pause / resume ----------------------------------------------------------------------------


def test_the_open_pause_is_the_first_unresumed_one() -> None:
    def op(action: str, minute: int, paused: int | None = None) -> dict[str, str]:
        row = {"action": action, "recorded_at": f"2026-12-01T10:{minute:02d}:00.000Z"}
        if paused is not None:
            row["paused_at"] = f"2026-12-01T10:{paused:02d}:00.000Z"
        return row

    assert pause.open_pause([]) is None
    assert pause.open_pause([op("pause", 1, 1)]) == T0 + timedelta(minutes=1)
    assert pause.open_pause([op("pause", 1, 1), op("resume", 5)]) is None
    # a second pause over an unresumed one keeps the first start
    assert pause.open_pause([op("pause", 9, 9), op("pause", 1, 1)]) == T0 + timedelta(minutes=1)
    assert pause.open_pause([op("pause", 1, 1), op("resume", 5), op("pause", 7, 7)]) == T0 + timedelta(
        minutes=7
    )


def test_the_replayed_window_covers_the_pause_with_its_edges() -> None:
    start, end = pause.window(T0, T0 + timedelta(minutes=10), settle=30)
    assert start == T0 - timedelta(seconds=pause.EDGE_SECONDS)
    assert end == T0 + timedelta(minutes=10, seconds=30)


def test_a_replayed_execution_is_new_work_only_if_it_holds_the_claim() -> None:
    assert pause.classify(AP + "r", AP + "r") == "new"
    assert pause.classify(AP + "r", AP + "live") == "duplicate"
    assert pause.classify(AP + "r", None) == "unclaimed"


def test_replay_names_fit_start_replay() -> None:
    # ReplayName: 1-64 characters of [.-_A-Za-z0-9] (API_StartReplay.html)
    name = pause.replay_name_of("a-very-long-workflow-name-" * 3, T0)
    assert re.fullmatch(r"[.\-_A-Za-z0-9]{1,64}", name), name


# -- redrive -----------------------------------------------------------------------------------


def described(status: str, **extra: Any) -> dict[str, Any]:
    """DescribeExecution's answer: an execution started at T0 that ended 30 s later."""
    ended = {} if status == "RUNNING" else {"stopDate": T0 + timedelta(seconds=30)}
    return {
        "executionArn": AP + "one",
        "status": status,
        "startDate": T0,
        "input": '{"detail": {"business_key": "erp:INV-1"}}',
        **ended,
        **extra,
    }


def history(*types: tuple[str, str | None]) -> list[dict[str, Any]]:
    events = []
    for n, (kind, name) in enumerate(types, start=1):
        event: dict[str, Any] = {"id": n, "type": kind}
        if name:
            event["stateEnteredEventDetails"] = {"name": name}
        events.append(event)
    return events


def test_a_failure_at_a_task_is_redrivable_within_14_days() -> None:
    found = redrive.assess(described("FAILED"), express=False, fail_state=None, now=T0 + timedelta(days=13))
    assert found.verdict == "redriven"
    late = redrive.assess(described("FAILED"), express=False, fail_state=None, now=T0 + timedelta(days=15))
    assert late.verdict == "cannot" and "aios replay erp:INV-1" in late.detail


def test_a_failure_caught_into_a_fail_state_is_not_redriven_but_replayed() -> None:
    events = history(
        ("ExecutionStarted", None),
        ("TaskStateEntered", "Fetch the invoice from the ERP"),
        ("PassStateEntered", "Could not be processed"),
        ("FailStateEntered", "Invoice not processed"),
        ("ExecutionFailed", None),
    )
    assert redrive.fail_state_of(reversed(events)) == "Invoice not processed"
    found = redrive.assess(
        described("FAILED", error="Invoice.NotProcessed"),
        express=False,
        fail_state="Invoice not processed",
        now=T0 + timedelta(hours=1),
    )
    assert found.verdict == "cannot" and "aios replay erp:INV-1" in found.detail
    # ... while a Task that failed the execution is no Fail state
    task = history(("ExecutionStarted", None), ("TaskStateEntered", "Fetch"), ("ExecutionFailed", None))
    assert redrive.fail_state_of(task) is None


@pytest.mark.parametrize(
    ("status", "express", "verdict", "says"),
    [
        ("RUNNING", False, "not-needed", "only FAILED"),
        ("SUCCEEDED", False, "not-needed", "only FAILED"),
        ("TIMED_OUT", False, "redriven", "redrivable"),
        ("ABORTED", False, "redriven", "redrivable"),
        ("FAILED", True, "cannot", "Express"),
    ],
)
def test_redrive_applies_to_unsuccessful_standard_executions(
    status: str, express: bool, verdict: str, says: str
) -> None:
    found = redrive.assess(described(status), express=express, fail_state=None, now=T0 + timedelta(hours=1))
    assert (found.verdict, says in found.detail) == (verdict, True)


def test_what_aws_says_is_not_redrivable_is_said() -> None:
    found = redrive.assess(
        described(
            "FAILED",
            redriveStatus="NOT_REDRIVABLE",
            redriveStatusReason="Execution history event limit exceeded",
        ),
        express=False,
        fail_state=None,
        now=T0 + timedelta(hours=1),
    )
    assert found.verdict == "cannot" and "event limit exceeded" in found.detail


def test_client_tokens_are_one_per_redrive() -> None:
    first, second = redrive.client_token(AP + "one", 0), redrive.client_token(AP + "one", 1)
    assert first != second and first == redrive.client_token(AP + "one", 0)
    # clientToken: 1-64 characters
    assert all(1 <= len(t) <= 64 for t in (first, second))


def test_every_new_verb_has_help() -> None:
    runner = CliRunner()
    for verb in (["replay"], ["pause"], ["resume"], ["redrive"]):
        result = runner.invoke(main, [*verb, "--help"])
        assert result.exit_code == 0 and "--json" in result.output and "--endpoint-url" in result.output
    assert runner.invoke(main, ["redrive"]).exit_code == 2  # neither an execution nor a workflow


def test_operators_start_what_the_rules_start() -> None:
    from infrastructure.constructs.workflows import LIVE_ALIAS as CDK_ALIAS  # noqa: PLC0415
    from infrastructure.local.deploy import LIVE_ALIAS as LOCAL_ALIAS  # noqa: PLC0415
    from infrastructure.ops.target import LIVE_ALIAS  # noqa: PLC0415

    assert LIVE_ALIAS == CDK_ALIAS == LOCAL_ALIAS


# -- resume against AWS's call shapes ------------------------------------------------------------

RULE = "aios-dev-accounts-payable-trigger"
RULE_ARN = f"arn:aws:events:us-east-1:123456789012:rule/aios-dev-aios/{RULE}"
BUS_ARN = "arn:aws:events:us-east-1:123456789012:event-bus/aios-dev-aios"
ARCHIVE_ARN = "arn:aws:events:us-east-1:123456789012:archive/aios-dev-aios-archive"


class Recorder:
    """Fake clients: each call recorded as (service, operation, request), answers canned."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.answers = answers

    def client(self, service: str) -> Any:
        recorder = self

        class Client:
            def __getattr__(self, operation: str) -> Any:
                if operation == "get_paginator":
                    return lambda name: type(
                        "P", (), {"paginate": lambda _s, **kw: [recorder.answer(service, name, kw)]}
                    )()
                return lambda **kw: recorder.answer(service, operation, kw)

        return Client()

    def answer(self, service: str, operation: str, request: dict[str, Any]) -> Any:
        self.calls.append((service, operation, request))
        value = self.answers.get(operation, {})
        return value(request) if callable(value) else value


def test_resume_enables_then_replays_the_pause_window_to_the_rules_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    paused_at = T0
    enabled_at = T0 + timedelta(minutes=20)
    clock = iter(
        [enabled_at, enabled_at, enabled_at + timedelta(minutes=11), enabled_at + timedelta(minutes=11)]
    )
    monkeypatch.setattr(actions, "now", lambda: next(clock, enabled_at + timedelta(minutes=12)))
    slept: list[float] = []
    monkeypatch.setattr(pause.time, "sleep", slept.append)
    replayed_input = '{"replay-name": "NAME", "detail": {"business_key": "erp:INV-1"}}'
    recorder = Recorder(
        {
            "list_state_machines": {
                "stateMachines": [{"name": "aios-dev-accounts-payable", "stateMachineArn": MACHINE}]
            },
            "list_state_machine_aliases": {
                "stateMachineAliases": [{"stateMachineAliasArn": MACHINE + ":live"}]
            },
            "list_rule_names_by_target": lambda r: {
                "RuleNames": [RULE] if r["TargetArn"].endswith(":live") else []
            },
            "describe_rule": {"Arn": RULE_ARN, "State": "DISABLED"},
            "query": {
                "Items": [
                    {
                        "action": {"S": "pause"},
                        "recorded_at": {"S": "2026-12-01T10:00:00.000Z"},
                        "paused_at": {"S": "2026-12-01T10:00:00.000Z"},
                    }
                ]
            },
            "describe_archive": {"ArchiveArn": ARCHIVE_ARN},
            "describe_event_bus": {"Arn": BUS_ARN},
            "describe_replay": {"State": "COMPLETED"},
            "list_executions": {
                "executions": [{"executionArn": AP + "r", "startDate": enabled_at + timedelta(minutes=12)}]
            },
            "describe_execution": lambda r: {
                "input": replayed_input.replace("NAME", pause.replay_name_of("accounts-payable", enabled_at))
            },
            "get_item": {"Item": {"execution": {"S": AP + "r"}}},
            "get_caller_identity": {"Arn": "arn:aws:sts::123456789012:assumed-role/operator/alice"},
        }
    )
    target: Any = type("T", (actions.Target,), {"client": lambda _s, service: recorder.client(service)})(
        stage="dev"
    )

    result = pause.resume_workflow(target, "accounts-payable", since=None, archive_delay=600, settle=30)

    operations = [operation for _, operation, _ in recorder.calls]
    # The rule is enabled before the replay starts, and the replay waits out the archive's delay
    assert operations.index("enable_rule") < operations.index("start_replay")
    assert slept[0] == pytest.approx(600 + 30, abs=1)
    [(_, _, replay_request)] = [c for c in recorder.calls if c[1] == "start_replay"]
    assert replay_request["EventSourceArn"] == ARCHIVE_ARN
    assert replay_request["Destination"] == {"Arn": BUS_ARN, "FilterArns": [RULE_ARN]}
    assert replay_request["EventStartTime"] == paused_at - timedelta(seconds=pause.EDGE_SECONDS)
    assert replay_request["EventEndTime"] == enabled_at + timedelta(seconds=30)
    # ... and it counted the one execution the replay started, which claimed its item
    assert (result.replayed, result.new, result.duplicates) == (1, 1, 0)
    [(_, _, row)] = [c for c in recorder.calls if c[1] == "put_item"]
    assert row["Item"]["action"] == {"S": "resume"} and row["Item"]["replayed"] == {"S": "1"}
