"""The ``aios`` command: run the platform locally and read workflow executions.

- ``aios local up``: moto, the bridges, the platform and its HTTP API in this process.
- ``aios executions list`` / ``aios executions show``: executions and their state-by-state
  history, on the local mode (``--endpoint-url``) or on AWS (plain credentials).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from datetime import datetime
from types import FrameType
from typing import Any

import click

from infrastructure.ops import register as register_ops

READY_LINE = "aios local ready api={api} aws={aws} iam={iam}"


@click.group()
def main() -> None:
    """aios: an AI operating system for software integration."""


@main.group()
def local() -> None:
    """The platform on an embedded AWS (moto), for development and end-to-end tests."""


@local.command("up")
@click.option("--api-port", type=int, default=8787, show_default=True, help="HTTP API port (0: a free port).")
@click.option(
    "--aws-port", type=int, default=4566, show_default=True, help="Embedded AWS port (0: a free port)."
)
@click.option(
    "--platform",
    "platform_ref",
    default=None,
    metavar="MODULE:ATTR",
    help="A Platform object to deploy instead of infrastructure.platform:PLATFORM.",
)
def local_up(api_port: int, aws_port: int, platform_ref: str | None) -> None:
    """Start the local platform; Ctrl-C or SIGTERM stops it.

    \b
    Settings (environment):
      AIOS_LOCAL_SECRET_<SOURCE>  signing secret of a source (else generated and printed)
      AIOS_LOCAL_FAULTS           faults to inject, JSON or a JSON file (also POST /_aios/faults)
      AIOS_LOCAL_TIME_SCALE       factor in (0, 1] on Wait states and Retry intervals
                                  (and on schedules' rate(...))
      AIOS_LOCAL_SCHEDULE_SECONDS seconds between runs of every scheduled function
                                  (else its rate, scaled; e.g. 2 for a gauge in tests)
      AIOS_LOCAL_IAM              enforce (default): each function's calls are checked
                                  against its synthesized role policy; off: not checked
    """
    from infrastructure.iam.local import iam_mode, policy_files  # noqa: PLC0415
    from infrastructure.local import runtime  # noqa: PLC0415 - moto is slow to import

    platform = runtime.load_platform(platform_ref)
    iam = iam_mode(os.environ)
    # The policies CDK synthesizes for this platform (cached under .aios/iam/ after the first synth).
    iam_files = policy_files(platform, platform_ref=platform_ref) if iam == "enforce" else None
    if iam_files:
        from infrastructure.iam import local as iam_local  # noqa: PLC0415
        from infrastructure.iam import states  # noqa: PLC0415 - patches moto's ASL interpreter

        # The state machines' service integrations run in this process: checked against their roles.
        states.install(iam_local.load_state_machine_policies(iam_files))
    secrets, generated = runtime.source_secrets(platform, os.environ)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    mode = runtime.start(
        platform,
        api_port=api_port,
        aws_port=aws_port,
        secrets=secrets,
        faults=runtime.faults_from_environ(os.environ),
        time_scale=runtime.time_scale_from_environ(os.environ),
        iam_policy_files=iam_files,
    )
    try:
        for source in generated:
            click.echo(f"secret source={source} value={secrets[source]}")
        click.echo(READY_LINE.format(api=mode.api_url, aws=mode.aws_url, iam=iam))
        sys.stdout.flush()
        while not stop.wait(0.5):
            if lost := mode.lost_services():
                # Its service's calls would all fail from now on: stop, and say why.
                for service in lost:
                    status = service.process.returncode
                    click.echo(
                        f"aios local: the {service.service} process exited ({status}); stopping", err=True
                    )
                raise SystemExit(1)
    finally:
        mode.stop()
    click.echo("aios local stopped")


# -- executions ---------------------------------------------------------------------------------


def _sfn(endpoint_url: str | None, service: str = "stepfunctions") -> Any:
    import boto3  # noqa: PLC0415

    if endpoint_url:
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=endpoint_url,
            region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        )
    return boto3.client(service)  # type: ignore[call-overload]


def _state_machines(sfn: Any, workflow: str | None) -> list[dict[str, Any]]:
    machines: list[dict[str, Any]] = []
    for page in sfn.get_paginator("list_state_machines").paginate():
        machines.extend(page["stateMachines"])
    if workflow:
        machines = [m for m in machines if m["name"] == workflow or m["name"].endswith(f"-{workflow}")]
    return machines


def _executions(sfn: Any, machine_arn: str, logs: Any) -> list[dict[str, Any]]:
    if sfn.describe_state_machine(stateMachineArn=machine_arn)["type"] == "EXPRESS":
        # AWS keeps no Express history (ListExecutions refuses them): the workflow's logs.
        from infrastructure.local import execution_logs  # noqa: PLC0415 - boto3 only, works on AWS

        group = execution_logs.log_group_of(sfn, machine_arn)
        if group is None:
            return []
        return execution_logs.executions(execution_logs.records(logs, group))
    executions: list[dict[str, Any]] = []
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine_arn):
        executions.extend(page["executions"])
    return executions


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if value else "-"


def _duration(start: datetime | None, stop: datetime | None) -> str:
    if not start or not stop:
        return "-"
    return f"{(stop - start).total_seconds() * 1000:.0f} ms"


endpoint_option = click.option(
    "--endpoint-url",
    envvar="AIOS_ENDPOINT_URL",
    default=None,
    help="AWS endpoint (the local mode's aws=... URL); unset: AWS itself with your credentials.",
)


@main.group()
def executions() -> None:
    """Workflow executions and their state-by-state history."""


@executions.command("list")
@click.option("--workflow", default=None, help="Only this workflow (intake, or aios-dev-intake).")
@endpoint_option
def executions_list(workflow: str | None, endpoint_url: str | None) -> None:
    """Executions, newest first."""
    sfn, logs = _sfn(endpoint_url), _sfn(endpoint_url, "logs")
    rows: list[tuple[str, dict[str, Any]]] = []
    for machine in _state_machines(sfn, workflow):
        rows.extend((machine["name"], e) for e in _executions(sfn, machine["stateMachineArn"], logs))
    rows.sort(key=lambda row: row[1]["startDate"], reverse=True)
    click.echo(f"{'WORKFLOW':<24} {'STATUS':<10} {'START':<23} {'DURATION':>10}  EXECUTION ARN")
    for name, e in rows:
        click.echo(
            f"{name:<24} {e['status']:<10} {_when(e['startDate']):<23} "
            f"{_duration(e['startDate'], e.get('stopDate')):>10}  {e['executionArn']}"
        )


@dataclass
class StateRow:
    """One state of an execution, as the Step Functions console shows it."""

    name: str
    type: str
    entered: datetime
    exited: datetime | None = None
    attempts: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    succeeded_attempt: bool = False

    @property
    def retries(self) -> int:
        return max(0, self.attempts - 1)

    @property
    def status(self) -> str:
        if self.errors and not self.succeeded_attempt:
            return "CAUGHT" if self.exited else "FAILED"
        if self.type == "Fail":
            return "FAILED"
        return "SUCCEEDED" if self.exited else "RUNNING"


_FAILURE_DETAILS = (
    "taskFailedEventDetails",
    "taskTimedOutEventDetails",
    "lambdaFunctionFailedEventDetails",
    "lambdaFunctionTimedOutEventDetails",
    "lambdaFunctionScheduleFailedEventDetails",
    "lambdaFunctionStartFailedEventDetails",
    "executionFailedEventDetails",
)


def state_rows(events: list[dict[str, Any]]) -> tuple[list[StateRow], tuple[str, str] | None]:
    """The states of an execution history, in order, and the execution's own failure."""
    rows: list[StateRow] = []
    current: StateRow | None = None
    failure: tuple[str, str] | None = None
    for event in events:
        kind: str = event["type"]
        if kind.endswith("StateEntered"):
            details = event["stateEnteredEventDetails"]
            current = StateRow(
                name=details["name"], type=kind.removesuffix("StateEntered"), entered=event["timestamp"]
            )
            rows.append(current)
        elif kind.endswith("StateExited") and current is not None:
            current.exited = event["timestamp"]
        elif kind in {"TaskScheduled", "LambdaFunctionScheduled"} and current is not None:
            current.attempts += 1
            current.succeeded_attempt = False
        elif kind in {"TaskSucceeded", "LambdaFunctionSucceeded"} and current is not None:
            current.succeeded_attempt = True
        for key in _FAILURE_DETAILS:
            if key in event:
                error = (event[key].get("error", ""), event[key].get("cause", ""))
                if key == "executionFailedEventDetails":
                    failure = error
                elif current is not None:
                    current.errors.append(error)
    return rows, failure


def _find_execution(sfn: Any, logs: Any, reference: str) -> str:
    if reference.startswith("arn:"):
        return reference
    for machine in _state_machines(sfn, None):
        for execution in _executions(sfn, machine["stateMachineArn"], logs):
            if execution["name"] == reference:
                return str(execution["executionArn"])
    raise click.ClickException(f"no execution named {reference}")


def _short(text: str, width: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@executions.command("show")
@click.argument("execution")
@endpoint_option
def executions_show(execution: str, endpoint_url: str | None) -> None:
    """The state-by-state history of EXECUTION (an ARN or an execution name)."""
    from infrastructure.local import execution_logs  # noqa: PLC0415 - boto3 only, works on AWS

    sfn, logs = _sfn(endpoint_url), _sfn(endpoint_url, "logs")
    arn = _find_execution(sfn, logs, execution)
    events: list[dict[str, Any]] = []
    if execution_logs.is_express(arn):
        # Express: DescribeExecution/GetExecutionHistory refuse it on AWS; its log records say it all.
        group = execution_logs.log_group_of(sfn, execution_logs.state_machine_arn_of(arn))
        found = execution_logs.records(logs, group, arn) if group else []
        if not found:
            raise click.ClickException(f"no execution log records of {arn}")
        (described,) = execution_logs.executions(found)
        events = execution_logs.history(found)
    else:
        described = sfn.describe_execution(executionArn=arn)
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
            events.extend(page["events"])
    rows, failure = state_rows(events)
    click.echo(f"execution  {arn}")
    click.echo(
        f"status     {described['status']}   started {_when(described['startDate'])}   "
        f"duration {_duration(described['startDate'], described.get('stopDate'))}"
    )
    click.echo("")
    click.echo(
        f"{'#':>3}  {'STATE':<34} {'TYPE':<8} {'STATUS':<10} {'START':<23} {'DURATION':>9} {'RETRIES':>7}"
    )
    for index, row in enumerate(rows, start=1):
        click.echo(
            f"{index:>3}  {_short(row.name, 34):<34} {row.type:<8} {row.status:<10} {_when(row.entered):<23} "
            f"{_duration(row.entered, row.exited):>9} {row.retries:>7}"
        )
        for error, cause in row.errors:
            click.echo(f"       error {error}: {_short(cause)}")
    if failure is not None:
        click.echo("")
        click.echo(f"failed     {failure[0]}: {_short(failure[1], 200)}")


# -- smoke ----------------------------------------------------------------------------------------


@main.command("smoke")
@click.option("--stage", default=None, help="A deployed stage: its platform stack's outputs say where.")
@click.option("--api-url", default=None, help="The HTTP API (with --endpoint-url: the local mode).")
@click.option(
    "--endpoint-url", default=None, help="The AWS endpoint (aios local up's aws= address); AWS if absent."
)
@click.option("--region", default=None, help="AWS region (default: the environment's).")
@click.option("--secrets-prefix", default="aios", show_default=True)
@click.option("--timeout", "timeout_seconds", type=float, default=60.0, show_default=True)
def smoke(  # noqa: PLR0917 - one parameter per option, as click passes them
    stage: str | None,
    api_url: str | None,
    endpoint_url: str | None,
    region: str | None,
    secrets_prefix: str,
    timeout_seconds: float,
) -> None:
    """One signed test webhook (pays nothing) through ingest, the bus, intake and lineage;
    then the dead-letter queue and the connector secrets. Exit 0 when every hop holds."""
    from infrastructure import smoke as check  # noqa: PLC0415

    if bool(stage) == bool(api_url) or (api_url and not endpoint_url):
        raise click.UsageError("give --stage, or --api-url with --endpoint-url (the local mode)")
    clients = check.Clients(endpoint_url=endpoint_url, region=region)
    try:
        target = (
            check.stage_target(stage, clients, secrets_prefix=secrets_prefix)
            if stage
            else check.local_target(str(api_url), secrets_prefix=secrets_prefix)
        )
    except Exception as error:
        click.echo(f"FAIL stack outputs: {type(error).__name__}: {error}")
        sys.exit(1)
    hops = check.SmokeCheck(target, clients, timeout_seconds=timeout_seconds, echo=click.echo).run()
    if failing := check.failed(hops):
        click.echo(f"smoke failed at: {', '.join(failing)}")
        sys.exit(1)
    click.echo("smoke passed")


# The operator's verbs (lineage, approvals, dlq, report): infrastructure/ops/, one module each.
register_ops(main)


if __name__ == "__main__":
    main()
