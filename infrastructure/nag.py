"""cdk-nag acknowledgements. Each is made where its resource is built, with its own reason."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct

#: Actions AWS accepts only on ``"Resource": "*"``: tracing and CloudWatch log-delivery setup.
#: None reads or writes platform data; the infrastructure tests allow ``*`` for these alone.
STAR_ONLY_ACTIONS = frozenset(
    {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "logs:CreateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:DescribeLogGroups",
        "logs:DescribeResourcePolicies",
        "logs:GetLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:UpdateLogDelivery",
        # SageMaker's image pull: the token action takes "*" only (pull actions stay scoped).
        "ecr:GetAuthorizationToken",
    }
)


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding on ``scope`` and everything below it."""
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule_id, reason=reason))


def acknowledge_grant_wildcards(scope: IConstruct, *, what: str) -> None:
    """The action and resource wildcards CDK's ``grant_*`` methods write, for ``what``."""
    reasons = {
        "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]": (
            f"{what}: written by grant_* for the platform key; covers GenerateDataKey and "
            "GenerateDataKeyWithoutPlaintext on that one key ARN"
        ),
        "AwsSolutions-IAM5[Action::kms:ReEncrypt*]": (
            f"{what}: written by grant_* for the platform key; ReEncryptFrom/To on that one key ARN"
        ),
        "AwsSolutions-IAM5[Resource::*]": (
            f"{what}: only X-Ray tracing and CloudWatch log-delivery actions, which AWS accepts on "
            "'*' alone (checked by tests/infrastructure against STAR_ONLY_ACTIONS)"
        ),
    }
    for rule_id, reason in reasons.items():
        acknowledge(scope, rule_id, reason)
