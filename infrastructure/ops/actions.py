"""What the operator verbs share: who acts, the lineage rows they write, the claims they hand over.

An operator's action is recorded in the lineage table like a workflow's step (``aios lineage``
shows it): ``replay`` writes a row under the new execution naming the one it replays
(``replay_of``); ``redrive`` one under the redriven execution (``redrive_count``);
``pause``/``resume`` write rows under ``operator#<workflow>`` with business key
``workflow:<workflow>`` (``aios lineage workflow:accounts-payable`` lists them). On AWS the calls
themselves (StartExecution, DisableRule, EnableRule, StartReplay, RedriveExecution) are
management events that CloudTrail records with the caller's identity
(https://docs.aws.amazon.com/eventbridge/latest/userguide/logging-using-cloudtrail.html,
https://docs.aws.amazon.com/step-functions/latest/dg/procedure-cloud-trail.html).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aios.lineage import lineage_time
from infrastructure.ops.target import Target

#: The table that holds the accounts-payable workflow's claims (``aios.payables.FingerprintStore``).
CLAIM_TABLE = "approvals"
#: Lineage attributes an operator's rows add to a step's (shown by ``aios lineage``).
OPERATOR_FIELDS = (
    "action",
    "operator",
    "replay_of",
    "redrive_count",
    "paused_at",
    "replay_name",
    "replayed",
    "rules",
)


def claim_key(business_key: str) -> dict[str, dict[str, str]]:
    """The key of ``business_key``'s claim item (as ``FingerprintStore.claim`` writes it)."""
    return {"pk": {"S": f"claim#{business_key}"}}


def operator(target: Target) -> str:
    """Who is acting: the caller's ARN (STS), as CloudTrail will name them."""
    try:
        return str(target.client("sts").get_caller_identity()["Arn"])
    except Exception:
        return "unknown"


def now() -> datetime:
    return datetime.now(UTC)


def workflow_key(workflow: str) -> str:
    """The business key under which a workflow's operator actions are recorded."""
    return f"workflow:{workflow}"


def record(
    target: Target,
    *,
    pk: str,
    business_key: str,
    workflow: str,
    state: str,
    at: datetime,
    facts: Mapping[str, Any],
) -> dict[str, Any]:
    """Write one lineage row for an operator's action; the row (plain values) is returned."""
    recorded_at = lineage_time(at)
    row = {
        "pk": pk,
        "sk": f"{recorded_at}#{state}",
        "business_key": business_key,
        "recorded_at": recorded_at,
        "workflow": workflow,
        "state": state,
        **{name: str(value) for name, value in facts.items() if value is not None},
    }
    target.client("dynamodb").put_item(
        TableName=target.name("lineage"),
        Item={name: {"S": value} for name, value in row.items()},
        # A row is never overwritten: two operators acting in the same millisecond both show.
        ConditionExpression="attribute_not_exists(pk)",
    )
    return row


def execution_arn(machine_arn: str, name: str) -> str:
    """The ARN Step Functions gives a Standard execution named ``name``, whether it was started
    on the state machine or on one of its versions or aliases (``...:stateMachine:<m>:live``):
    an execution's ARN names the state machine, never the qualifier."""
    base = ":".join(machine_arn.split(":")[:7])
    return base.replace(":stateMachine:", ":execution:", 1) + f":{name}"
