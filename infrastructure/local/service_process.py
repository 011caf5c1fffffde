"""AWS services of the local mode that run in a moto process of their own: DynamoDB.

Why: ``aios local up`` hosts moto in one process, whose one interpreter lock is shared by
the HTTP API, the Lambda workers' pipes, the ASL interpreter's threads, EventBridge's
deliveries and every service's request handling. Under a webhook load that process is the
bottleneck at one core while the machine's other cores wait (issue 11: 84% of a core, the
functions' workers using a third of another). On AWS each service has its own capacity.
DynamoDB is the one that is both self-contained in moto (no other service reads its backend
in process: the platform has no streams) and busy: two writes per accepted webhook
(Powertools' idempotency record, in progress then completed) and one per lineage row,
about a third of that process's time. So it runs in a moto process of its own:

- ``python -m infrastructure.local.service_process dynamodb``: a ``LocalMotoServer`` (with
  ``moto_server``'s request handling) and the service's bridge (``dynamodb``: conditional
  writes atomic per item), on a free loopback port. It writes ``port=<port>`` on stdout when it
  serves, and exits when its stdin closes: when the local mode's process ends, however it ends.
- The functions' workers call it directly: ``AWS_ENDPOINT_URL_DYNAMODB``, botocore's
  service-specific endpoint variable
  (https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html), beside
  ``AWS_ENDPOINT_URL`` for the others (``lambda_runtime.worker_environment``).
- Everything else keeps the one ``aws=`` endpoint: requests signed for the service (the CLI,
  the tests, ``aios local up``'s own deploy) and the interpreter's DynamoDB tasks are relayed
  to the process by ``moto_server`` (``route``, ``forward``); ``POST /moto-api/reset`` resets
  it too.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import IO

from infrastructure.platform.spec import REPO_ROOT

HOST = "127.0.0.1"
#: The services that run in processes of their own, by signing name, and the variable that
#: points the functions' SDK at each (``AWS_ENDPOINT_URL_<service id>``).
SEPARATE_SERVICES: dict[str, str] = {"dynamodb": "AWS_ENDPOINT_URL_DYNAMODB"}
#: A process that has not said its port by then has failed to start.
START_TIMEOUT_SECONDS = 60.0


class ServiceProcessFailed(RuntimeError):
    """A service process exited, or said nothing, before it served."""


@dataclass
class ServiceProcess:
    """One service's moto process, as the local mode started it."""

    service: str
    process: subprocess.Popen[bytes]
    port: int
    _stopped: bool = field(default=False, repr=False)

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def endpoint(self) -> str:
        return f"http://{self.address}"

    @classmethod
    def start(cls, service: str) -> ServiceProcess:
        if service not in SEPARATE_SERVICES:
            raise ValueError(f"{service} does not run in a process of its own")
        process = subprocess.Popen(  # noqa: S603 - our own module
            [sys.executable, "-m", "infrastructure.local.service_process", service],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert process.stdout is not None
        line = _first_line(process.stdout, START_TIMEOUT_SECONDS)
        if not line.startswith(b"port="):
            process.kill()
            process.wait()
            status = process.returncode
            raise ServiceProcessFailed(
                f"the {service} process did not start (exit status {status}): see above"
            )
        return cls(service=service, process=process, port=int(line.removeprefix(b"port=")))

    def stop(self, timeout: float = 5.0) -> None:
        """Close its stdin (it exits), kill it past ``timeout``."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _first_line(stream: IO[bytes], timeout: float) -> bytes:
    """The stream's first line, or ``b""`` if none comes within ``timeout`` seconds."""
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return lines[0].strip() if lines else b""


def serve(service: str) -> None:
    """The service process: moto with the local mode's request handling and the service's
    bridge, until stdin closes."""
    import logging  # noqa: PLC0415

    from infrastructure.local import dynamodb, moto_server  # noqa: PLC0415 - moto only in this process

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    bridges = {"dynamodb": dynamodb}
    moto_server.install()
    bridges[service].install()
    server = moto_server.LocalMotoServer(ip_address=HOST, port=0, verbose=False)
    server.start()
    moto_server.settle_heap()
    sys.stdout.write(f"port={server.get_host_and_port()[1]}\n")
    sys.stdout.flush()
    sys.stdin.buffer.read()  # until the local mode's process closes our stdin, or is gone
    server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("service", choices=sorted(SEPARATE_SERVICES))
    serve(parser.parse_args(argv).service)


if __name__ == "__main__":
    main()
