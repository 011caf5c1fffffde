"""The local archive replays as AWS's does: the window's events only, to the rules named only.

StartReplay: "Only events that occurred between the EventStartTime and EventEndTime are
replayed"; ``Destination.FilterArns``: "A list of ARNs for rules to replay events to"
(https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_StartReplay.html); replayed
events carry ``replay-name`` and are not archived again
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-archive.html). moto 5.2.5 replayed
every archived event to every rule of the bus.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.integration.local.conftest import ROLE, Aws

ACCOUNT = "123456789012"
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _machine(aws: Aws, name: str) -> str:
    arn: str = aws.client("stepfunctions").create_state_machine(
        name=name,
        roleArn=ROLE,
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
    )["stateMachineArn"]
    return arn


def _inputs(aws: Aws, machine: str, count: int) -> list[dict[str, Any]]:
    sfn = aws.client("stepfunctions")
    deadline = time.monotonic() + 10
    while True:
        runs = sfn.list_executions(stateMachineArn=machine)["executions"]
        if len(runs) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return [json.loads(sfn.describe_execution(executionArn=r["executionArn"])["input"]) for r in runs]


def test_a_replay_sends_the_window_to_the_filtered_rules_only(aws: Aws) -> None:
    # Given a bus with an archive of every event, and two rules each starting a workflow
    events = aws.client("events")
    bus_arn = events.create_event_bus(Name="replayed")["EventBusArn"]
    archive_arn = events.create_archive(
        ArchiveName="replayed-archive",
        EventSourceArn=bus_arn,
        EventPattern=json.dumps({"account": [ACCOUNT]}),
    )["ArchiveArn"]
    machines = {}
    for rule in ("a", "b"):
        machines[rule] = _machine(aws, f"replay-{rule}")
        events.put_rule(Name=rule, EventBusName="replayed", EventPattern=json.dumps({"source": ["s"]}))
        events.put_targets(Rule=rule, EventBusName="replayed", Targets=[{"Id": "1", "Arn": machines[rule]}])
    rule_a = events.describe_rule(Name="a", EventBusName="replayed")["Arn"]

    # ... and three events, at T0, T0 + 10 min and T0 + 20 min, delivered live to both
    for n in range(3):
        events.put_events(
            Entries=[
                {
                    "EventBusName": "replayed",
                    "Source": "s",
                    "DetailType": "d",
                    "Detail": json.dumps({"n": n}),
                    "Time": T0 + timedelta(minutes=10 * n),
                }
            ]
        )
    assert len(_inputs(aws, machines["a"], 3)) == 3

    # When the archive is replayed for the middle event's minute, to rule a only
    events.start_replay(
        ReplayName="middle",
        EventSourceArn=archive_arn,
        EventStartTime=T0 + timedelta(minutes=9),
        EventEndTime=T0 + timedelta(minutes=11),
        Destination={"Arn": bus_arn, "FilterArns": [rule_a]},
    )

    # Then a gets that one event again, marked as replayed, and b gets nothing more
    assert events.describe_replay(ReplayName="middle")["State"] == "COMPLETED"
    replayed = [i for i in _inputs(aws, machines["a"], 4) if "replay-name" in i]
    assert [(i["replay-name"], i["detail"]) for i in replayed] == [("middle", {"n": 1})]
    time.sleep(0.5)
    assert len(_inputs(aws, machines["b"], 3)) == 3
    # ... and the replayed event was not archived again: a second replay of the window finds one
    events.start_replay(
        ReplayName="again",
        EventSourceArn=archive_arn,
        EventStartTime=T0 + timedelta(minutes=9),
        EventEndTime=T0 + timedelta(minutes=11),
        Destination={"Arn": bus_arn, "FilterArns": [rule_a]},
    )
    names = sorted(i["replay-name"] for i in _inputs(aws, machines["a"], 5) if "replay-name" in i)
    assert names == ["again", "middle"]
