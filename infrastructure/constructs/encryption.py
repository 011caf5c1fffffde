"""The customer-managed key that encrypts every aios resource at rest."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infrastructure.settings import DeploymentSettings


class PlatformKey(Construct):
    """One KMS key with rotation on, usable by the AWS services that write aios data.

    Service principals are admitted by key policy, each scoped by a condition to this
    account (and, for CloudWatch Logs, to log groups of this account and region), because
    they act before any of our IAM roles exist.
    """

    def __init__(self, scope: Construct, construct_id: str, *, settings: DeploymentSettings) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.key = kms.Key(
            self,
            "Key",
            alias=f"alias/{settings.name('platform')}",
            description="aios: encryption at rest for tables, buckets, queues, logs, trail and secrets",
            enable_key_rotation=True,
            removal_policy=settings.removal_policy,
        )
        this_account = {"StringEquals": {"aws:SourceAccount": stack.account}}
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsOfThisAccount",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=[
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:*"
                        )
                    }
                },
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailOfThisAccount",
                principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
                actions=["kms:GenerateDataKey*", "kms:DescribeKey"],
                resources=["*"],
                conditions={
                    "StringLike": {
                        "kms:EncryptionContext:aws:cloudtrail:arn": (
                            f"arn:{stack.partition}:cloudtrail:*:{stack.account}:trail/*"
                        )
                    }
                },
            )
        )
        # EventBridge encrypts the bus and its archive with this key, and writes undeliverable
        # events to the KMS-encrypted dead-letter queue.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EventBridgeOfThisAccount",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                resources=["*"],
                conditions=this_account,
            )
        )
