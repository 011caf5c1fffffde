"""Step Functions' execution status change events in the local mode, as AWS puts them.

AWS: when a Standard execution's status changes, Step Functions puts a "Step Functions
Execution Status Change" event (source ``aws.states``) on the account's default bus; its
``detail`` is what ``DescribeExecution`` answers: ``executionArn``, ``stateMachineArn`` (the
unqualified state machine), ``name``, ``status``, ``startDate``/``stopDate`` in epoch
milliseconds, ``input``/``output`` as JSON strings with ``inputDetails``/``outputDetails``,
``error`` and ``cause``. Express executions emit none
(https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html,
https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-states.html). moto 5.2.5 emits
nothing; ``StatusChangeCommunication`` (the worker's end-of-execution hook, which a redrive
uses too) puts the event of every execution that ends. Not emitted here: the ``RUNNING``
event of a start (no rule of the platform matches it).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from infrastructure.local import pin  # noqa: F401 - the moto version guard, before moto internals
from infrastructure.local.execution_logs import is_express, state_machine_arn_of

# isort: split
from moto.events.models import events_backends
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

LOG = logging.getLogger("aios.local")

SOURCE = "aws.states"
DETAIL_TYPE = "Step Functions Execution Status Change"
#: The bus AWS services put their events on.
DEFAULT_BUS = "default"


def _millis(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def status_change(execution: Any) -> dict[str, Any]:
    """The PutEvents entry AWS emits for ``execution`` (moto's parser execution) now."""
    arn = str(execution.exec_arn)
    status = str(execution.exec_status.value)
    detail = {
        "executionArn": arn,
        "stateMachineArn": state_machine_arn_of(arn),
        "name": execution.name,
        "status": status,
        "startDate": _millis(execution.start_date),
        "stopDate": _millis(execution.stop_date),
        "input": _json(execution.input_data),
        "inputDetails": {"included": True},
        "output": _json(execution.output) if status == "SUCCEEDED" else None,
        "outputDetails": {"included": True} if status == "SUCCEEDED" else None,
        "error": execution.error,
        "cause": execution.cause,
    }
    return {
        "Source": SOURCE,
        "DetailType": DETAIL_TYPE,
        "Resources": [arn],
        "Detail": json.dumps(detail),
        "EventBusName": DEFAULT_BUS,
    }


def emit(execution: Any) -> None:
    """Put the status change of a Standard execution that just ended on the default bus."""
    if is_express(str(execution.exec_arn)) or getattr(execution.state_machine, "type", None) == "EXPRESS":
        return
    try:
        backend = events_backends[execution.account_id][execution.region_name]
        backend.put_events([status_change(execution)])
    except Exception:  # AWS's delivery is best effort; an execution never fails for it
        LOG.warning("status change of %s not emitted", execution.exec_arn, exc_info=True)


class StatusChangeCommunication(BaseExecutionWorkerCommunication):
    """moto's end-of-execution callback (status, stop date, error), then the event."""

    def terminated(self) -> None:
        super().terminated()
        emit(self.execution)
