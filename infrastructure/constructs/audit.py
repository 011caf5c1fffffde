"""CloudTrail: the audit trail of every API call, plus data events on lineage and documents."""

from __future__ import annotations

from aws_cdk import IResolvable, Stack
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infrastructure.constructs.log_groups import encrypted_log_group
from infrastructure.constructs.storage import auto_delete_resource
from infrastructure.settings import DeploymentSettings


def trail_name(settings: DeploymentSettings) -> str:
    return settings.name("audit")


class AuditTrail(Construct):
    """A multi-region trail with log-file validation, encrypted with the platform key.

    Data events use advanced event selectors: they are the only kind that can name a
    DynamoDB table, and a trail cannot mix basic and advanced selectors.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        key: kms.IKey,
        data_event_tables: list[dynamodb.ITable],
        data_event_buckets: list[s3.IBucket],
        settings: DeploymentSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        log_group = encrypted_log_group(
            self,
            "Logs",
            key=key,
            settings=settings,
        )
        stack = Stack.of(self)
        name = trail_name(settings)
        # The trail's own ARN scopes what CloudTrail may do with our bucket (and key,
        # PlatformKey) against the confused deputy: https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-s3-bucket-policy-for-cloudtrail.html
        self.trail_arn = f"arn:{stack.partition}:cloudtrail:{stack.region}:{stack.account}:trail/{name}"
        this_trail = {"aws:SourceArn": self.trail_arn}
        cloudtrail_principal = iam.ServicePrincipal("cloudtrail.amazonaws.com")
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AWSCloudTrailAclCheck",
                principals=[cloudtrail_principal],
                actions=["s3:GetBucketAcl"],
                resources=[bucket.bucket_arn],
                conditions={"StringEquals": this_trail},
            )
        )
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AWSCloudTrailWrite",
                principals=[cloudtrail_principal],
                actions=["s3:PutObject"],
                resources=[bucket.arn_for_objects(f"AWSLogs/{stack.account}/*")],
                conditions={"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", **this_trail}},
            )
        )
        # https://docs.aws.amazon.com/awscloudtrail/latest/userguide/send-cloudtrail-events-to-cloudwatch-logs.html
        logs_role = iam.Role(
            self,
            "LogsRole",
            assumed_by=cloudtrail_principal,
            description="aios: CloudTrail delivers the audit trail to its log group",
        )
        logs_role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )
        # L1, not ``cloudtrail.Trail``: the L2 adds its own bucket statements, without
        # ``aws:SourceArn``, which would allow what the statements above restrict.
        self.trail = cloudtrail.CfnTrail(
            self,
            "Trail",
            trail_name=name,
            is_logging=True,
            s3_bucket_name=bucket.bucket_name,
            kms_key_id=key.key_arn,
            is_multi_region_trail=True,
            include_global_service_events=True,
            enable_log_file_validation=True,
            cloud_watch_logs_log_group_arn=log_group.log_group_arn,
            cloud_watch_logs_role_arn=logs_role.role_arn,
        )
        # CloudTrail checks the bucket policy and the role when the trail is created.
        assert bucket.policy is not None
        self.trail.node.add_dependency(bucket.policy)
        self.trail.node.add_dependency(logs_role)
        # In dev, the bucket is emptied only after the trail is gone (deletion runs in
        # reverse dependency order), so no late log file keeps ``cdk destroy`` from deleting it.
        if (emptier := auto_delete_resource(bucket)) is not None:
            self.trail.node.add_dependency(emptier)
        selectors: list[cloudtrail.CfnTrail.AdvancedEventSelectorProperty | IResolvable] = [
            cloudtrail.CfnTrail.AdvancedEventSelectorProperty(
                name="Management events",
                field_selectors=[
                    cloudtrail.CfnTrail.AdvancedFieldSelectorProperty(
                        field="eventCategory", equal_to=["Management"]
                    )
                ],
            )
        ]
        selectors += [
            self._data_selector("AWS::DynamoDB::Table", table.table_arn, f"Lineage data events {index}")
            for index, table in enumerate(data_event_tables)
        ]
        selectors += [
            self._data_selector(
                "AWS::S3::Object", bucket.arn_for_objects(""), f"Document data events {index}"
            )
            for index, bucket in enumerate(data_event_buckets)
        ]
        self.trail.advanced_event_selectors = selectors

    @staticmethod
    def _data_selector(
        resource_type: str, arn_prefix: str, name: str
    ) -> cloudtrail.CfnTrail.AdvancedEventSelectorProperty:
        return cloudtrail.CfnTrail.AdvancedEventSelectorProperty(
            name=name,
            field_selectors=[
                cloudtrail.CfnTrail.AdvancedFieldSelectorProperty(field="eventCategory", equal_to=["Data"]),
                cloudtrail.CfnTrail.AdvancedFieldSelectorProperty(
                    field="resources.type", equal_to=[resource_type]
                ),
                cloudtrail.CfnTrail.AdvancedFieldSelectorProperty(
                    field="resources.ARN", starts_with=[arn_prefix]
                ),
            ],
        )
