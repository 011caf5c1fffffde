"""Drive ``aios local up`` from outside, over HTTP only: the e2e tests and the bench use this.

``LocalProcess`` starts the command as a subprocess with free ports, waits for its ready
line, keeps draining its output (a full pipe would block the server) and stops it with
SIGTERM. ``sign_standard`` signs a Standard Webhooks delivery as a producer would.
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
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
READY = re.compile(r"^aios local ready api=(\S+) aws=(\S+)$")
SECRET_LINE = re.compile(r"^secret source=(\S+) value=(\S+)$")


@dataclass
class LocalProcess:
    process: subprocess.Popen[str]
    api: str
    aws: str
    secrets: dict[str, str]
    output: list[str] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        *,
        env: Mapping[str, str] | None = None,
        platform: str | None = None,
        timeout: float = 60.0,
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
        secrets: dict[str, str] = {}
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
        local = cls(process=process, api=match.group(1), aws=match.group(2), secrets=secrets, output=output)
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
