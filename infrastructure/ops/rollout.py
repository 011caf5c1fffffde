"""``aios rollout status | promote | rollback WORKFLOW``: which version serves which share.

Every deploy publishes a state machine version and the alias ``live`` (what the workflow's
rule starts) shifts to it by the stage's deployment preference, rolling back on the
workflow's SLO alarms (constructs/workflows.py). ``status`` shows the alias's routing
(one or two versions and their weights), the versions with their descriptions (the
definition digest of the deploy), and the alarms that watch a rollout with their state.
``promote`` sends all traffic to a version (by default the newest one the alias routes to),
``rollback`` to the previous one (by default the other version the alias routes to, or the
version published before the one it serves). Executions already running keep their version
(https://docs.aws.amazon.com/step-functions/latest/dg/execution-alias-version-associate.html).

On AWS the alias belongs to CloudFormation: a manual promote or rollback is a way out, not a
deploy. While CloudFormation shifts traffic, a manual change races it; afterwards, the next
deploy sets the alias to what the template says again (so roll back with a deploy of the
previous code once the emergency is over). Both write a ``UpdateStateMachineAlias``
management event to CloudTrail.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import click
from pydantic import BaseModel, ConfigDict

from infrastructure.ops.target import Target, emit, render_table, target_options

ALIAS = "live"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Route(_Model):
    version: int
    arn: str
    weight: int


class Version(_Model):
    version: int
    arn: str
    description: str | None = None
    created: datetime | None = None


class Alarm(_Model):
    name: str
    state: str
    reason: str | None = None


class Rollout(_Model):
    workflow: str
    alias_arn: str
    routes: tuple[Route, ...]
    versions: tuple[Version, ...]
    alarms: tuple[Alarm, ...]

    @property
    def serving(self) -> int:
        """The version with the largest share (the newest on a tie)."""
        return max(self.routes, key=lambda r: (r.weight, r.version)).version


def version_number(arn: str) -> int:
    return int(arn.rsplit(":", 1)[1])


def routes_of(alias: Mapping[str, Any]) -> tuple[Route, ...]:
    return tuple(
        sorted(
            (
                Route(
                    version=version_number(r["stateMachineVersionArn"]),
                    arn=r["stateMachineVersionArn"],
                    weight=int(r["weight"]),
                )
                for r in alias.get("routingConfiguration", [])
            ),
            key=lambda r: r.version,
        )
    )


def promote_target(rollout: Rollout, version: int | None) -> int:
    """The version ``promote`` sends everything to: the one asked for, else the newest routed."""
    if version is not None:
        return _known(rollout, version)
    return max(r.version for r in rollout.routes)


def rollback_target(rollout: Rollout, version: int | None) -> int:
    """The version ``rollback`` returns to: the one asked for; else, mid-rollout, the older of
    the two routed versions; else the newest published version before the one served."""
    if version is not None:
        return _known(rollout, version)
    routed = sorted(r.version for r in rollout.routes)
    if len(routed) == 2:
        return routed[0]
    older = [v.version for v in rollout.versions if v.version < routed[0]]
    if not older:
        raise click.ClickException(
            f"{rollout.workflow}: version {routed[0]} is the first; nothing to roll back to"
        )
    return max(older)


def _known(rollout: Rollout, version: int) -> int:
    if version not in {v.version for v in rollout.versions}:
        published = ", ".join(str(v.version) for v in rollout.versions) or "none"
        raise click.ClickException(f"{rollout.workflow} has no version {version} (published: {published})")
    return version


def read(target: Target, workflow: str) -> Rollout:
    sfn = target.client("stepfunctions")
    machine = target.state_machine_arn(workflow)
    alias_arn = f"{machine}:{ALIAS}"
    try:
        alias = sfn.describe_state_machine_alias(stateMachineAliasArn=alias_arn)
    except sfn.exceptions.ResourceNotFound:
        raise click.ClickException(f"{workflow} has no alias {ALIAS!r} (deployed before versions?)") from None
    versions = []
    for item in sfn.list_state_machine_versions(stateMachineArn=machine).get("stateMachineVersions", []):
        described = sfn.describe_state_machine(stateMachineArn=item["stateMachineVersionArn"])
        versions.append(
            Version(
                version=version_number(item["stateMachineVersionArn"]),
                arn=item["stateMachineVersionArn"],
                description=described.get("description"),
                created=item.get("creationDate"),
            )
        )
    return Rollout(
        workflow=workflow,
        alias_arn=alias_arn,
        routes=routes_of(alias),
        versions=tuple(sorted(versions, key=lambda v: v.version)),
        alarms=tuple(_alarms(target, workflow)),
    )


def _alarms(target: Target, workflow: str) -> list[Alarm]:
    """The workflow's SLO alarms (``aios-<stage>-slo-<workflow>-...``): what a rollout rolls
    back on (PlatformMonitoring.workflow_alarms names them so)."""
    pages = (
        target.client("cloudwatch")
        .get_paginator("describe_alarms")
        .paginate(AlarmNamePrefix=target.name(f"slo-{workflow}-"), AlarmTypes=["MetricAlarm"])
    )
    return [
        Alarm(name=a["AlarmName"], state=a["StateValue"], reason=a.get("StateReason"))
        for page in pages
        for a in page.get("MetricAlarms", [])
    ]


def shift(target: Target, rollout: Rollout, version: int) -> Rollout:
    """All traffic of the alias to ``version``."""
    arn = next(v.arn for v in rollout.versions if v.version == version)
    target.client("stepfunctions").update_state_machine_alias(
        stateMachineAliasArn=rollout.alias_arn,
        routingConfiguration=[{"stateMachineVersionArn": arn, "weight": 100}],
    )
    return read(target, rollout.workflow)


def table(rollout: Rollout) -> str:
    routes = {r.version: r.weight for r in rollout.routes}
    rows = [
        [
            str(v.version),
            f"{routes.get(v.version, 0)}%",
            "serving" if v.version == rollout.serving else "",
            v.description or "",
        ]
        for v in reversed(rollout.versions)
    ]
    lines = [
        f"{rollout.workflow}  alias {rollout.alias_arn}",
        render_table(["version", "share", "", "description"], rows, right=frozenset({0, 1})),
    ]
    if rollout.alarms:
        lines.append(render_table(["alarm", "state"], [[a.name, a.state] for a in rollout.alarms]))
    else:
        lines.append("no rollback alarms found (the local mode creates none)")
    return "\n\n".join(lines)


@click.group()
def rollout() -> None:
    """Workflow versions behind the ``live`` alias: shares, alarms, promote, rollback."""


@rollout.command()
@click.argument("workflow")
@target_options
def status(workflow: str, stage: str | None, endpoint_url: str | None, as_json: bool) -> None:
    """Which version serves which share of new executions, and the alarms that watch it."""
    found = read(Target.of(stage, endpoint_url), workflow)
    emit(
        found.model_dump(mode="json") | {"serving": found.serving},
        as_json=as_json,
        table=lambda: table(found),
    )


@rollout.command()
@click.argument("workflow")
@click.option(
    "--version", "version", type=int, default=None, help="Version to promote (default: the newest routed)."
)
@target_options
def promote(
    workflow: str, version: int | None, stage: str | None, endpoint_url: str | None, as_json: bool
) -> None:
    """Send every new execution to a version now (ends a canary early)."""
    target = Target.of(stage, endpoint_url)
    current = read(target, workflow)
    after = shift(target, current, promote_target(current, version))
    emit(
        after.model_dump(mode="json") | {"serving": after.serving},
        as_json=as_json,
        table=lambda: table(after),
    )


@rollout.command()
@click.argument("workflow")
@click.option(
    "--version", "version", type=int, default=None, help="Version to return to (default: the previous)."
)
@target_options
def rollback(
    workflow: str, version: int | None, stage: str | None, endpoint_url: str | None, as_json: bool
) -> None:
    """Send every new execution back to the previous version; running ones keep theirs."""
    target = Target.of(stage, endpoint_url)
    current = read(target, workflow)
    after = shift(target, current, rollback_target(current, version))
    emit(
        after.model_dump(mode="json") | {"serving": after.serving},
        as_json=as_json,
        table=lambda: table(after),
    )
