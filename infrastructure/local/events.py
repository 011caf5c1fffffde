"""EventBridge of the local mode: rule targets that moto cannot deliver, delivered as AWS does.

Written for exactly moto 5.2.5, where ``Rule.send_to_targets`` raises ``NotImplementedError``
for Step Functions and Lambda targets and ignores the rule's ``State``. The bridge:

- delivers nothing for a rule whose ``State`` is not ``ENABLED`` (AWS: a disabled rule does
  not match events: https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_DisableRule.html);
- hands Step Functions and Lambda targets their input on worker threads (EventBridge
  delivers asynchronously), retrying as the target's ``RetryPolicy`` says (delays scaled by
  ``AIOS_LOCAL_TIME_SCALE``) and sending what still fails to the target's
  ``DeadLetterConfig`` queue with the attributes AWS sets (``ERROR_CODE``, ``ERROR_MESSAGE``,
  ``RULE_ARN``, ``TARGET_ARN``): nothing accepted is lost;
- leaves every other target type to moto;
- replays an archive as AWS does (moto replayed every archived event to every rule of the
  bus): only events whose ``time`` lies in [``EventStartTime``, ``EventEndTime``], only to
  the rules ``Destination.FilterArns`` names (every rule when absent), through the same
  delivery as live events, each with the ``replay-name`` field AWS adds
  (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_StartReplay.html,
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-archive.html).

And where moto is slow for no reason of AWS's (issue 11): an event's archive copy goes
straight to the archive (moto rendered its whole input template around the event to read the
archive's name), and a Step Functions target is started with ``moto_server.json_call`` (the
request botocore would send, without building and signing it). The JSONPath expressions of
input templates are parsed once, with the interpreter's (``stepfunctions``, item 9).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from infrastructure.local import pin  # noqa: F401 - the moto version guard, before moto internals
from infrastructure.local.moto_server import answer_in_process, fresh_uuid, json_call
from infrastructure.local.timescale import TimeScale

# isort: split
from moto.events.models import EventPattern, Replay, ReplayState, Rule, events_backends
from moto.events.utils import EventTemplateParser
from moto.utilities.arns import parse_arn

LOG = logging.getLogger("aios.local")

_deliveries = ThreadPoolExecutor(max_workers=8, thread_name_prefix="aios-local-delivery")
_aws_endpoint: str | None = None
_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()
#: Target retry: 1 s doubling to 60 s (scaled), as long as RetryPolicy allows.
_RETRY_BASE_SECONDS, _RETRY_MAX_SECONDS = 1.0, 60.0
#: Client errors EventBridge does not retry (the target is missing or refuses the call).
_NOT_RETRIED = {
    "ResourceNotFoundException",
    "StateMachineDoesNotExist",
    "StateMachineDeleting",
    "InvalidArn",
    "InvalidExecutionInput",
    "AccessDeniedException",
    "ValidationException",
}


def client(service: str) -> Any:
    """A boto3 client of the embedded AWS (no client-side retries: the bridge retries),
    answered by the moto of this process without a round trip over HTTP."""
    with _clients_lock:
        if service not in _clients:
            _clients[service] = answer_in_process(
                boto3.client(
                    service,  # type: ignore[call-overload]
                    region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",  # noqa: S106 - moto accepts any
                    config=Config(retries={"total_max_attempts": 1}),
                )
            )
        return _clients[service]


class DeliveryFailed(Exception):
    def __init__(self, code: str, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.code = code
        self.retry = retry


def _deliver(target: Mapping[str, Any], event: Mapping[str, Any]) -> None:
    """One attempt to hand ``event`` to a Step Functions or Lambda target."""
    arn = str(target["Arn"])
    service = parse_arn(arn).service
    payload = json.dumps(event)
    try:
        if service == "states":
            # EventBridge names the execution itself (moto would name it "None").
            json_call(
                "stepfunctions",
                "StartExecution",
                {"stateMachineArn": arn, "name": str(fresh_uuid()), "input": payload},
                region=parse_arn(arn).region,
            )
        elif service == "lambda":
            client("lambda").invoke(FunctionName=arn, InvocationType="Event", Payload=payload.encode())
        else:  # pragma: no cover - filtered by the caller
            raise DeliveryFailed("NotSupported", f"target {arn} is not supported", retry=False)
    except ClientError as error:
        code = error.response["Error"]["Code"]
        status = error.response["ResponseMetadata"].get("HTTPStatusCode", 500)
        retry = code not in _NOT_RETRIED and (status >= 500 or status == 429 or "Throttl" in code)
        raise DeliveryFailed(code, str(error), retry=retry) from None
    except BotoCoreError as error:
        raise DeliveryFailed("ConnectionError", str(error), retry=True) from None


def deliver_with_retries(rule_arn: str, target: Mapping[str, Any], event: Mapping[str, Any]) -> None:
    """Deliver as EventBridge does: retry per ``RetryPolicy`` (delays scaled), then the DLQ."""
    policy = target.get("RetryPolicy") or {}
    max_attempts = int(policy.get("MaximumRetryAttempts", 185))
    max_age = float(policy.get("MaximumEventAgeInSeconds", 86400)) * TimeScale.value
    started = time.monotonic()
    attempt = 0
    while True:
        try:
            _deliver(target, event)
            return
        except DeliveryFailed as failure:
            exhausted = attempt >= max_attempts or time.monotonic() - started >= max_age
            if not failure.retry or exhausted:
                _dead_letter(rule_arn, target, event, failure, attempt, exhausted=exhausted)
                return
        TimeScale.sleep(min(_RETRY_BASE_SECONDS * 2**attempt, _RETRY_MAX_SECONDS))
        attempt += 1


def _dead_letter(
    rule_arn: str,
    target: Mapping[str, Any],
    event: Mapping[str, Any],
    failure: DeliveryFailed,
    retries: int,
    *,
    exhausted: bool,
) -> None:
    dlq_arn = (target.get("DeadLetterConfig") or {}).get("Arn")
    if not dlq_arn:
        LOG.error("event %s to %s lost: no dead-letter queue (%s)", event.get("id"), target["Arn"], failure)
        return
    sqs = client("sqs")
    queue_url = sqs.get_queue_url(QueueName=parse_arn(dlq_arn).resource_id)["QueueUrl"]

    def attribute(value: str) -> dict[str, str]:
        return {"DataType": "String", "StringValue": value}

    attributes = {
        "RULE_ARN": attribute(rule_arn),
        "TARGET_ARN": attribute(str(target["Arn"])),
        "ERROR_CODE": attribute(failure.code),
        "ERROR_MESSAGE": attribute(str(failure)[:1000]),
    }
    if exhausted:
        attributes["EXHAUSTED_RETRY_CONDITION"] = attribute("MaximumRetryAttempts")
    attributes["RETRY_ATTEMPTS"] = {"DataType": "Number", "StringValue": str(retries)}
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(event), MessageAttributes=attributes)


def target_input(target: Mapping[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """The input a target receives: the event, ``Input`` or ``InputTransformer``."""
    if "Input" in target:
        value: Any = json.loads(target["Input"])
        return value if isinstance(value, dict) else {"value": value}
    if "InputTransformer" in target:
        transformer = target["InputTransformer"]
        value = EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=event,  # type: ignore[arg-type]
        )
        return value if isinstance(value, dict) else {"value": value}
    return event


def as_aws_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """moto's internal event message as AWS delivers it (ISO time, no moto-only keys)."""
    message = {k: v for k, v in event.items() if k != "ingestion-time"}
    stamp = message.get("time")
    if isinstance(stamp, int | float):
        message["time"] = datetime.fromtimestamp(float(stamp), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return message


_ORIGINAL_SEND_TO_TARGETS = Rule.send_to_targets
#: The target moto gives an archive's rule: ``arn:aws:events:<region>:::`` with the archive in
#: its input template (``"archive-arn": "<archive ARN>:<uuid>"``).
_ARCHIVE_ARN = re.compile(r'"archive-arn": "([^"]+)"')


def _archive_of(target: Mapping[str, Any]) -> str | None:
    """``<name>:<uuid>`` of the archive an archive rule's target feeds; ``None`` for any other
    target. moto found it by rendering its whole input template around the event (eight
    JSONPath lookups and a JSON round trip of the event per event), to read this one literal."""
    arn = parse_arn(str(target["Arn"]))
    if arn.service != "events" or arn.resource_type:
        return None
    match = _ARCHIVE_ARN.search(str((target.get("InputTransformer") or {}).get("InputTemplate", "")))
    return parse_arn(match[1]).resource_id if match else None


def _patched_send_to_targets(self: Rule, original_event: Any, transform_input: bool = True) -> None:
    """``Rule.send_to_targets``: nothing for a disabled rule; Step Functions and Lambda
    targets by the bridge, every other target type by moto as before. A scheduled rule
    matches no event (moto's empty pattern would match all): local/schedules.py runs it."""
    if (
        self.scheduled_expression
        or self.state != "ENABLED"
        or not self.event_pattern.matches_event(original_event)
    ):
        return
    ours = [t for t in self.targets if parse_arn(t["Arn"]).service in {"states", "lambda"}]
    others = []
    for target in self.targets:
        if target in ours:
            continue
        archive = _archive_of(target)
        if archive is not None:
            self._send_to_events_archive(archive, original_event)
        else:
            others.append(target)
    if others:
        rest = copy.copy(self)
        rest.targets = others
        _ORIGINAL_SEND_TO_TARGETS(rest, original_event, transform_input)
    event = as_aws_event(original_event)
    for target in ours:
        delivered = target_input(target, event) if transform_input else event
        _deliveries.submit(deliver_with_retries, self.arn, target, delivered)


_ORIGINAL_REPLAY_EVENTS = Replay.replay_events


def _epoch(value: Any) -> float:
    """An event's or a replay's time (moto keeps epoch seconds; AWS writes ISO 8601) in seconds."""
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def _patched_replay_events(self: Replay, archive: Any) -> None:
    """``StartReplay``: the archived events of the window, to the rules of ``FilterArns``."""
    bus = events_backends[self.account_id][self.region].describe_event_bus(
        self.destination["Arn"].split("/")[-1]
    )
    only = set(self.destination.get("FilterArns") or ())
    start, end = _epoch(self.event_start_time), _epoch(self.event_end_time)
    for archived in list(archive.events):
        if not start <= _epoch(archived.get("time", 0)) <= end:
            continue
        event = dict(archived, id=str(uuid.uuid4()), **{"replay-name": self.name})
        for rule in list(bus.rules.values()):
            if not only or rule.arn in only:
                rule.send_to_targets(event)  # type: ignore[arg-type]
    self.state = ReplayState.COMPLETED
    self.end_time = time.time()


def matches(pattern_json: str, event: Mapping[str, Any]) -> bool:
    """Whether an event matches a pattern, by moto's own matcher (``test_event_pattern`` is a stub)."""
    return bool(EventPattern.load(pattern_json).matches_event(dict(event)))  # type: ignore[arg-type]


def install(aws_endpoint: str) -> None:
    global _aws_endpoint  # noqa: PLW0603 - the patched moto method is module-level
    _aws_endpoint = aws_endpoint
    with _clients_lock:
        _clients.clear()
    Rule.send_to_targets = _patched_send_to_targets  # type: ignore[method-assign]
    Replay.replay_events = _patched_replay_events  # type: ignore[method-assign]


def uninstall() -> None:
    Rule.send_to_targets = _ORIGINAL_SEND_TO_TARGETS  # type: ignore[method-assign]
    Replay.replay_events = _ORIGINAL_REPLAY_EVENTS  # type: ignore[method-assign]
