"""CloudTrail: the audit trail of every API call, plus data events on lineage and documents."""

from __future__ import annotations

from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infrastructure.constructs.log_groups import encrypted_log_group
from infrastructure.settings import DeploymentSettings


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
        self.trail = cloudtrail.Trail(
            self,
            "Trail",
            trail_name=settings.name("audit"),
            bucket=bucket,
            encryption_key=key,
            is_multi_region_trail=True,
            include_global_service_events=True,
            enable_file_validation=True,
            send_to_cloud_watch_logs=True,
            cloud_watch_log_group=log_group,
        )
        selectors: list[cloudtrail.CfnTrail.AdvancedEventSelectorProperty] = [
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
        cfn_trail = self.trail.node.default_child
        assert isinstance(cfn_trail, cloudtrail.CfnTrail)
        cfn_trail.advanced_event_selectors = selectors

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
