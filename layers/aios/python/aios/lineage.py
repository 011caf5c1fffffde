"""Lineage: one record per workflow step, answering "what produced this outcome?".

A workflow passes a ``lineage`` object (execution, state, entered time, business key) in the
payload of each Task; the function that does the step writes the record after it succeeded.
Records hold digests and references, never documents or personal data: ``input_digest`` and
``output_digest`` are sha256 over canonical JSON (the task token is never part of either),
plus the connector, model and human decision that produced the output.

Keys (platform description, table ``lineage``): ``pk`` = execution ARN, ``sk`` =
``<entered-at>#<state>`` so all steps of one execution sort in order and a retried step
overwrites its own record; GSI ``by-business-key`` gives an invoice's whole story.

Every time in lineage has one format, AWS's ``$$.State.EnteredTime`` format
``YYYY-MM-DDTHH:MM:SS.mmmZ`` (``lineage_time``), so keys sort and parse alike whoever wrote
them. A failed item's closing record keeps the error's name and its message, cut before any
payload (``failure``), never the input that caused it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from aios import clients
from aios.config import settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: The key of the payload that carries the step's ``LineageContext``.
LINEAGE_KEY = "lineage"
#: Never hashed, logged or stored: a callback task's token.
TASK_TOKEN_KEY = "task_token"  # noqa: S105 - the key of the token, not a token
#: Fields of a step's result that lineage keeps as they are (versions, references, decisions).
RESULT_FIELDS = (
    "connector",
    "connector_version",
    "model_endpoint",
    "model_variant",
    "model_version",
    "approver",
    "decision",
    "outcome",
    "error",
    "error_cause",
)
#: The longest error message lineage keeps.
MAX_CAUSE_CHARS = 240


def lineage_time(value: str | float | datetime) -> str:
    """``2019-03-26T20:14:13.192Z``: any ISO 8601 time (``Z`` or an offset, any precision) or
    epoch seconds, in UTC with milliseconds, as Step Functions writes ``EnteredTime``."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float):
        moment = datetime.fromtimestamp(value, UTC)
    else:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def failure(error: str | None, cause: str | None) -> tuple[str | None, str | None]:
    """The error name and a cause fit for lineage: a Lambda error's ``errorMessage`` (never its
    stack trace), cut before the first JSON payload an interpreter message may quote
    (``States.Runtime`` quotes the state input), at most ``MAX_CAUSE_CHARS``."""
    if not cause:
        return error, None
    message = cause
    try:
        parsed = json.loads(cause)
    except ValueError:
        parsed = None
    if isinstance(parsed, Mapping) and isinstance(parsed.get("errorMessage"), str):
        message = parsed["errorMessage"]
    elif isinstance(parsed, Mapping | list):
        message = ""
    for opening in ("{", "["):
        message = message.split(opening, 1)[0]
    message = " ".join(message.split())[:MAX_CAUSE_CHARS].rstrip(" '\"")
    return error, message or None


class LineageContext(BaseModel):
    """Where a step runs: set by the state machine from its context object."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    execution: Annotated[str, Field(min_length=1, max_length=2048)]
    state: Annotated[str, Field(min_length=1, max_length=80)]
    entered_at: Annotated[str, Field(min_length=1, max_length=64)]
    business_key: Annotated[str, Field(min_length=1, max_length=256)]
    workflow: Annotated[str, Field(min_length=1, max_length=80)]


#: A row written by a state machine's own ``dynamodb:putItem`` takes its step fields from the
#: context object, as ``build_record`` takes them from ``LineageContext``.
_ASL_STEP_FIELDS = {
    "pk": {"S.$": "$$.Execution.Id"},
    "sk": {"S.$": "States.Format('{}#{}', $$.State.EnteredTime, $$.State.Name)"},
    "recorded_at": {"S.$": "$$.State.EnteredTime"},
    "state": {"S.$": "$$.State.Name"},
}


class LineageRecord(BaseModel):
    """One lineage row, whoever writes it: a function (``build_record``) or a state machine's
    own ``dynamodb:putItem`` (``asl_item``, e.g. intake's receipt, which has no output)."""

    model_config = ConfigDict(frozen=True)

    pk: str
    sk: str
    business_key: str
    recorded_at: str
    workflow: str
    state: str
    input_digest: str
    output_digest: str | None = None
    connector: str | None = None
    connector_version: str | None = None
    model_endpoint: str | None = None
    model_variant: str | None = None
    model_version: str | None = None
    approver: str | None = None
    decision: str | None = None
    outcome: str | None = None
    error: str | None = None
    error_cause: str | None = None
    #: A webhook's receipt (intake): which delivery of which source, and its event.
    event_id: str | None = None
    source: str | None = None
    event_type: str | None = None
    delivery_id: str | None = None

    @classmethod
    def asl_item(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The ``Item`` of a ``dynamodb:putItem`` Task writing this record: the step's keys from
        the context object, and each field given, as ASL writes it (``name.$`` takes a path),
        a string attribute. Unknown or missing fields fail here, when the ASL is read."""
        item: dict[str, Any] = dict(_ASL_STEP_FIELDS)
        for key, value in fields.items():
            name, is_path = (key.removesuffix(".$"), key.endswith(".$"))
            if name not in cls.model_fields:
                raise ValueError(f"a lineage record has no field {name!r}")
            if name in item:
                raise ValueError(f"lineage field {name!r} comes from the context object; do not set it")
            if not isinstance(value, str):
                raise ValueError(f"lineage field {name!r} is a string or a path: {value!r}")
            item[name] = {"S.$": value} if is_path else {"S": value}
        missing = [
            name for name, field in cls.model_fields.items() if field.is_required() and name not in item
        ]
        if missing:
            raise ValueError(f"a lineage record needs {missing}")
        return item

    def item(self) -> dict[str, Any]:
        """The DynamoDB item (attribute values), without empty attributes."""
        return {name: {"S": value} for name, value in self.model_dump().items() if value is not None}


def digest(payload: Any) -> str:
    """``sha256:<hex>`` of canonical JSON; a task token is left out wherever it appears."""
    canonical = json.dumps(_without_token(payload), sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _without_token(payload: Any) -> Any:
    if isinstance(payload, Mapping):
        return {k: _without_token(v) for k, v in payload.items() if k != TASK_TOKEN_KEY}
    if isinstance(payload, list):
        return [_without_token(v) for v in payload]
    return payload


def split_context(event: Mapping[str, Any]) -> tuple[dict[str, Any], LineageContext | None]:
    """The event without its ``lineage`` key, and the context that key held (if any)."""
    request = {key: value for key, value in event.items() if key != LINEAGE_KEY}
    raw = event.get(LINEAGE_KEY)
    return request, LineageContext.model_validate(raw) if raw is not None else None


def build_record(
    context: LineageContext, request: Mapping[str, Any], result: Mapping[str, Any]
) -> LineageRecord:
    kept = {name: str(result[name]) for name in RESULT_FIELDS if result.get(name) is not None}
    entered_at = lineage_time(context.entered_at)
    return LineageRecord(
        pk=context.execution,
        sk=f"{entered_at}#{context.state}",
        business_key=context.business_key,
        recorded_at=entered_at,
        workflow=context.workflow,
        state=context.state,
        input_digest=digest(request),
        output_digest=digest(result),
        **kept,
    )


class LineageWriter:
    """Writes records to the lineage table (the only code that does)."""

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self.table_name = table_name
        self._client = client or clients.dynamodb()

    def write(self, record: LineageRecord) -> None:
        # A retried step entered at the same time overwrites its own record.
        self._client.put_item(TableName=self.table_name, Item=record.item())


@cache
def default_writer() -> LineageWriter:
    return LineageWriter(settings().require("lineage_table"))


def record_step(
    context: LineageContext | None,
    request: Mapping[str, Any],
    result: Mapping[str, Any],
    *,
    writer: LineageWriter | None = None,
) -> LineageRecord | None:
    """Write the step's record when the workflow asked for one (``context`` given)."""
    if context is None:
        return None
    record = build_record(context, request, result)
    (writer or default_writer()).write(record)
    return record
