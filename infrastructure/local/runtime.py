"""``aios local up``: moto in this process, the bridges installed, the platform deployed,
the HTTP API served, with the sandbox providers (ERP, payments, Slack) under ``/_sandbox/``
that the connectors' secrets point at (``infrastructure.local.sandbox``).

Settings (environment variables, all optional):

- ``AIOS_LOCAL_SECRET_<SOURCE>``: the signing secret of a webhook source (``STANDARD``,
  ``STRIPE``...); unset: one is generated and printed once.
- ``AIOS_LOCAL_FAULTS``: faults to inject into functions (JSON, or a path to a JSON file);
  see ``infrastructure.local.faults.Fault``. Changeable at run time on ``/_aios/faults``.
- ``AIOS_LOCAL_TIME_SCALE``: factor in (0, 1] on Wait states, Retry intervals and event
  delivery retry delays (default 1).
- ``AIOS_LOCAL_LAMBDA_CONCURRENCY``: most workers of a function without reserved
  concurrency (default ``lambda_runtime.DEFAULT_CONCURRENCY``).
- ``AIOS_LOCAL_LAMBDA_PREWARM=1``: one worker per function started in the background at
  start-up (the e2e tier sets it: short approval stages should not wait for cold starts).

This process hosts moto (``moto_server``: keep-alive connections, dispatch without scans),
the bridges and the HTTP API; each function runs in worker processes of its own
(``lambda_runtime``), which reach moto over HTTP.
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
import json
import logging
import os
import secrets as random_secrets
import sys
import threading
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from moto.server import ThreadedMotoServer

from infrastructure.local import bridges, moto_server
from infrastructure.local.deploy import Deployment, LocalNames, deploy, function_environment
from infrastructure.local.faults import FAULTS_ENV, Faults
from infrastructure.local.http_api import HttpApiServer
from infrastructure.local.lambda_runtime import (
    PREWARM_ENV,
    LambdaRuntime,
    LocalFunction,
    concurrency_from_environ,
)
from infrastructure.local.sagemaker import install_sagemaker_bridge, register_on_server
from infrastructure.local.sandbox import Sandbox
from infrastructure.local.schedules import SCHEDULE_SECONDS_ENV, Scheduler, parse_override
from infrastructure.local.service_process import SEPARATE_SERVICES, ServiceProcess
from infrastructure.local.timescale import TIME_SCALE_ENV, TimeScale
from infrastructure.platform.spec import REPO_ROOT, FunctionSpec, Platform, WebhookSourceSpec

SECRET_ENV_PREFIX = "AIOS_LOCAL_SECRET_"  # noqa: S105 - a variable name prefix
HOST = "127.0.0.1"


def _repo_importable() -> None:
    """Handlers are ``functions.<name>.handler`` and platforms may live in ``tests/``: both
    import from the repository root, which a console script does not have on its path."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))


def load_platform(reference: str | None) -> Platform:
    """``module:ATTR`` or ``path/to/file.py:ATTR`` naming a ``Platform``; ``None``: the default."""
    _repo_importable()
    if not reference:
        from infrastructure.platform import PLATFORM  # noqa: PLC0415

        return PLATFORM
    module_name, _, attribute = reference.partition(":")
    if module_name.endswith(".py"):
        path = Path(module_name)
        spec = importlib.util.spec_from_file_location(f"aios_local_platform_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(module_name)
    platform = getattr(module, attribute or "PLATFORM")
    if not isinstance(platform, Platform):
        raise TypeError(f"{reference} is a {type(platform).__name__}, not a Platform")
    return platform


def generate_secret(source: WebhookSourceSpec) -> str:
    """A fresh signing secret in the shape the source's scheme expects."""
    if source.scheme == "standard":
        return "whsec_" + base64.b64encode(random_secrets.token_bytes(24)).decode("ascii")
    if source.scheme == "stripe":
        return "whsec_" + random_secrets.token_hex(24)
    return random_secrets.token_hex(24)


def source_secrets(platform: Platform, environ: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Each source's secret (from ``AIOS_LOCAL_SECRET_<SOURCE>`` or generated) and the names generated."""
    values: dict[str, str] = {}
    generated: list[str] = []
    for source in platform.sources:
        variable = SECRET_ENV_PREFIX + source.name.upper().replace("-", "_")
        if environ.get(variable):
            values[source.name] = environ[variable]
        else:
            values[source.name] = generate_secret(source)
            generated.append(source.name)
    return values, generated


def local_function(
    platform: Platform, spec: FunctionSpec, names: LocalNames, *, iam_policy_file: Path | None = None
) -> LocalFunction:
    """A platform function as the local mode deploys it: its local names and the environment
    CDK gives it."""
    return LocalFunction(
        spec=spec,
        physical_name=names.function(spec.name),
        arn=names.function_arn(spec.name),
        environment=function_environment(platform, spec, names),
        iam_policy_file=iam_policy_file,
    )


@dataclass
class LocalMode:
    """A running local platform: moto server, bridges, deployment and HTTP API."""

    moto: ThreadedMotoServer
    api: HttpApiServer
    deployment: Deployment
    aws_url: str
    api_url: str
    sandbox: Sandbox
    _api_thread: threading.Thread
    #: The scheduled functions' runs (``FunctionSpec.schedule``; local/schedules.py).
    schedules: Scheduler | None = None
    #: The services that run in moto processes of their own (``service_process``: DynamoDB).
    services: list[ServiceProcess] = field(default_factory=list)

    def lost_services(self) -> list[ServiceProcess]:
        """Service processes that exited while the local mode runs (their calls now fail)."""
        return [service for service in self.services if service.process.poll() is not None]

    def stop(self) -> None:
        if self.schedules is not None:
            self.schedules.stop()
        self.api.shutdown()
        self.api.server_close()
        self._api_thread.join(timeout=5)
        bridges.uninstall()
        self.moto.stop()
        moto_server.uninstall()
        for service in self.services:
            service.stop()


def start(
    platform: Platform,
    *,
    api_port: int = 8787,
    aws_port: int = 4566,
    secrets: Mapping[str, str],
    faults: Faults,
    time_scale: float = 1.0,
    iam_policy_files: Mapping[str, Path] | None = None,
) -> LocalMode:
    """Start everything in this process and deploy ``platform``; ``port=0`` picks a free port.

    ``iam_policy_files`` maps a function's name to the IAM policy its workers enforce
    (``AIOS_LOCAL_IAM_POLICY_FILE``, read by ``infrastructure.iam.enforce``)."""
    _repo_importable()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    services = [ServiceProcess.start(service) for service in SEPARATE_SERVICES]
    moto_server.install()
    for service in services:
        moto_server.route(service.service, service.address)
    server = moto_server.LocalMotoServer(ip_address=HOST, port=aws_port, verbose=False)
    server.start()
    port = server.get_host_and_port()[1]
    aws_url = f"http://{HOST}:{port}"
    # The ASL interpreter calls Lambda (and other services) at localhost:$MOTO_PORT, with
    # whatever credentials this process has. Set once, before any thread starts; the
    # functions get their own environment (``lambda_runtime.worker_environment``).
    os.environ["MOTO_PORT"] = str(port)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ["AWS_DEFAULT_REGION"] = LocalNames().region
    config = json.dumps(
        {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
    ).encode("utf-8")
    request = urllib.request.Request(  # noqa: S310 - our own server on loopback
        f"{aws_url}/moto-api/config", data=config, method="POST", headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310
        pass

    names = LocalNames()
    policies = iam_policy_files or {}
    runtime = LambdaRuntime(
        {
            spec.name: local_function(platform, spec, names, iam_policy_file=policies.get(spec.name))
            for spec in platform.functions
        },
        faults,
        aws_endpoint=aws_url,
        region=names.region,
        default_concurrency=concurrency_from_environ(os.environ),
        service_endpoints={SEPARATE_SERVICES[s.service]: s.endpoint for s in services},
    )
    bridges.install(runtime, aws_endpoint=aws_url, time_scale=time_scale)
    if platform.models:  # each endpoint serves its own model's artifact
        install_sagemaker_bridge({names.name(model.name): model for model in platform.models})
    # The API server binds first: the connectors' secrets point at its /_sandbox/ providers.
    sandbox = Sandbox()
    api = HttpApiServer((HOST, api_port), routes=list(platform.routes), runtime=runtime, sandbox=sandbox)
    api_url = f"http://{HOST}:{api.server_address[1]}"
    connectors = [spec.credentials for spec in platform.functions if spec.credentials]
    try:
        deployment = deploy(
            platform,
            aws_url,
            secrets=secrets,
            names=names,
            connector_secrets=sandbox.credentials(api_url, connectors),
        )
        for model in platform.models:  # the local model registry, as the models stack registers it
            register_on_server(aws_url, region=names.region, group_name=names.name(model.name), model=model)
    except BaseException:
        api.server_close()
        bridges.uninstall()
        for service in services:
            service.stop()
        raise
    moto_server.settle_heap()
    if os.environ.get(PREWARM_ENV) == "1":
        runtime.prewarm()
    api_thread = threading.Thread(target=api.serve_forever, name="aios-local-api", daemon=True)
    api_thread.start()
    schedules = Scheduler(
        platform,
        names,
        aws_endpoint=aws_url,
        time_scale=time_scale,
        override=parse_override(os.environ.get(SCHEDULE_SECONDS_ENV)),
    )
    schedules.start()
    return LocalMode(
        schedules=schedules,
        moto=server,
        api=api,
        deployment=deployment,
        aws_url=aws_url,
        api_url=api_url,
        sandbox=sandbox,
        _api_thread=api_thread,
        services=services,
    )


def faults_from_environ(environ: Mapping[str, str]) -> Faults:
    return Faults.parse(environ.get(FAULTS_ENV))


def time_scale_from_environ(environ: Mapping[str, str]) -> float:
    return TimeScale.parse(environ.get(TIME_SCALE_ENV))


__all__ = [
    "LocalMode",
    "faults_from_environ",
    "load_platform",
    "source_secrets",
    "start",
    "time_scale_from_environ",
]
