"""The deployed policies of a synthesized app, as AWS would evaluate them.

``DeployedPolicies`` resolves every intrinsic of the templates for one made-up account and
region (``infrastructure.iam.template``) and hands out the statements of the key policy, of a
bucket's or queue's resource policy and of a role's identity policies, so a contract test can
ask ``infrastructure.iam.policy.evaluate`` what AWS would decide on a documented request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from infrastructure.iam.policy import Decision, Request, evaluate, statements_of
from infrastructure.iam.template import exports_of, resolve_intrinsics

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
REGION = "eu-central-1"
PARTITION = "aws"


@dataclass(frozen=True)
class Contract:
    """One documented request of a service and what our policy must answer to it."""

    id: str
    doc: str
    policy: str  # "key", "bucket:<name>", "queue:<name>", "role:<function name>"
    action: str
    resource: str
    principal: Mapping[str, str] | None = None
    context: Mapping[str, str | list[str]] = field(default_factory=dict)
    allowed: bool = True

    def request(self) -> Request:
        return Request(
            action=self.action, resource=self.resource, principal=self.principal, context=self.context
        )


class DeployedPolicies:
    def __init__(self, templates: Mapping[str, Mapping[str, Any]]) -> None:
        self.templates = templates
        self.exports = exports_of(templates, account=ACCOUNT, region=REGION, partition=PARTITION)

    def resolve(self, stack: str, value: Any) -> Any:
        return resolve_intrinsics(
            value,
            self.templates[stack],
            account=ACCOUNT,
            region=REGION,
            partition=PARTITION,
            exports=self.exports,
            stack_name=stack,
        )

    def resources(self, resource_type: str) -> list[tuple[str, str, Mapping[str, Any]]]:
        """``(stack, logical id, resource)`` of every resource of ``resource_type``."""
        return [
            (stack, logical_id, resource)
            for stack, template in self.templates.items()
            for logical_id, resource in template.get("Resources", {}).items()
            if resource["Type"] == resource_type
        ]

    def key_arn(self) -> str:
        [(stack, logical_id, _)] = self.resources("AWS::KMS::Key")
        return str(self.resolve(stack, {"Fn::GetAtt": [logical_id, "Arn"]}))

    def key_policy(self) -> list[dict[str, Any]]:
        [(stack, _, key)] = self.resources("AWS::KMS::Key")
        return statements_of(self.resolve(stack, key["Properties"]["KeyPolicy"]))

    def _named(self, resource_type: str, name_property: str | None, name: str) -> tuple[str, str]:
        """The resource whose ``name_property`` (``None``: whose ``Ref``) resolves to ``name``."""
        for stack, logical_id, resource in self.resources(resource_type):
            value = resource["Properties"].get(name_property) if name_property else {"Ref": logical_id}
            if value is not None and self.resolve(stack, value) == name:
                return stack, logical_id
        raise AssertionError(f"no {resource_type} named {name}")

    def bucket_policy(self, bucket: str) -> list[dict[str, Any]]:
        stack, logical_id = self._named("AWS::S3::Bucket", None, bucket)
        statements: list[dict[str, Any]] = []
        for _, _, policy in self.resources("AWS::S3::BucketPolicy"):
            if policy["Properties"]["Bucket"] == {"Ref": logical_id}:
                statements += statements_of(self.resolve(stack, policy["Properties"]["PolicyDocument"]))
        return statements

    def bucket_name(self, logical_prefix: str) -> str:
        """The physical name of the bucket whose logical id starts with ``logical_prefix``."""
        [(stack, logical_id)] = [
            (stack, logical_id)
            for stack, logical_id, _ in self.resources("AWS::S3::Bucket")
            if logical_id.startswith(logical_prefix)
        ]
        return str(self.resolve(stack, {"Ref": logical_id}))

    def queue_policy(self, queue: str) -> list[dict[str, Any]]:
        stack, logical_id = self._named("AWS::SQS::Queue", "QueueName", queue)
        statements: list[dict[str, Any]] = []
        for _, _, policy in self.resources("AWS::SQS::QueuePolicy"):
            if {"Ref": logical_id} in policy["Properties"]["Queues"]:
                statements += statements_of(self.resolve(stack, policy["Properties"]["PolicyDocument"]))
        return statements

    def role_policy(self, function: str) -> list[dict[str, Any]]:
        """The identity policies of the role of the Lambda function named ``function``."""
        stack, logical_id = self._named("AWS::Lambda::Function", None, function)
        role = self.templates[stack]["Resources"][logical_id]["Properties"]["Role"]["Fn::GetAtt"][0]
        statements: list[dict[str, Any]] = []
        for _, _, policy in self.resources("AWS::IAM::Policy"):
            if {"Ref": role} in policy["Properties"].get("Roles", []):
                statements += statements_of(self.resolve(stack, policy["Properties"]["PolicyDocument"]))
        return statements

    def statements(self, policy: str) -> list[dict[str, Any]]:
        kind, _, name = policy.partition(":")
        if kind == "key":
            return self.key_policy()
        return {"bucket": self.bucket_policy, "queue": self.queue_policy, "role": self.role_policy}[kind](
            name
        )

    def decide(self, contract: Contract) -> Decision:
        return evaluate(self.statements(contract.policy), contract.request())
