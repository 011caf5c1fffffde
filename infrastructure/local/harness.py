"""Drive ``aios local up`` from outside, over HTTP only: the e2e tests and the bench use this.

``LocalProcess`` starts the command as a subprocess with free ports, waits for its ready
line, keeps draining its output (a full pipe would block the server) and stops it with
SIGTERM. ``sign_standard`` signs a Standard Webhooks delivery as a producer would;
``sign_slack`` and ``slack_action_body`` make a signed Slack button press. The sandbox
providers (``/_sandbox/``) have helpers: ``sandbox``, ``slack_messages``, ``approval_ids``,
``payment_intents``, ``erp_postings``, ``refuse_payment``, ``sandbox_faults``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

from infrastructure.local import execution_logs
from infrastructure.local.deploy import LocalNames

REPO_ROOT = Path(__file__).resolve().parents[2]
READY = re.compile(r"^aios local ready api=(\S+) aws=(\S+)(?: iam=(\S+))?$")
#: As runtime.SECRET_ENV_PREFIX (not imported here: the runtime module imports moto).
SECRET_PREFIX = "AIOS_LOCAL_SECRET_"  # noqa: S105 - a variable name prefix, not a secret
SECRET_LINE = re.compile(r"^secret source=(\S+) value=(\S+)$")


@dataclass
class LocalProcess:
    process: subprocess.Popen[str]
    api: str
    aws: str
    secrets: dict[str, str]
    output: list[str] = field(default_factory=list)
    #: What the ready line says of IAM: ``enforce`` (the default) or ``off``.
    iam: str = "enforce"
    #: Execution ARN -> business key; an execution's input never changes.
    _business_keys: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(
        cls,
        *,
        env: Mapping[str, str] | None = None,
        platform: str | None = None,
        # A cold .aios/iam cache synthesizes the platform first (30-75 s on a shared 2-core box).
        timeout: float = 180.0,
    ) -> LocalProcess:
        command = [
            sys.executable,
            "-m",
            "infrastructure.cli",
            "local",
            "up",
            "--api-port",
            "0",
            "--aws-port",
            "0",
        ]
        if platform:
            command += ["--platform", platform]
        environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        process = subprocess.Popen(  # noqa: S603 - our own command line
            command,
            cwd=REPO_ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout is not None
        output: list[str] = []
        # The secrets given (AIOS_LOCAL_SECRET_<SOURCE>) and, read below, those generated.
        secrets = {
            name.removeprefix(SECRET_PREFIX).lower().replace("_", "-"): value
            for name, value in environment.items()
            if name.startswith(SECRET_PREFIX)
        }
        deadline = time.monotonic() + timeout
        while True:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError("aios local up exited before it was ready:\n" + "".join(output[-40:]))
            output.append(line)
            if match := SECRET_LINE.match(line.strip()):
                secrets[match.group(1)] = match.group(2)
            if match := READY.match(line.strip()):
                break
            if time.monotonic() > deadline:
                process.kill()
                raise TimeoutError("aios local up was not ready in time")
        local = cls(
            process=process,
            api=match.group(1),
            aws=match.group(2),
            secrets=secrets,
            output=output,
            iam=match.group(3) or "enforce",
        )
        threading.Thread(target=local._drain, daemon=True).start()
        return local

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then the exit status (killed and -9 if it does not stop in time)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return -9

    def client(self, service: str) -> Any:
        import boto3  # noqa: PLC0415

        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.aws,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto accepts any
        )

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(  # noqa: S310 - loopback
            self.api + path, data=body, method=method, headers=dict(headers or {})
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return response.status, dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers.items()), error.read()

    def set_faults(self, faults: Mapping[str, Any]) -> dict[str, Any]:
        status, _, body = self.request(
            "POST", "/_aios/faults", json.dumps(faults).encode(), {"content-type": "application/json"}
        )
        assert status == 200, body
        result: dict[str, Any] = json.loads(body)
        return result

    # -- inspection through the embedded AWS, by the calls that work on AWS ----------------------
    # Standard executions through the Step Functions API; Express ones (which that API
    # refuses, here as on AWS) through the workflow's CloudWatch Logs (``execution_logs``).
    def _log_group(self, state_machine_arn: str) -> str:
        group = execution_logs.log_group_of(self.client("stepfunctions"), state_machine_arn)
        assert group is not None, f"{state_machine_arn} writes no execution logs"
        return group

    def executions(self, workflow: str) -> list[dict[str, Any]]:
        """Every execution of a workflow (``intake``, ``accounts-payable``), newest first."""
        arn = LocalNames().state_machine_arn(workflow)
        sfn = self.client("stepfunctions")
        if sfn.describe_state_machine(stateMachineArn=arn)["type"] == "EXPRESS":
            return execution_logs.executions(
                execution_logs.records(self.client("logs"), self._log_group(arn))
            )
        pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=arn)
        return [execution for page in pages for execution in page["executions"]]

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        """The whole execution history, oldest event first."""
        if execution_logs.is_express(execution_arn):
            group = self._log_group(execution_logs.state_machine_arn_of(execution_arn))
            return execution_logs.history(execution_logs.records(self.client("logs"), group, execution_arn))
        pages = (
            self.client("stepfunctions")
            .get_paginator("get_execution_history")
            .paginate(executionArn=execution_arn)
        )
        return [event for page in pages for event in page["events"]]

    def status(self, execution_arn: str) -> str:
        """``RUNNING``, ``SUCCEEDED``...: DescribeExecution, or an Express execution's last log record."""
        if execution_logs.is_express(execution_arn):
            events = self.history(execution_arn)
            last = events[-1]["type"] if events else ""
            return execution_logs.TERMINAL.get(last, "RUNNING")
        status: str = self.client("stepfunctions").describe_execution(executionArn=execution_arn)["status"]
        return status

    def business_key_of(self, execution_arn: str) -> str:
        """The business key an execution was started for (its input's ``detail``)."""
        if execution_arn not in self._business_keys:
            described = self.client("stepfunctions").describe_execution(executionArn=execution_arn)
            self._business_keys[execution_arn] = str(json.loads(described["input"])["detail"]["business_key"])
        return self._business_keys[execution_arn]

    def executions_for(self, workflow: str, business_key: str) -> list[str]:
        """The ARNs of a workflow's executions started for ``business_key``, oldest first."""
        found = [
            (execution["startDate"], execution["executionArn"])
            for execution in self.executions(workflow)
            if self.business_key_of(execution["executionArn"]) == business_key
        ]
        return [execution_arn for _, execution_arn in sorted(found)]

    def lineage(self, business_key: str) -> list[dict[str, Any]]:
        """An invoice's lineage: one query on the ``by-business-key`` index, values unwrapped."""
        items: list[dict[str, Any]] = self.client("dynamodb").query(
            TableName=LocalNames().table("lineage"),
            IndexName="by-business-key",
            KeyConditionExpression="business_key = :key",
            ExpressionAttributeValues={":key": {"S": business_key}},
        )["Items"]
        return [{name: next(iter(value.values())) for name, value in item.items()} for item in items]

    # -- the sandbox providers (/_sandbox/, see sandbox.py) ------------------------------------
    def sandbox(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """``method /_sandbox/<path>`` with ``body`` as JSON; the status and the parsed JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        headers = {} if data is None else {"content-type": "application/json"}
        status, _, raw = self.request(method, "/_sandbox/" + path.lstrip("/"), data, headers)
        return status, json.loads(raw) if raw else None

    def _sandbox_ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = self.sandbox(method, path, body)
        assert status == 200, (status, answer)
        return answer

    def seeded_invoices(self) -> dict[str, dict[str, Any]]:
        """The sandbox ERP's seeded invoices, by invoice id."""
        answer = self._sandbox_ok("GET", "erp/invoices")
        return {invoice["invoice_id"]: invoice for invoice in answer["invoices"]}

    def slack_messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Every message posted (and its last update) on the sandbox Slack."""
        query = f"?channel={channel}" if channel else ""
        messages: list[dict[str, Any]] = self._sandbox_ok("GET", "slack/messages" + query)["messages"]
        return messages

    def approval_ids(self) -> list[str]:
        """The ``value`` of every approval button posted on the sandbox Slack (the approval ids)."""
        return [approval_id for message in self.slack_messages() if (approval_id := approval_id_of(message))]

    def payment_intents(self) -> list[dict[str, Any]]:
        intents: list[dict[str, Any]] = self._sandbox_ok("GET", "payments/intents")["data"]
        return intents

    def erp_postings(self) -> dict[str, list[dict[str, Any]]]:
        """``{"postings": [...], "reversals": [...]}`` of the sandbox ERP."""
        postings: dict[str, list[dict[str, Any]]] = self._sandbox_ok("GET", "erp/postings")
        return postings

    def refuse_payment(self, invoice_id: str, code: str = "card_declined") -> None:
        self._sandbox_ok("POST", "payments/refuse", {"invoice_id": invoice_id, "code": code})

    def sandbox_faults(self, faults: Mapping[str, Any] | None) -> dict[str, Any]:
        """Replace the sandbox providers' faults (``None``: clear them)."""
        if faults is None:
            cleared: dict[str, Any] = self._sandbox_ok("DELETE", "faults")
            return cleared
        replaced: dict[str, Any] = self._sandbox_ok("POST", "faults", dict(faults))
        return replaced


def approval_id_of(message: Mapping[str, Any]) -> str | None:
    """The approval id an approval request's Approve button carries (``None``: no buttons)."""
    for block in message.get("blocks") or []:
        for element in block.get("elements") or []:
            if element.get("type") == "button" and element.get("action_id") == "approve":
                return str(element["value"])
    return None


def sign_slack(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Slack's request signing: ``v0=<hex HMAC-SHA256 of "v0:{ts}:{body}">`` and the timestamp."""
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    basestring = f"v0:{stamp}:".encode() + body
    digest = hmac.new(secret.encode(), basestring, hashlib.sha256).hexdigest()
    return {
        "content-type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={digest}",
    }


def slack_action_body(
    approval_id: str,
    action: Literal["approve", "reject"],
    user_id: str,
    channel: str,
    message_ts: str,
) -> bytes:
    """The form body Slack posts when a user presses an approval button (``block_actions``)."""
    payload = {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_id.lower(), "team_id": "T0SANDBOX"},
        "api_app_id": "A0SANDBOX",
        "token": "legacy-verification-token",
        "team": {"id": "T0SANDBOX", "domain": "aios-sandbox"},
        "trigger_id": f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:32]}",
        # Never called: the interactions handler answers the request itself.
        "response_url": f"https://hooks.slack.com/actions/T0SANDBOX/{uuid.uuid4().int % 10**12}/"
        + uuid.uuid4().hex,
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "channel": {"id": channel, "name": "accounts-payable"},
        "message": {"type": "message", "ts": message_ts},
        "actions": [
            {
                "type": "button",
                "action_id": action,
                "block_id": "aios_approval",
                "value": approval_id,
                "text": {"type": "plain_text", "text": "Approve" if action == "approve" else "Reject"},
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()


def sign_standard(
    secret: str, body: bytes, *, message_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    """Standard Webhooks headers for ``body`` signed with ``whsec_<base64>``."""
    message_id = message_id or f"msg_{uuid.uuid4().hex}"
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{stamp}.".encode() + body
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": stamp,
        "webhook-signature": f"v1,{signature}",
    }


def invoice_webhook(invoice_id: str, system: str = "erp") -> bytes:
    return json.dumps(
        {
            "type": "invoice.received",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "data": {"invoice_id": invoice_id, "system": system},
        }
    ).encode()
