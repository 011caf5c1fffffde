"""Where a verb acts: a deployed stage on AWS, or the local mode, with the same calls.

Physical names follow ``DeploymentSettings.name`` (``aios-<stage>-<part>``); the local mode
deploys the same names with stage ``local`` (``infrastructure/local/deploy.py``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

LOCAL_STAGE = "local"
#: The alias a workflow's rules target (``infrastructure.constructs.workflows.LIVE_ALIAS``).
LIVE_ALIAS = "live"
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Target:
    """The stage and endpoint a verb uses, and a boto3 client per service, made once."""

    stage: str
    endpoint_url: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, stage: str | None, endpoint_url: str | None) -> Target:
        return cls(stage=stage or (LOCAL_STAGE if endpoint_url else "dev"), endpoint_url=endpoint_url)

    def name(self, part: str) -> str:
        return f"aios-{self.stage}-{part}"

    def client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3  # noqa: PLC0415 - boto3 is slow to import; --help needs none of it
            from botocore.config import Config  # noqa: PLC0415

            config = Config(
                retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30
            )
            options: dict[str, Any] = {"config": config}
            if self.endpoint_url:
                # The local mode accepts any credentials; AWS uses the caller's own.
                options |= {
                    "endpoint_url": self.endpoint_url,
                    "region_name": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
                    "aws_access_key_id": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
                    "aws_secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
                }
            self._clients[service] = boto3.client(service, **options)  # type: ignore[call-overload]
        return self._clients[service]

    def state_machine_arn(self, workflow: str) -> str:
        """The ARN of ``aios-<stage>-<workflow>`` (found by name, as the stacks name it)."""
        wanted = self.name(workflow)
        for page in self.client("stepfunctions").get_paginator("list_state_machines").paginate():
            for machine in page["stateMachines"]:
                if machine["name"] == wanted:
                    return str(machine["stateMachineArn"])
        raise click.ClickException(f"no state machine {wanted} (is stage {self.stage!r} deployed?)")

    def workflow_entry_arn(self, workflow: str) -> str:
        """What the workflow's rules start: its ``live`` alias where a rollout made one (CDK's
        ``Workflow`` and the local mode alike), else the state machine itself. An operator's
        new execution goes the same way, so a rollout's traffic shift and rollback apply to it."""
        machine = self.state_machine_arn(workflow)
        aliases = self.client("stepfunctions").list_state_machine_aliases(stateMachineArn=machine)
        for alias in aliases.get("stateMachineAliases", []):
            if str(alias["stateMachineAliasArn"]).endswith(f":{LIVE_ALIAS}"):
                return str(alias["stateMachineAliasArn"])
        return machine

    def queue_url(self, part: str) -> str:
        try:
            return str(self.client("sqs").get_queue_url(QueueName=self.name(part))["QueueUrl"])
        except Exception as error:  # botocore's QueueDoesNotExist is generated per client
            raise click.ClickException(f"no queue {self.name(part)}: {error}") from None


def target_options(function: F) -> F:
    """``--stage``, ``--endpoint-url`` and ``--json`` on a verb."""
    function = click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")(function)
    function = click.option(
        "--endpoint-url",
        envvar="AIOS_ENDPOINT_URL",
        default=None,
        help="AWS endpoint (the local mode's aws=... URL; implies --stage local).",
    )(function)
    return click.option(
        "--stage",
        envvar="AIOS_STAGE",
        default=None,
        help="Deployed stage whose resources to use (aios-<stage>-...); default dev, or local.",
    )(function)


def emit(data: Any, *, as_json: bool, table: Callable[[], str]) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str) if as_json else table())


def render_table(headers: list[str], rows: list[list[str]], *, right: frozenset[int] = frozenset()) -> str:
    """A plain text table: a header, a rule and one line per row; columns ``right`` right-aligned."""
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(cells)
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(row) for row in rows)])


def parse_time(value: str) -> datetime:
    """``2026-12-01T10:00:00Z`` / ``2026-12-01`` (UTC), or an age back from now: ``90m``, ``24h``, ``7d``."""
    units = {"m": 60, "h": 3600, "d": 86400}
    text = value.strip()
    if text[-1:] in units and text[:-1].isdigit():
        return _ago(int(text[:-1]) * units[text[-1]])
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _ago(seconds: int) -> datetime:
    return datetime.fromtimestamp(datetime.now(UTC).timestamp() - seconds, UTC)


def parse_iso(value: str) -> datetime:
    """Step Functions' ``EnteredTime`` (``...Z`` on AWS, ``...+00:00`` locally) as a UTC datetime."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def age(since: datetime, now: datetime) -> str:
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    return f"{seconds // 86400}d{(seconds % 86400) // 3600:02d}h"
