"""The one place the platform's code makes boto3 clients.

Every client gets an explicit ``botocore.config.Config``: standard retry mode (the SDKs'
recommended mode: exponential backoff with jitter, retry quota, the same transient errors in
every service) and connect/read timeouts sized from the function's own timeout
(``AIOS_FUNCTION_TIMEOUT_SECONDS``, set by both renderers from ``FunctionSpec.timeout_seconds``),
so that all attempts of one call end before Lambda kills the invocation. botocore's defaults
(60 s connect, 60 s read, legacy mode) would outlive a 30 s function on the first hung call.

Clients are made once per process and service (on first use, not at import) and shared by
every adapter; adapters still take an injected client (tests pass moto-backed or fake ones).

References: https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html,
https://docs.aws.amazon.com/boto3/latest/guide/retries.html,
https://docs.aws.amazon.com/botocore/latest/reference/config.html.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, cast

from botocore.config import Config

from aios.config import settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sesv2 import SESV2Client
    from mypy_boto3_stepfunctions import SFNClient

#: Attempts per call (the first one included), standard mode's default.
MAX_ATTEMPTS = 3
#: What is left of the function's timeout for its own work after all attempts of one call.
_HEADROOM = 0.1
_MAX_CONNECT_SECONDS = 3.0
_MIN_CONNECT_SECONDS = 0.5
_MAX_READ_SECONDS = 60.0

_lock = threading.Lock()
_clients: dict[tuple[str, int, float | None, str | None, str | None], Any] = {}


def client_config(
    function_timeout_seconds: float, *, max_attempts: int = MAX_ATTEMPTS, read_timeout: float | None = None
) -> Config:
    """Standard retries, and per-attempt timeouts such that ``max_attempts`` attempts fit in
    the function's timeout (less a headroom). ``read_timeout`` asks for a longer read (a model
    invocation); it is granted only as far as the budget allows."""
    budget = function_timeout_seconds * (1 - _HEADROOM) / max_attempts
    connect = min(_MAX_CONNECT_SECONDS, max(_MIN_CONNECT_SECONDS, budget / 5))
    read = min(read_timeout or _MAX_READ_SECONDS, max(budget - connect, 0.5))
    return Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=round(connect, 3),
        read_timeout=round(read, 3),
    )


def client(service: str, *, max_attempts: int = MAX_ATTEMPTS, read_timeout: float | None = None) -> Any:
    """The process's client for ``service`` (made on first use, then shared). A Lambda
    environment's region and endpoint never change; a test's may, hence the key."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    key = (service, max_attempts, read_timeout, region, os.environ.get("AWS_ENDPOINT_URL"))
    with _lock:  # boto3's default session is not thread-safe while it makes clients
        made = _clients.get(key)
        if made is None:
            import boto3  # noqa: PLC0415 - on first use, not at cold start

            config = client_config(
                settings().function_timeout_seconds, max_attempts=max_attempts, read_timeout=read_timeout
            )
            made = _clients[key] = boto3.client(service, config=config)  # type: ignore[call-overload]
        return made


def reset() -> None:
    """Forget the clients made so far (tests that change the environment between cases)."""
    with _lock:
        _clients.clear()


def dynamodb() -> DynamoDBClient:
    return cast("DynamoDBClient", client("dynamodb"))


def s3() -> S3Client:
    return cast("S3Client", client("s3"))


def sesv2() -> SESV2Client:
    return cast("SESV2Client", client("sesv2"))


def stepfunctions() -> SFNClient:
    return cast("SFNClient", client("stepfunctions"))


def events() -> EventBridgeClient:
    return cast("EventBridgeClient", client("events"))


def secretsmanager() -> SecretsManagerClient:
    return cast("SecretsManagerClient", client("secretsmanager"))


def sagemaker_runtime(*, max_attempts: int, read_timeout: float) -> SageMakerRuntimeClient:
    return cast(
        "SageMakerRuntimeClient",
        client("sagemaker-runtime", max_attempts=max_attempts, read_timeout=read_timeout),
    )
