"""``aios smoke``: the post-deploy check, one signed test webhook followed through every hop.

It sends a Standard Webhooks delivery of type ``aios.smoke`` (not ``invoice.*``: intake
records it in lineage and ends, so nothing is fetched, approved or paid), then checks, in
order, each hop a real delivery takes, with the time each took:

1. ``signing secret``: the ``standard`` source's signing secret reads from Secrets Manager;
2. ``ingest``: ``POST /webhooks/standard`` answers 202 with an event id;
3. ``bus -> intake``: intake, started by the bus rule, wrote the delivery's lineage row;
4. ``lineage``: that row names the event ingest returned and the digest of the body sent;
5. ``dead letters``: the platform's dead-letter queue is empty;
6. ``connector secrets``: every connector's credentials secret holds settings, not the
   placeholder the deploy created (``PLACEHOLDER_BASE_URL``).

Targets: a deployed stage (``--stage dev``: the API URL, table and queue come from the
platform stack's outputs, credentials from the environment) or the local mode
(``--api-url`` and ``--endpoint-url``: ``aios local up``'s two addresses). The exit status is
0 when every hop holds, 1 otherwise, and the failing hop is named. AWS clients are
injectable (``Clients``) for tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aios.secrets import PLACEHOLDER_BASE_URL, connector_secret_name, webhook_secret_name
from aios.webhooks.schemes import standard_key

SMOKE_EVENT_TYPE = "aios.smoke"
SOURCE = "standard"
LOCAL_STAGE = "local"
LINEAGE_INDEX = "by-business-key"


class HopFailed(Exception):
    """A hop did not hold; the message says what was seen."""


@dataclass(frozen=True)
class Target:
    """Where the deployment is and what its parts are called."""

    api_url: str
    lineage_table: str
    dead_letter_queue_url: str
    secrets_prefix: str
    connectors: tuple[str, ...]


@dataclass
class Clients:
    """The AWS clients the check uses (boto3 ones by default, on ``endpoint_url`` if given)."""

    endpoint_url: str | None = None
    region: str | None = None
    _made: dict[str, Any] = field(default_factory=dict)

    def __call__(self, service: str) -> Any:
        if service not in self._made:
            import boto3  # noqa: PLC0415 - only when the check runs

            options: dict[str, Any] = {}
            if self.endpoint_url:
                options = {
                    "endpoint_url": self.endpoint_url,
                    "region_name": self.region or "us-east-1",
                    "aws_access_key_id": "testing",
                    "aws_secret_access_key": "testing",
                }
            elif self.region:
                options = {"region_name": self.region}
            self._made[service] = boto3.client(service, **options)  # type: ignore[call-overload]
        return self._made[service]


@dataclass(frozen=True)
class Hop:
    name: str
    ok: bool
    seconds: float
    detail: str


def connectors_of_platform() -> tuple[str, ...]:
    """The connectors whose credentials the deployed platform's functions read."""
    from infrastructure.platform import PLATFORM  # noqa: PLC0415

    return tuple(sorted({f.credentials for f in PLATFORM.functions if f.credentials}))


def local_target(api_url: str, *, secrets_prefix: str = "aios") -> Target:
    """The local mode's names (``aios-local-<part>``), as ``aios local up`` deploys them."""
    from infrastructure.local.deploy import LocalNames  # noqa: PLC0415

    names = LocalNames()
    return Target(
        api_url=api_url.rstrip("/"),
        lineage_table=names.table("lineage"),
        dead_letter_queue_url=f"queue:{names.name('dead-letters')}",
        secrets_prefix=secrets_prefix,
        connectors=connectors_of_platform(),
    )


def stage_target(stage: str, clients: Clients, *, secrets_prefix: str = "aios") -> Target:
    """A deployed stage, from the outputs of its platform stack (``aios-<stage>-platform``)."""
    stack = f"aios-{stage}-platform"
    described = clients("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    missing = {"ApiUrl", "LineageTableName", "DeadLetterQueueUrl"} - set(outputs)
    if missing:
        raise HopFailed(f"stack {stack} lacks outputs {sorted(missing)}: redeploy it")
    return Target(
        api_url=outputs["ApiUrl"].rstrip("/"),
        lineage_table=outputs["LineageTableName"],
        dead_letter_queue_url=outputs["DeadLetterQueueUrl"],
        secrets_prefix=secrets_prefix,
        connectors=connectors_of_platform(),
    )


def sign_standard(key: bytes, body: bytes, *, message_id: str, timestamp: int) -> dict[str, str]:
    """Standard Webhooks headers (https://www.standardwebhooks.com/) for ``body``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{signature}",
    }


Post = Callable[[str, bytes, dict[str, str]], tuple[int, bytes]]


def http_post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    if not url.startswith(("https://", "http://")):
        raise HopFailed(f"not an HTTP URL: {url}")
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 - checked above
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class SmokeCheck:
    """Runs the hops in order; the first that fails ends the walk along the delivery's path
    (the later path hops could only fail after it), the two independent checks still run."""

    def __init__(
        self,
        target: Target,
        clients: Clients,
        *,
        timeout_seconds: float = 60.0,
        post: Post = http_post,
        echo: Callable[[str], None] = print,
    ) -> None:
        self.target = target
        self.clients = clients
        self.timeout = timeout_seconds
        self.post = post
        self.echo = echo
        self.delivery_id = f"msg_smoke_{uuid.uuid4().hex}"
        self.body = json.dumps(
            {
                "type": SMOKE_EVENT_TYPE,
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "data": {"check": "aios smoke", "pays": "nothing"},
            }
        ).encode()
        self._key = b""
        self._event_id = ""
        self._row: dict[str, Any] = {}

    @property
    def business_key(self) -> str:
        """What intake names a webhook that is not an invoice (intake.asl.json)."""
        return f"webhook:{SOURCE}:{self.delivery_id}"

    def run(self) -> list[Hop]:
        hops: list[Hop] = []
        for name, step in (
            ("signing secret", self._signing_secret),
            ("ingest", self._ingest),
            ("bus -> intake", self._intake),
            ("lineage", self._lineage),
        ):
            hops.append(self._timed(name, step))
            if not hops[-1].ok:
                break
        hops.append(self._timed("dead letters", self._dead_letters))
        hops.append(self._timed("connector secrets", self._connector_secrets))
        return hops

    def _timed(self, name: str, step: Callable[[], str]) -> Hop:
        started = time.monotonic()
        try:
            hop = Hop(name, True, time.monotonic() - started, step())
        except HopFailed as failure:
            hop = Hop(name, False, time.monotonic() - started, str(failure))
        except Exception as error:  # an SDK or network error is this hop failing
            hop = Hop(name, False, time.monotonic() - started, f"{type(error).__name__}: {error}")
        hop = Hop(hop.name, hop.ok, time.monotonic() - started, hop.detail)
        self.echo(f"{'ok  ' if hop.ok else 'FAIL'} {hop.name:<18} {hop.seconds * 1000:8.0f} ms  {hop.detail}")
        return hop

    # -- the delivery's path ------------------------------------------------------------------
    def _signing_secret(self) -> str:
        name = webhook_secret_name(SOURCE, self.target.secrets_prefix)
        value = json.loads(self.clients("secretsmanager").get_secret_value(SecretId=name)["SecretString"])
        current = value.get("current") if isinstance(value, dict) else None
        if not isinstance(current, str) or not current:
            raise HopFailed(f"{name} has no 'current' signing secret")
        try:
            self._key = standard_key(current)  # as ingest reads it
        except ValueError:
            raise HopFailed(f"{name} is not a Standard Webhooks secret (whsec_ + base64)") from None
        return name  # the name only, never the value

    def _ingest(self) -> str:
        headers = sign_standard(self._key, self.body, message_id=self.delivery_id, timestamp=int(time.time()))
        status, answer = self.post(f"{self.target.api_url}/webhooks/{SOURCE}", self.body, headers)
        if status != 202:
            raise HopFailed(f"HTTP {status}, expected 202: {answer[:200]!r}")
        event_id = json.loads(answer).get("event_id")
        if not isinstance(event_id, str) or not event_id:
            raise HopFailed(f"202 without an event id: {answer[:200]!r}")
        self._event_id = event_id
        return f"202 event {event_id} delivery {self.delivery_id}"

    def _intake(self) -> str:
        dynamodb = self.clients("dynamodb")
        deadline = time.monotonic() + self.timeout
        while True:
            items = dynamodb.query(
                TableName=self.target.lineage_table,
                IndexName=LINEAGE_INDEX,
                KeyConditionExpression="business_key = :key",
                ExpressionAttributeValues={":key": {"S": self.business_key}},
            )["Items"]
            if items:
                self._row = {k: next(iter(v.values())) for k, v in items[0].items()}
                return f"intake recorded {self.business_key}"
            if time.monotonic() > deadline:
                raise HopFailed(
                    f"no lineage row for {self.business_key} within {self.timeout:.0f} s: the bus "
                    "rule did not start intake, or intake failed (aios executions list --workflow intake)"
                )
            time.sleep(0.25)

    def _lineage(self) -> str:
        expected = {
            "workflow": "intake",
            "outcome": "received",
            "event_id": self._event_id,
            "source": SOURCE,
            "event_type": SMOKE_EVENT_TYPE,
            "delivery_id": self.delivery_id,
            "input_digest": "sha256:" + hashlib.sha256(self.body).hexdigest(),
        }
        wrong = {k: self._row.get(k) for k, v in expected.items() if self._row.get(k) != v}
        if wrong:
            raise HopFailed(f"lineage row differs from the delivery: {wrong}")
        return f"{self._row.get('state')} at {self._row.get('recorded_at')}"

    # -- independent checks -------------------------------------------------------------------
    def _dead_letters(self) -> str:
        sqs = self.clients("sqs")
        url = self.target.dead_letter_queue_url
        if url.startswith("queue:"):
            url = sqs.get_queue_url(QueueName=url.removeprefix("queue:"))["QueueUrl"]
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        waiting = sum(int(v) for v in attributes.values())
        if waiting:
            raise HopFailed(f"{waiting} message(s) in {url}: see README, 'Dead letters'")
        return "empty"

    def _connector_secrets(self) -> str:
        unset = [
            name
            for name in (connector_secret_name(c, self.target.secrets_prefix) for c in self.target.connectors)
            if not self._is_set(name)
        ]
        if unset:
            raise HopFailed(f"not set: {', '.join(unset)} (README, 'Secrets')")
        return f"{len(self.target.connectors)} set"

    def _is_set(self, name: str) -> bool:
        try:
            value = json.loads(self.clients("secretsmanager").get_secret_value(SecretId=name)["SecretString"])
        except Exception:  # missing, unreadable or not JSON: not set
            return False
        base_url = value.get("base_url") if isinstance(value, dict) else None
        return isinstance(base_url, str) and bool(base_url) and base_url != PLACEHOLDER_BASE_URL


def failed(hops: Iterable[Hop]) -> list[str]:
    return [hop.name for hop in hops if not hop.ok]
