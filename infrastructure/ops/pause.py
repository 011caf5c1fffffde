"""``aios pause WORKFLOW`` / ``aios resume WORKFLOW``: stop a flow safely, and catch up exactly once.

Pause records the pause time in lineage, then disables the rules that start the workflow
(``ListRuleNamesByTarget`` on the bus: whatever rules target its state machine). A disabled
rule matches no events (allow a short moment for that to take effect:
https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_DisableRule.html), but the bus
still archives every event (``PlatformBus``: the archive's pattern is every event of the
account), so nothing that arrives meanwhile is lost. Executions already running go on: stop
them with ``aws stepfunctions stop-execution`` if they must not.

Resume enables the rules, then replays the archive for [pause time - ``EDGE_SECONDS``, enable
time + settle] to those rules only (``StartReplay`` with ``Destination.FilterArns``:
https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_StartReplay.html). EventBridge
may archive an event some minutes after it arrived and recommends waiting 10 minutes before
replaying (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-archive.html), so on
AWS resume waits that long after the window ends (``--archive-delay``); the local mode
archives synchronously and waits for nothing. The window's edges overlap live delivery on
purpose: an event delivered live and replayed too starts a second execution that finds the
business key claimed and ends "Already handled", so each item is processed once. Resume
waits for the replay to complete, counts the executions it started (their input carries the
``replay-name`` field AWS adds to a replayed event) and, for each, whether it claimed its item
(new work) or found it claimed (a duplicate at the edge).

Both verbs write a lineage row (business key ``workflow:<workflow>``); on AWS DisableRule,
EnableRule and StartReplay are management events in CloudTrail
(https://docs.aws.amazon.com/eventbridge/latest/userguide/logging-using-cloudtrail.html). A deploy
that changes a paused workflow's rule sets its state back to what the template says
(ENABLED): pause again after such a deploy, or resume.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import click
from pydantic import BaseModel, ConfigDict

from aios.lineage import lineage_time
from infrastructure.ops import actions
from infrastructure.ops.lineage import plain, query
from infrastructure.ops.target import Target, emit, parse_iso, parse_time, render_table, target_options

PAUSED, RESUMED = "Paused by an operator", "Resumed by an operator"
#: Clock skew allowed between this machine and EventBridge at the window's start.
EDGE_SECONDS = 5.0
#: EventBridge's advice: replay no earlier than 10 minutes after the window (eb-archive.html).
AWS_ARCHIVE_DELAY_SECONDS = 600.0
#: After EnableRule: how long until the rule surely matches again (the window's end).
AWS_SETTLE_SECONDS = 30.0
#: How long the executions a replay started are given to claim their items.
CLAIM_TIMEOUT_SECONDS = 120.0


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Rule(_Model):
    name: str
    arn: str
    state: str


class Paused(_Model):
    workflow: str
    paused_at: datetime
    rules: tuple[Rule, ...]
    already: bool = False
    #: Rules found disabled with no pause recorded (by hand?): since when is unknown.
    disabled_before: tuple[str, ...] = ()


class ReplayedExecution(_Model):
    execution: str
    business_key: str | None
    outcome: str  # "new" | "duplicate" | "unclaimed"


class Resumed(_Model):
    workflow: str
    paused_at: datetime
    window_start: datetime
    window_end: datetime
    rules: tuple[Rule, ...]
    replay_name: str
    replay_state: str
    replayed: int
    new: int
    duplicates: int
    executions: tuple[ReplayedExecution, ...]


def open_pause(rows: Iterable[Mapping[str, Any]]) -> datetime | None:
    """The start of the pause still in force, from the workflow's operator rows (plain values):
    the latest pause with no resume after it."""
    latest = None
    for row in sorted(rows, key=lambda r: str(r.get("recorded_at", ""))):
        if row.get("action") == "pause":
            latest = latest or parse_iso(str(row.get("paused_at") or row["recorded_at"]))
        elif row.get("action") == "resume":
            latest = None
    return latest


def window(
    paused_at: datetime, enabled_at: datetime, *, settle: float, edge: float = EDGE_SECONDS
) -> tuple[datetime, datetime]:
    """The archive window a resume replays: the whole pause, widened at both edges."""
    return paused_at - timedelta(seconds=edge), enabled_at + timedelta(seconds=settle)


def classify(execution: str, holder: str | None) -> str:
    """A replayed execution did new work if it holds its item's claim; another holder means
    the item was handled already (a duplicate at the window's edge)."""
    if holder is None:
        return "unclaimed"
    return "new" if holder == execution else "duplicate"


def replay_name_of(workflow: str, at: datetime) -> str:
    """``StartReplay``'s name (<= 64 characters of ``[.-_A-Za-z0-9]``)."""
    return f"resume-{workflow}"[:44] + f"-{at:%Y%m%dT%H%M%S}"


def rules_of(target: Target, bus: str, machine_arn: str) -> list[Rule]:
    """The rules on ``bus`` whose target is the state machine or one of its aliases (a
    rollout's rule targets the alias)."""
    events = target.client("events")
    aliases = target.client("stepfunctions").list_state_machine_aliases(stateMachineArn=machine_arn)
    names: list[str] = []
    for arn in [machine_arn, *(a["stateMachineAliasArn"] for a in aliases.get("stateMachineAliases", []))]:
        token: str | None = None
        while True:
            page = events.list_rule_names_by_target(
                TargetArn=arn, EventBusName=bus, **({"NextToken": token} if token else {})
            )
            names += page.get("RuleNames", [])
            token = page.get("NextToken")
            if not token:
                break
    names = list(dict.fromkeys(names))
    found = []
    for name in names:
        described = events.describe_rule(Name=name, EventBusName=bus)
        found.append(Rule(name=name, arn=str(described["Arn"]), state=str(described["State"])))
    if not found:
        raise click.ClickException(f"no rule on {bus} starts {machine_arn} (the workflow has no trigger)")
    return found


def _context(target: Target, workflow: str) -> tuple[str, str, list[Rule]]:
    from infrastructure.platform import PLATFORM  # noqa: PLC0415 - the description's bus

    bus = target.name(PLATFORM.bus.name)
    machine = target.state_machine_arn(workflow)
    return bus, target.name(PLATFORM.bus.archive), rules_of(target, bus, machine)


def pause_workflow(target: Target, workflow: str) -> Paused:
    bus, _, rules = _context(target, workflow)
    rows = [plain(item) for item in query(target, actions.workflow_key(workflow))]
    since = open_pause(rows)
    if since is not None and all(rule.state == "DISABLED" for rule in rules):
        return Paused(workflow=workflow, paused_at=since, rules=tuple(rules), already=True)
    # The pause time is recorded before the rules are disabled: the window resume replays
    # must not start after the first event the rules stopped matching. A pause over an
    # earlier pause that was never resumed keeps the earlier start.
    at = since or actions.now()
    _record_action(target, workflow, PAUSED, paused_at=at, rules=rules)
    events = target.client("events")
    for rule in rules:
        events.disable_rule(Name=rule.name, EventBusName=bus)
    return Paused(
        workflow=workflow,
        paused_at=at,
        rules=tuple(rule.model_copy(update={"state": "DISABLED"}) for rule in rules),
        disabled_before=tuple(r.name for r in rules if r.state == "DISABLED") if since is None else (),
    )


def _replayed_executions(
    target: Target, machine: str, name: str, since: datetime, seen: dict[str, tuple[bool, str | None]]
) -> list[tuple[str, str | None]]:
    """(execution, business key) of every execution the replay ``name`` started; ``seen``
    keeps what earlier calls described (whether the replay's, its key), so each is described once."""
    sfn = target.client("stepfunctions")
    for execution in _newest_first(sfn, machine):
        if execution["startDate"] < since - timedelta(seconds=1):
            break  # ListExecutions lists the newest first: the rest started before the replay
        arn = str(execution["executionArn"])
        if arn in seen:
            continue
        event = json.loads(sfn.describe_execution(executionArn=arn).get("input") or "{}")
        if isinstance(event, dict) and event.get("replay-name") == name:
            detail = event.get("detail")
            key = detail.get("business_key") if isinstance(detail, dict) else None
            seen[arn] = (True, str(key) if key else None)
        else:
            seen[arn] = (False, None)
    return [(arn, key) for arn, (replayed, key) in seen.items() if replayed]


def _newest_first(sfn: Any, machine: str) -> Iterator[dict[str, Any]]:
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine):
        yield from page["executions"]


def _claims(
    target: Target, replayed: list[tuple[str, str | None]], timeout: float
) -> list[ReplayedExecution]:
    from infrastructure.ops.replay import claim_holder  # noqa: PLC0415 - one claim reader

    deadline = time.monotonic() + timeout
    pending = dict(replayed)
    done: dict[str, ReplayedExecution] = {}
    while pending:
        for execution, key in list(pending.items()):
            holder = claim_holder(target, key) if key else None
            outcome = classify(execution, holder)
            if outcome != "unclaimed" or time.monotonic() > deadline:
                done[execution] = ReplayedExecution(execution=execution, business_key=key, outcome=outcome)
                del pending[execution]
        if pending:
            time.sleep(0.5)
    return [done[execution] for execution, _ in replayed]


def resume_workflow(
    target: Target,
    workflow: str,
    *,
    since: datetime | None,
    archive_delay: float,
    settle: float,
    echo: Any = click.echo,
) -> Resumed:
    bus, archive, rules = _context(target, workflow)
    rows = [plain(item) for item in query(target, actions.workflow_key(workflow))]
    paused_at = since or open_pause(rows)
    if paused_at is None:
        if all(rule.state == "ENABLED" for rule in rules):
            raise click.ClickException(f"{workflow} is not paused")
        raise click.ClickException(
            f"{workflow}'s rules are disabled but no pause is recorded: give --since (when it stopped)"
        )
    events = target.client("events")
    for rule in rules:
        events.enable_rule(Name=rule.name, EventBusName=bus)
    enabled_at = actions.now()
    start, end = window(paused_at, enabled_at, settle=settle)
    ready = end + timedelta(seconds=archive_delay)
    if (wait := (ready - actions.now()).total_seconds()) > 0:
        echo(f"waiting {wait:.0f} s for the archive to hold the window (until {ready:%H:%M:%S}Z)", err=True)
        time.sleep(wait)
    name = replay_name_of(workflow, enabled_at)
    archive_arn = events.describe_archive(ArchiveName=archive)["ArchiveArn"]
    bus_arn = events.describe_event_bus(Name=bus)["Arn"]
    replay_started = actions.now()
    events.start_replay(
        ReplayName=name,
        Description=f"aios resume {workflow}: events that arrived while it was paused",
        EventSourceArn=archive_arn,
        EventStartTime=start,
        EventEndTime=end,
        Destination={"Arn": bus_arn, "FilterArns": [rule.arn for rule in rules]},
    )
    state = "STARTING"
    while state in ("STARTING", "RUNNING"):
        state = str(events.describe_replay(ReplayName=name)["State"])
        if state in ("STARTING", "RUNNING"):
            time.sleep(1)
    machine = target.state_machine_arn(workflow)
    # EventBridge starts the targets asynchronously: count until the number stops growing.
    replayed: list[tuple[str, str | None]] = []
    seen: dict[str, tuple[bool, str | None]] = {}
    stable_since = time.monotonic()
    while time.monotonic() - stable_since < max(2.0, settle):
        found = _replayed_executions(target, machine, name, replay_started, seen)
        if len(found) != len(replayed):
            replayed, stable_since = found, time.monotonic()
        time.sleep(0.5)
    executions = _claims(target, replayed, CLAIM_TIMEOUT_SECONDS)
    new = sum(1 for e in executions if e.outcome == "new")
    duplicates = sum(1 for e in executions if e.outcome == "duplicate")
    _record_action(
        target,
        workflow,
        RESUMED,
        paused_at=paused_at,
        rules=rules,
        replay_name=name,
        replayed=len(executions),
    )
    return Resumed(
        workflow=workflow,
        paused_at=paused_at,
        window_start=start,
        window_end=end,
        rules=tuple(rule.model_copy(update={"state": "ENABLED"}) for rule in rules),
        replay_name=name,
        replay_state=state,
        replayed=len(executions),
        new=new,
        duplicates=duplicates,
        executions=tuple(executions),
    )


def render_paused(result: Paused) -> str:
    rules = ", ".join(rule.name for rule in result.rules)
    if result.already:
        return f"{result.workflow} is already paused since {result.paused_at:%Y-%m-%d %H:%M:%S}Z ({rules})"
    lines = []
    if result.disabled_before:
        lines.append(
            f"WARNING: {', '.join(result.disabled_before)} was already disabled with no pause recorded: "
            "events since then are not in this pause's window; resume with --since WHEN to include them."
        )
    lines += [
        f"paused {result.workflow} at {result.paused_at:%Y-%m-%d %H:%M:%S}Z: rules {rules} disabled.",
        "Events keep arriving on the bus and in its archive; running executions go on.",
        f"aios resume {result.workflow} enables the rules and replays what arrived meanwhile.",
    ]
    return "\n".join(lines)


def render_resumed(result: Resumed) -> str:
    lines = [
        (
            f"resumed {result.workflow} (paused since {result.paused_at:%Y-%m-%d %H:%M:%S}Z): "
            f"{result.new} new, {result.duplicates} already handled, "
            f"{result.replayed} replayed by {result.replay_name} ({result.replay_state})"
        ),
        f"window {result.window_start:%H:%M:%S}Z - {result.window_end:%H:%M:%S}Z, rules "
        + ", ".join(rule.name for rule in result.rules),
    ]
    if result.executions:
        lines += [
            "",
            render_table(
                ["BUSINESS KEY", "OUTCOME", "EXECUTION"],
                [[e.business_key or "-", e.outcome, e.execution] for e in result.executions],
            ),
        ]
    return "\n".join(lines)


@click.command("pause")
@click.argument("workflow")
@target_options
def pause(workflow: str, stage: str | None, endpoint_url: str | None, as_json: bool) -> None:
    """Stop new executions of WORKFLOW: disable the rules that start it. What arrives
    meanwhile stays in the bus's archive; aios resume replays it. Recorded in lineage."""
    result = pause_workflow(Target.of(stage, endpoint_url), workflow)
    emit(result.model_dump(mode="json"), as_json=as_json, table=lambda: render_paused(result))


@click.command("resume")
@click.argument("workflow")
@click.option("--since", default=None, help="Replay from this time instead of the recorded pause.")
@click.option(
    "--archive-delay",
    type=float,
    default=None,
    help=f"Seconds to wait after the window before replaying (AWS {AWS_ARCHIVE_DELAY_SECONDS:.0f}, local 0).",
)
@click.option(
    "--settle",
    type=float,
    default=None,
    help=f"Seconds the window extends past EnableRule (AWS: {AWS_SETTLE_SECONDS:.0f}, local: 1).",
)
@target_options
def resume(  # noqa: PLR0917 - one parameter per option, as click passes them
    workflow: str,
    since: str | None,
    archive_delay: float | None,
    settle: float | None,
    stage: str | None,
    endpoint_url: str | None,
    as_json: bool,
) -> None:
    """Start WORKFLOW again: enable its rules, replay from the bus archive what arrived during
    the pause (to its rules only), and say how many executions that started, new and already
    handled. Recorded in lineage."""
    target = Target.of(stage, endpoint_url)
    local = endpoint_url is not None
    delay = AWS_ARCHIVE_DELAY_SECONDS if not local else 0.0
    result = resume_workflow(
        target,
        workflow,
        since=parse_time(since) if since else None,
        archive_delay=archive_delay if archive_delay is not None else delay,
        settle=settle if settle is not None else (1.0 if local else AWS_SETTLE_SECONDS),
    )
    emit(result.model_dump(mode="json"), as_json=as_json, table=lambda: render_resumed(result))


def _record_action(
    target: Target, workflow: str, state: str, *, paused_at: datetime, rules: Iterable[Rule], **facts: Any
) -> None:
    """The operator's pause or resume, as one lineage row on the workflow's operator key."""
    actions.record(
        target,
        pk=f"operator#{workflow}",
        business_key=actions.workflow_key(workflow),
        workflow=workflow,
        state=state,
        at=actions.now(),
        facts={
            "action": "pause" if state == PAUSED else "resume",
            "paused_at": lineage_time(paused_at),
            "operator": actions.operator(target),
            "rules": ",".join(rule.name for rule in rules),
            **facts,
        },
    )
