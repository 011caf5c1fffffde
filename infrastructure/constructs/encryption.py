"""The customer-managed key that encrypts every aios resource at rest."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infrastructure.constructs.audit import trail_name
from infrastructure.constructs.bus import archive_name, bus_name
from infrastructure.constructs.functions import schedule_rule_name
from infrastructure.constructs.workflows import failure_rule_name
from infrastructure.platform.spec import Platform
from infrastructure.settings import DeploymentSettings


class PlatformKey(Construct):
    """One KMS key with rotation on, usable by the AWS services that write aios data.

    Service principals are admitted by key policy because they act before any of our IAM
    roles exist. Each statement is the one the service documents, scoped to our own
    resources by ``aws:SourceArn`` (against the confused deputy) and, where the service sets
    one, by the encryption context. The resources live in other stacks, so their ARNs are
    built from the physical names ``DeploymentSettings`` gives them, not referenced (which
    would make this stack depend on those). ``tests/infrastructure/test_policy_contracts.py``
    evaluates every statement against the service's documented requests.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, platform: Platform, settings: DeploymentSettings
    ) -> None:
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
        partition, region, account = stack.partition, stack.region, stack.account
        this_account = {"aws:SourceAccount": account}

        # https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsOfThisAccount",
                principals=[iam.ServicePrincipal(f"logs.{region}.amazonaws.com")],
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
                            f"arn:{partition}:logs:{region}:{account}:log-group:*"
                        )
                    }
                },
            )
        )

        # https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-kms-key-policy-for-cloudtrail.html
        # and the console's default policy (default-kms-key-policy.html): encrypt with the
        # trail's encryption context; Decrypt because the audit bucket uses an S3 Bucket Key;
        # DescribeKey on its own, unconditioned (a DescribeKey call carries no encryption
        # context, so the old combined statement refused it: InsufficientEncryptionPolicy).
        this_trail = {
            "aws:SourceArn": f"arn:{partition}:cloudtrail:{region}:{account}:trail/{trail_name(settings)}"
        }
        trails_of_this_account = f"arn:{partition}:cloudtrail:*:{account}:trail/*"
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailEncryptLogs",
                principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
                actions=["kms:GenerateDataKey*"],
                resources=["*"],
                conditions={
                    "StringEquals": this_trail,
                    "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": trails_of_this_account},
                },
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailDecryptWithBucketKey",
                principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
                actions=["kms:Decrypt"],
                resources=["*"],
                conditions={"StringEquals": this_trail},
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailDescribeKey",
                principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
                actions=["kms:DescribeKey"],
                resources=["*"],
            )
        )

        # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-encryption-key-policy.html,
        # eb-encryption-event-bus-cmkey.html and encryption-archives.html: the bus, its rules,
        # archive and replays use the bus ARN as encryption context; the archive also
        # re-encrypts. DescribeKey (key ARN and symmetry check) carries no context.
        # ``aws:SourceArn`` is checked where the request carries it (IfExists): the docs
        # recommend it, but do not say that the archive's and SQS's calls on EventBridge's
        # behalf always carry it, and a refused call there loses events silently.
        events_arn = f"arn:{partition}:events:{region}:{account}"
        bus = bus_name(platform.bus, settings)
        bus_arn = f"{events_arn}:event-bus/{bus}"
        on_our_bus = [
            bus_arn,
            f"{events_arn}:rule/{bus}/*",
            f"{events_arn}:archive/{archive_name(platform.bus, settings)}",
            f"{events_arn}:replay/*",
        ]
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EventBridgeBusAndArchive",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:GenerateDataKey", "kms:Decrypt", "kms:ReEncrypt*"],
                resources=["*"],
                conditions={
                    "StringEquals": {
                        **this_account,
                        "kms:EncryptionContext:aws:events:event-bus:arn": bus_arn,
                    },
                    "ArnLikeIfExists": {"aws:SourceArn": on_our_bus},
                },
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EventBridgeDescribeKey",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:DescribeKey"],
                resources=["*"],
            )
        )
        # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html
        # ("Configure KMS permissions for AWS services"): EventBridge sending to the
        # KMS-encrypted dead-letter queue, for the bus itself and for its rules' targets (the
        # SQS queue policy admits the same sources, PlatformBus).
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EventBridgeToDeadLetterQueue",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=["*"],
                conditions={
                    "StringEquals": this_account,
                    "ArnLikeIfExists": {
                        "aws:SourceArn": [
                            bus_arn,
                            f"{events_arn}:rule/{bus}/*",
                            # Scheduled functions' rules, on the default bus (constructs/functions.py).
                            *(
                                f"{events_arn}:rule/{schedule_rule_name(spec, settings)}"
                                for spec in platform.functions
                                if spec.schedule
                            ),
                            # Workflows' on-failure rules, on the default bus too (constructs/workflows.py).
                            *(
                                f"{events_arn}:rule/{failure_rule_name(workflow, settings)}"
                                for workflow in platform.workflows
                                if workflow.on_failure
                            ),
                        ]
                    },
                },
            )
        )
        # https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services:
        # CloudWatch alarms of this deployment (aios-<stage>-*) publishing to the KMS-encrypted
        # alarm topic (constructs/monitoring.py).
        alarms = f"arn:{partition}:cloudwatch:{region}:{account}:alarm"
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsToAlarmTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={
                    "StringEquals": this_account,
                    "ArnLike": {"aws:SourceArn": f"{alarms}:{settings.name('')}*"},
                },
            )
        )
