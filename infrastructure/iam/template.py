"""Resolve CloudFormation intrinsics in a synthesized template's values.

Policy checks (the local mode's enforcement, the policy contract tests) need the statements
of a template as AWS would see them after deployment: ARNs, not ``{"Fn::GetAtt": ...}``.
``resolve_intrinsics`` computes those values for a given account and region the way
CloudFormation documents them:

- Intrinsic functions (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference.html):
  ``Ref``, ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Sub`` (both forms, ``${!Literal}``),
  ``Fn::Select``, ``Fn::Split``, ``Fn::ImportValue`` (from ``exports``), ``Fn::FindInMap``,
  ``Fn::If`` / ``Fn::Equals`` / ``Fn::And`` / ``Fn::Or`` / ``Fn::Not`` on the template's
  ``Conditions``, ``Fn::Base64``.
- Pseudo parameters (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/pseudo-parameter-reference.html):
  ``AWS::AccountId``, ``AWS::Region``, ``AWS::Partition``, ``AWS::URLSuffix``,
  ``AWS::StackName``, ``AWS::NoValue`` (removes the key or list item).
- What ``Ref`` and ``Fn::GetAtt`` return per resource type is each type's "Return values"
  section in https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-template-resource-type-ref.html
  (the table ``_TYPES`` below). A resource's physical name is ``physical_ids[logical id]``,
  else its name property (``TableName``, ``BucketName``, ``FunctionName``...), else its
  logical id. A Secrets Manager secret's ARN ends in a random six-character suffix that
  only the deployment knows; it resolves to ``<name>-??????``, the form AWS recommends for
  policies (https://docs.aws.amazon.com/secretsmanager/latest/userguide/auth-and-access_iam-policies.html).
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_NO_VALUE = object()


class UnresolvedError(ValueError):
    """An intrinsic this resolver cannot compute (unknown resource, attribute or function)."""


@dataclass(frozen=True)
class _Env:
    template: Mapping[str, Any]
    account: str
    region: str
    partition: str
    physical_ids: Mapping[str, str]
    exports: Mapping[str, Any]
    stack_name: str
    parameters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def url_suffix(self) -> str:
        return "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com"

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:"
            f"{self.account if account else ''}:{resource}"
        )

    def resource(self, logical_id: str) -> Mapping[str, Any]:
        resources = self.template.get("Resources", {})
        if logical_id not in resources:
            raise UnresolvedError(f"no resource {logical_id!r} in the template")
        resource: Mapping[str, Any] = resources[logical_id]
        return resource

    def name(self, logical_id: str, *properties: str) -> str:
        """The physical name: the caller's map, else the name property, else the logical id."""
        if logical_id in self.physical_ids:
            return self.physical_ids[logical_id]
        props = self.resource(logical_id).get("Properties", {})
        for prop in properties:
            if prop in props:
                return str(_resolve(props[prop], self))
        return logical_id

    def generated_id(self, logical_id: str) -> str:
        """A stable stand-in for an id AWS generates (key id, API id): derived from the logical id."""
        if logical_id in self.physical_ids:
            return self.physical_ids[logical_id]
        return str(uuid.UUID(hashlib.sha256(f"{self.stack_name}/{logical_id}".encode()).hexdigest()[:32]))


# Per resource type: the name properties, then Ref and each GetAtt attribute as functions of
# (env, logical id). Each row follows the type's "Return values" section in the CFN reference.
Getter = Callable[[_Env, str], str]


@dataclass(frozen=True)
class _Type:
    names: tuple[str, ...]
    ref: Getter
    attributes: Mapping[str, Getter]


def _n(*props: str) -> Callable[[_Env, str], str]:
    return lambda env, lid: env.name(lid, *props)


def _table_arn(env: _Env, lid: str) -> str:
    return env.arn("dynamodb", f"table/{env.name(lid, 'TableName')}")


def _bucket(env: _Env, lid: str) -> str:
    return env.name(lid, "BucketName")


def _queue_name(env: _Env, lid: str) -> str:
    return env.name(lid, "QueueName")


def _queue_url(env: _Env, lid: str) -> str:
    return f"https://sqs.{env.region}.{env.url_suffix}/{env.account}/{_queue_name(env, lid)}"


def _function_arn(env: _Env, lid: str) -> str:
    return env.arn("lambda", f"function:{env.name(lid, 'FunctionName')}")


def _state_machine_arn(env: _Env, lid: str) -> str:
    return env.arn("states", f"stateMachine:{env.name(lid, 'StateMachineName')}")


def _bus_arn(env: _Env, lid: str) -> str:
    return env.arn("events", f"event-bus/{env.name(lid, 'Name')}")


def _rule_arn(env: _Env, lid: str) -> str:
    """A rule on a custom bus has the bus name in its ARN: ``rule/<bus>/<rule>``."""
    bus = env.resource(lid).get("Properties", {}).get("EventBusName")
    bus_name = str(_resolve(bus, env)).rpartition("event-bus/")[2] if bus is not None else "default"
    path = env.name(lid, "Name") if bus_name == "default" else f"{bus_name}/{env.name(lid, 'Name')}"
    return env.arn("events", f"rule/{path}")


def _log_group_arn(env: _Env, lid: str) -> str:
    return env.arn("logs", f"log-group:{env.name(lid, 'LogGroupName')}:*")


def _role_arn(env: _Env, lid: str) -> str:
    path = env.resource(lid).get("Properties", {}).get("Path", "/")
    return env.arn("iam", f"role{path}{env.name(lid, 'RoleName')}", region=False)


def _secret_arn(env: _Env, lid: str) -> str:
    if lid in env.physical_ids and env.physical_ids[lid].startswith("arn:"):
        return env.physical_ids[lid]
    return env.arn("secretsmanager", f"secret:{env.name(lid, 'Name')}-??????")


def _key_arn(env: _Env, lid: str) -> str:
    return env.arn("kms", f"key/{env.generated_id(lid)}")


def _sagemaker(kind: str, prop: str) -> Getter:
    # SageMaker ARNs carry the name in lower case.
    return lambda env, lid: env.arn("sagemaker", f"{kind}/{env.name(lid, prop).lower()}")


_TYPES: dict[str, _Type] = {
    "AWS::DynamoDB::Table": _Type(
        ("TableName",),
        _n("TableName"),
        {
            "Arn": _table_arn,
            "StreamArn": lambda env, lid: f"{_table_arn(env, lid)}/stream/1970-01-01T00:00:00.000",
        },
    ),
    "AWS::S3::Bucket": _Type(
        ("BucketName",),
        _bucket,
        {
            "Arn": lambda env, lid: f"arn:{env.partition}:s3:::{_bucket(env, lid)}",
            "DomainName": lambda env, lid: f"{_bucket(env, lid)}.s3.{env.url_suffix}",
            "RegionalDomainName": lambda env, lid: f"{_bucket(env, lid)}.s3.{env.region}.{env.url_suffix}",
        },
    ),
    "AWS::SQS::Queue": _Type(
        ("QueueName",),
        _queue_url,
        {
            "Arn": lambda env, lid: env.arn("sqs", _queue_name(env, lid)),
            "QueueName": _queue_name,
            "QueueUrl": _queue_url,
        },
    ),
    "AWS::Lambda::Function": _Type(("FunctionName",), _n("FunctionName"), {"Arn": _function_arn}),
    "AWS::Lambda::LayerVersion": _Type(
        ("LayerName",), lambda env, lid: env.arn("lambda", f"layer:{env.name(lid, 'LayerName')}:1"), {}
    ),
    "AWS::StepFunctions::StateMachine": _Type(
        ("StateMachineName",),
        _state_machine_arn,
        {"Arn": _state_machine_arn, "Name": _n("StateMachineName")},
    ),
    "AWS::Events::EventBus": _Type(("Name",), _n("Name"), {"Arn": _bus_arn, "Name": _n("Name")}),
    "AWS::Events::Rule": _Type(("Name",), _n("Name"), {"Arn": _rule_arn}),
    "AWS::Events::Archive": _Type(
        ("ArchiveName",),
        _n("ArchiveName"),
        {"Arn": lambda env, lid: env.arn("events", f"archive/{env.name(lid, 'ArchiveName')}")},
    ),
    "AWS::Logs::LogGroup": _Type(("LogGroupName",), _n("LogGroupName"), {"Arn": _log_group_arn}),
    "AWS::IAM::Role": _Type(
        ("RoleName",), _n("RoleName"), {"Arn": _role_arn, "RoleId": lambda env, lid: env.generated_id(lid)}
    ),
    "AWS::IAM::Policy": _Type(("PolicyName",), lambda env, lid: env.generated_id(lid), {}),
    "AWS::IAM::ManagedPolicy": _Type(
        ("ManagedPolicyName",),
        lambda env, lid: env.arn("iam", f"policy/{env.name(lid, 'ManagedPolicyName')}", region=False),
        {},
    ),
    "AWS::SecretsManager::Secret": _Type(("Name",), _secret_arn, {"Id": _secret_arn}),
    "AWS::KMS::Key": _Type(
        (),
        lambda env, lid: env.generated_id(lid),
        {"Arn": _key_arn, "KeyId": lambda env, lid: env.generated_id(lid)},
    ),
    "AWS::KMS::Alias": _Type(("AliasName",), _n("AliasName"), {}),
    "AWS::SageMaker::Endpoint": _Type(
        ("EndpointName",),
        _sagemaker("endpoint", "EndpointName"),
        {"EndpointName": _n("EndpointName")},
    ),
    "AWS::SageMaker::EndpointConfig": _Type(
        ("EndpointConfigName",),
        _sagemaker("endpoint-config", "EndpointConfigName"),
        {"EndpointConfigName": _n("EndpointConfigName")},
    ),
    "AWS::SageMaker::Model": _Type(
        ("ModelName",), _sagemaker("model", "ModelName"), {"ModelName": _n("ModelName")}
    ),
    "AWS::SageMaker::ModelPackageGroup": _Type(
        ("ModelPackageGroupName",),
        _sagemaker("model-package-group", "ModelPackageGroupName"),
        {"ModelPackageGroupArn": _sagemaker("model-package-group", "ModelPackageGroupName")},
    ),
    "AWS::CloudTrail::Trail": _Type(
        ("TrailName",),
        _n("TrailName"),
        {"Arn": lambda env, lid: env.arn("cloudtrail", f"trail/{env.name(lid, 'TrailName')}")},
    ),
    "AWS::CloudWatch::Alarm": _Type(
        ("AlarmName",),
        _n("AlarmName"),
        {"Arn": lambda env, lid: env.arn("cloudwatch", f"alarm:{env.name(lid, 'AlarmName')}")},
    ),
    "AWS::ApiGatewayV2::Api": _Type(
        (),
        lambda env, lid: env.generated_id(lid)[:10],
        {
            "ApiId": lambda env, lid: env.generated_id(lid)[:10],
            "ApiEndpoint": lambda env, lid: (
                f"https://{env.generated_id(lid)[:10]}.execute-api.{env.region}.{env.url_suffix}"
            ),
        },
    ),
}


_OTHER = _Type((), _n(), {})


def physical_name(template: Mapping[str, Any], logical_id: str, **kwargs: Any) -> str:
    """What ``Ref`` would return for the name of ``logical_id`` (for callers building maps)."""
    return str(resolve_intrinsics({"Ref": logical_id}, template, **kwargs))


def resolve_intrinsics(
    value: Any,
    template: Mapping[str, Any],
    *,
    account: str,
    region: str,
    partition: str = "aws",
    physical_ids: Mapping[str, str] | None = None,
    exports: Mapping[str, Any] | None = None,
    stack_name: str = "",
    parameters: Mapping[str, Any] | None = None,
) -> Any:
    """``value`` (any part of ``template``) with every intrinsic replaced by its deployed value.

    ``exports`` maps export names to values for ``Fn::ImportValue`` (``exports_of`` builds it
    from the other stacks' templates); ``parameters`` gives template parameters a value
    (else their ``Default``). Raises ``UnresolvedError`` for anything it cannot compute.
    """
    env = _Env(
        template=template,
        account=account,
        region=region,
        partition=partition,
        physical_ids=physical_ids or {},
        exports=exports or {},
        stack_name=stack_name,
        parameters=parameters or {},
    )
    resolved = _resolve(value, env)
    return None if resolved is _NO_VALUE else resolved


def exports_of(
    templates: Mapping[str, Mapping[str, Any]],
    *,
    account: str,
    region: str,
    partition: str = "aws",
    physical_ids: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Every ``Export`` of ``templates`` (stack name -> template), resolved, by export name.

    Exports that import from other stacks are resolved in dependency order (a few passes).
    """
    exports: dict[str, Any] = {}
    pending = [
        (stack, output)
        for stack, template in templates.items()
        for output in template.get("Outputs", {}).values()
        if "Export" in output
    ]
    for _ in range(len(pending) + 1):
        still: list[tuple[str, Mapping[str, Any]]] = []
        for stack, output in pending:
            kwargs: dict[str, Any] = {
                "account": account,
                "region": region,
                "partition": partition,
                "physical_ids": physical_ids,
                "exports": exports,
                "stack_name": stack,
            }
            try:
                name = resolve_intrinsics(output["Export"]["Name"], templates[stack], **kwargs)
                exports[str(name)] = resolve_intrinsics(output["Value"], templates[stack], **kwargs)
            except UnresolvedError:
                still.append((stack, output))
        if not still:
            break
        pending = still
    return exports


def _resolve(value: Any, env: _Env) -> Any:
    if isinstance(value, list):
        items = [_resolve(item, env) for item in value]
        return [item for item in items if item is not _NO_VALUE]
    if not isinstance(value, Mapping):
        return value
    if len(value) == 1:
        ((key, argument),) = value.items()
        if key == "Ref":
            return _ref(str(argument), env)
        if key == "Condition":
            return value  # a condition name inside Fn::And/Or/Not, handled there
        function = _FUNCTIONS.get(key)
        if function is not None:
            return function(argument, env)
        if key.startswith("Fn::"):
            raise UnresolvedError(f"unsupported intrinsic function {key}")
    members = {key: _resolve(item, env) for key, item in value.items()}
    return {key: item for key, item in members.items() if item is not _NO_VALUE}


def _pseudo(name: str, env: _Env) -> Any:
    values: dict[str, Any] = {
        "AWS::AccountId": env.account,
        "AWS::Region": env.region,
        "AWS::Partition": env.partition,
        "AWS::URLSuffix": env.url_suffix,
        "AWS::StackName": env.stack_name,
        "AWS::StackId": env.arn(
            "cloudformation", f"stack/{env.stack_name}/{env.generated_id('AWS::StackId')}"
        ),
        "AWS::NoValue": _NO_VALUE,
    }
    if name not in values:
        raise UnresolvedError(f"unsupported pseudo parameter {name}")
    return values[name]


def _ref(name: str, env: _Env) -> Any:
    if name.startswith("AWS::"):
        return _pseudo(name, env)
    parameters = env.template.get("Parameters", {})
    if name in parameters:
        if name in env.parameters:
            return env.parameters[name]
        if "Default" in parameters[name]:
            return parameters[name]["Default"]
        raise UnresolvedError(f"parameter {name} has no value")
    kind = _type(name, env)
    return kind.ref(env, name)


def _type(logical_id: str, env: _Env) -> _Type:
    resource_type = str(env.resource(logical_id).get("Type"))
    # Other types: Ref is the physical id (the caller's map, else the logical id); no GetAtt.
    return _TYPES.get(resource_type, _OTHER)


def _get_att(argument: Any, env: _Env) -> str:
    if isinstance(argument, str):
        logical_id, _, attribute = argument.partition(".")
    else:
        logical_id, attribute = str(argument[0]), str(_resolve(argument[1], env))
    kind = _type(logical_id, env)
    if attribute not in kind.attributes:
        resource_type = env.resource(logical_id).get("Type")
        raise UnresolvedError(f"no GetAtt rule for {resource_type}.{attribute} ({logical_id})")
    return kind.attributes[attribute](env, logical_id)


def _join(argument: Any, env: _Env) -> str:
    delimiter, items = argument
    resolved = _resolve(items, env)
    return str(delimiter).join(str(item) for item in resolved)


def _sub(argument: Any, env: _Env) -> str:
    if isinstance(argument, str):
        text, variables = argument, {}
    else:
        text, variables = argument[0], _resolve(argument[1], env)

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        if name in variables:
            return str(variables[name])
        if "." in name and not name.startswith("AWS::"):
            return _get_att(name, env)
        return str(_ref(name, env))

    return _SUB_VARIABLE.sub(replace, text)


def _select(argument: Any, env: _Env) -> Any:
    index, items = argument
    resolved = _resolve(items, env)
    return resolved[int(_resolve(index, env))]


def _split(argument: Any, env: _Env) -> list[str]:
    delimiter, text = argument
    return str(_resolve(text, env)).split(str(delimiter))


def _import_value(argument: Any, env: _Env) -> Any:
    name = str(_resolve(argument, env))
    if name not in env.exports:
        raise UnresolvedError(f"no export named {name!r}")
    return env.exports[name]


def _find_in_map(argument: Any, env: _Env) -> Any:
    map_name, top, second = (_resolve(a, env) for a in argument)
    try:
        return _resolve(env.template["Mappings"][map_name][top][second], env)
    except KeyError as error:
        raise UnresolvedError(f"Fn::FindInMap {map_name}/{top}/{second} not found") from error


def _condition(name: str, env: _Env) -> bool:
    conditions = env.template.get("Conditions", {})
    if name not in conditions:
        raise UnresolvedError(f"no condition {name!r}")
    return _truth(conditions[name], env)


def _truth(value: Any, env: _Env) -> bool:
    if isinstance(value, Mapping) and set(value) == {"Condition"}:
        return _condition(str(value["Condition"]), env)
    resolved = _resolve(value, env)
    if isinstance(resolved, bool):
        return resolved
    return str(resolved).lower() == "true"


def _if(argument: Any, env: _Env) -> Any:
    name, when_true, when_false = argument
    return _resolve(when_true if _condition(str(name), env) else when_false, env)


def _equals(argument: Any, env: _Env) -> bool:
    left, right = (_resolve(a, env) for a in argument)
    return bool(left == right)


def _and(argument: Any, env: _Env) -> bool:
    return all(_truth(a, env) for a in argument)


def _or(argument: Any, env: _Env) -> bool:
    return any(_truth(a, env) for a in argument)


def _not(argument: Any, env: _Env) -> bool:
    return not _truth(argument[0], env)


def _base64(argument: Any, env: _Env) -> str:
    return base64.b64encode(str(_resolve(argument, env)).encode()).decode()


_FUNCTIONS: dict[str, Callable[[Any, _Env], Any]] = {
    "Fn::GetAtt": _get_att,
    "Fn::Join": _join,
    "Fn::Sub": _sub,
    "Fn::Select": _select,
    "Fn::Split": _split,
    "Fn::ImportValue": _import_value,
    "Fn::FindInMap": _find_in_map,
    "Fn::If": _if,
    "Fn::Equals": _equals,
    "Fn::And": _and,
    "Fn::Or": _or,
    "Fn::Not": _not,
    "Fn::Base64": _base64,
}


__all__ = ["UnresolvedError", "exports_of", "physical_name", "resolve_intrinsics"]
