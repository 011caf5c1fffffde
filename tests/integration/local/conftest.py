"""An in-process moto server with the local mode's bridges, for the bridge tests of this folder."""

from __future__ import annotations

import io
import json
import os
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from infrastructure.local import bridges
from infrastructure.local.faults import Faults
from infrastructure.local.lambda_runtime import LambdaRuntime, LocalFunction
from infrastructure.local.lambda_worker import HANDLER_ENV
from infrastructure.platform.spec import REPO_ROOT, FunctionSpec

ROLE = "arn:aws:iam::123456789012:role/r"
FIXTURES = Path(__file__).parent / "fixtures"
#: A site-packages ``tests`` package shadows ours in a worker: the fixtures go on its path.
WORKER_PATH = os.pathsep.join([str(FIXTURES), str(REPO_ROOT), str(REPO_ROOT / "layers" / "aios" / "python")])


def fixture_function(
    name: str, handler: str, *, timeout: int = 10, reserved: int | None = None, **env: str
) -> LocalFunction:
    """A function whose handler is ``fixtures/lambda_fixtures.<handler>``, run in real workers."""
    spec = FunctionSpec(
        name=name,
        description="test",
        code="webhook_ingest",
        timeout_seconds=timeout,
        reserved_concurrency=reserved,
    )
    return LocalFunction(
        spec=spec,
        physical_name=f"aios-test-{name}",
        arn=f"arn:aws:lambda:us-east-1:123456789012:function:aios-test-{name}",
        environment={HANDLER_ENV: f"lambda_fixtures:{handler}", "PYTHONPATH": WORKER_PATH, **env},
    )


@dataclass
class Aws:
    url: str
    runtime: LambdaRuntime

    def client(self, service: str) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def aws() -> Iterator[Aws]:
    """A server and the bridges for one test module: moto's backends are per process, so they
    are reset first (another module's server left its resources there) and the bridges
    uninstalled after, for the moto tests of other modules."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
    # The hosting process's own settings, as runtime.start sets them: the interpreter calls
    # Lambda at localhost:$MOTO_PORT. The functions' workers get their own environment.
    saved = {k: os.environ.get(k) for k in ("MOTO_PORT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(
        {"MOTO_PORT": url.rsplit(":", 1)[1], "AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t"}
    )
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"))
    config = json.dumps({"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})
    urllib.request.urlopen(
        urllib.request.Request(f"{url}/moto-api/config", data=config.encode(), method="POST")
    )
    functions = [fixture_function("callback", "answer_the_callback"), fixture_function("probe", "probe")]
    runtime = LambdaRuntime({f.spec.name: f for f in functions}, Faults(), aws_endpoint=url)
    bridges.install(runtime, aws_endpoint=url, time_scale=0.001)
    local = Aws(url=url, runtime=runtime)
    local.client("iam").create_role(
        RoleName=ROLE.rpartition("/")[2],
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )
    for function in functions:
        local.client("lambda").create_function(
            FunctionName=function.physical_name,
            Runtime="python3.12",
            Role=ROLE,
            Handler="handler.handler",
            Code={"ZipFile": _zip()},
        )
    try:
        yield local
    finally:
        bridges.uninstall()
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
