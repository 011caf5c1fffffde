"""Express executions, read the way that works on AWS: from the state machine's CloudWatch Logs.

AWS keeps no history of Express executions (``ListExecutions``, ``DescribeExecution`` and
``GetExecutionHistory`` refuse them): Step Functions writes each history event that the
logging level selects to the log group of the state machine's ``loggingConfiguration``
(https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html), one JSON record per
event: ``id``, ``type``, ``details``, ``previous_event_id``, ``event_timestamp`` (epoch
milliseconds), ``execution_arn``. The platform logs every workflow at level ALL, and the
local mode writes the same records (``stepfunctions.ExecutionLogs``).

Only boto3 clients are used (no moto), so the CLI reads AWS and the local mode alike; the
harness and ``aios executions`` use this module.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

#: The terminal event type of an execution -> its status.
TERMINAL = {
    "ExecutionSucceeded": "SUCCEEDED",
    "ExecutionFailed": "FAILED",
    "ExecutionAborted": "ABORTED",
    "ExecutionTimedOut": "TIMED_OUT",
}


def is_express(execution_arn: str) -> bool:
    """``arn:aws:states:<region>:<account>:express:<machine>:<name>:<id>``."""
    parts = execution_arn.split(":")
    return len(parts) > 5 and parts[5] == "express"


def state_machine_arn_of(execution_arn: str) -> str:
    parts = execution_arn.split(":")
    return ":".join([*parts[:5], "stateMachine", parts[6]])


def log_group_of(sfn: Any, state_machine_arn: str) -> str | None:
    """The log group name of a state machine's logging configuration (``None``: not logged)."""
    configuration = (
        sfn.describe_state_machine(stateMachineArn=state_machine_arn).get("loggingConfiguration") or {}
    )
    if configuration.get("level", "OFF") == "OFF":
        return None
    for destination in configuration.get("destinations") or []:
        arn = (destination.get("cloudWatchLogsLogGroup") or {}).get("logGroupArn", "")
        if "log-group:" in arn:
            return str(arn.split("log-group:", maxsplit=1)[1].removesuffix(":*"))
    return None


def records(logs: Any, log_group: str, execution_arn: str | None = None) -> list[dict[str, Any]]:
    """Every execution log record of ``log_group`` (of one execution), oldest first."""
    kwargs: dict[str, Any] = {"logGroupName": log_group}
    if execution_arn:
        kwargs["filterPattern"] = f'"{execution_arn}"'  # a quoted term: the exact ARN
    found: list[dict[str, Any]] = []
    for page in logs.get_paginator("filter_log_events").paginate(**kwargs):
        for event in page["events"]:
            try:
                record = json.loads(event["message"])
            except ValueError:
                continue
            wanted = isinstance(record, dict) and "execution_arn" in record
            if wanted and execution_arn in {None, record["execution_arn"]}:
                found.append(record)
    found.sort(key=lambda r: (r["execution_arn"], int(r["event_timestamp"]), int(r["id"])))
    return found


def _details_key(event_type: str) -> str:
    """The ``GetExecutionHistory`` field that carries an event type's details."""
    for suffix, key in (
        ("StateEntered", "stateEnteredEventDetails"),
        ("StateExited", "stateExitedEventDetails"),
    ):
        if event_type.endswith(suffix):
            return key
    return event_type[0].lower() + event_type[1:] + "EventDetails"


def _moment(record: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(int(record["event_timestamp"]) / 1000, UTC)


def history(records_of_one: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An execution's log records in ``GetExecutionHistory``'s event shape."""
    events = []
    for record in records_of_one:
        event: dict[str, Any] = {
            "id": int(record["id"]),
            "previousEventId": int(record.get("previous_event_id") or 0),
            "type": record["type"],
            "timestamp": _moment(record),
        }
        if record.get("details"):
            event[_details_key(str(record["type"]))] = record["details"]
        events.append(event)
    return events


def executions(all_records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``ListExecutions``-shaped items (newest first) from a log group's records."""
    by_arn: dict[str, list[dict[str, Any]]] = {}
    for record in all_records:
        by_arn.setdefault(str(record["execution_arn"]), []).append(record)
    items = []
    for arn, group in by_arn.items():
        terminal = next((r for r in group if r["type"] in TERMINAL), None)
        item: dict[str, Any] = {
            "executionArn": arn,
            "stateMachineArn": state_machine_arn_of(arn),
            "name": arn.split(":")[7] if len(arn.split(":")) > 7 else arn.rsplit(":", 1)[-1],
            "status": TERMINAL[terminal["type"]] if terminal else "RUNNING",
            "startDate": _moment(group[0]),
        }
        if terminal:
            item["stopDate"] = _moment(terminal)
        items.append(item)
    return sorted(items, key=lambda i: i["startDate"], reverse=True)
