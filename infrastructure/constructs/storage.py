"""Tables and buckets of the platform description, encrypted with the platform key."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infrastructure.platform.spec import KeyAttribute, Platform
from infrastructure.settings import DeploymentSettings

_ATTRIBUTE_TYPES = {"S": dynamodb.AttributeType.STRING, "N": dynamodb.AttributeType.NUMBER}


def auto_delete_resource(bucket: s3.IBucket) -> Construct | None:
    """The custom resource that empties ``bucket`` on stack deletion (dev only), if any."""
    child = bucket.node.try_find_child("AutoDeleteObjectsCustomResource")
    return child if isinstance(child, Construct) else None


def access_logs_bucket(scope: Construct, *, settings: DeploymentSettings) -> s3.Bucket:
    """``AccessLogs``: where S3 server access logs of ``scope``'s buckets go (a year)."""
    return s3.Bucket(
        scope,
        "AccessLogs",
        encryption=s3.BucketEncryption.S3_MANAGED,  # log delivery cannot write to SSE-KMS
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        versioned=True,
        lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
        removal_policy=settings.removal_policy,
        auto_delete_objects=not settings.is_production,
    )


def encrypted_bucket(
    scope: Construct,
    construct_id: str,
    *,
    name_part: str,
    key: kms.IKey,
    settings: DeploymentSettings,
    access_logs: s3.IBucket,
    lifecycle_rules: list[s3.LifecycleRule] | None = None,
) -> s3.Bucket:
    """A platform bucket: KMS with a bucket key, TLS only, private, versioned, access-logged
    under ``<name_part>/``, emptied on ``cdk destroy`` outside production."""
    stack = Stack.of(scope)
    return s3.Bucket(
        scope,
        construct_id,
        bucket_name=settings.bucket_name(name_part, account=stack.account, region=stack.region),
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        bucket_key_enabled=True,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        versioned=True,
        lifecycle_rules=lifecycle_rules,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=f"{name_part}/",
        removal_policy=settings.removal_policy,
        auto_delete_objects=not settings.is_production,
    )


def _attribute(key: KeyAttribute) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=key.name, type=_ATTRIBUTE_TYPES[key.type])


class Tables(Construct):
    """Every DynamoDB table: on-demand, KMS, point-in-time recovery, protected in production."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        platform: Platform,
        key: kms.IKey,
        settings: DeploymentSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        self.by_id: dict[str, dynamodb.Table] = {}
        for spec in platform.tables:
            # Table (not TableV2): TableV2 cannot render a customer-managed key in an
            # environment-agnostic stack, and synth must work without an account.
            table = dynamodb.Table(
                self,
                spec.id,
                table_name=settings.name(spec.id),
                partition_key=_attribute(spec.partition_key),
                sort_key=_attribute(spec.sort_key) if spec.sort_key else None,
                time_to_live_attribute=spec.ttl_attribute,
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
                encryption_key=key,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True
                ),
                deletion_protection=settings.is_production,
                removal_policy=settings.removal_policy,
            )
            for index in spec.indexes:
                table.add_global_secondary_index(
                    index_name=index.name,
                    partition_key=_attribute(index.partition_key),
                    sort_key=_attribute(index.sort_key) if index.sort_key else None,
                    projection_type=dynamodb.ProjectionType[index.projection],
                )
            self.by_id[spec.id] = table


class Buckets(Construct):
    """The description's buckets plus the audit bucket, all access-logged.

    Server access logs cannot be delivered to an SSE-KMS bucket, so the access-log bucket
    alone uses S3-managed keys; it holds request metadata, never documents.

    Every bucket is versioned, and CloudFormation cannot delete a bucket that still holds
    objects or versions: in dev, CDK's auto-delete custom resource empties each bucket
    (every version) before ``cdk destroy`` deletes it; production buckets are retained.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        platform: Platform,
        key: kms.IKey,
        settings: DeploymentSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = access_logs_bucket(self, settings=settings)
        self.by_id: dict[str, s3.Bucket] = {
            spec.id: self._encrypted_bucket(spec.id, key=key, settings=settings) for spec in platform.buckets
        }
        self.audit = self._encrypted_bucket("audit", key=key, settings=settings)

    def _encrypted_bucket(self, bucket_id: str, *, key: kms.IKey, settings: DeploymentSettings) -> s3.Bucket:
        return encrypted_bucket(
            self, bucket_id, name_part=bucket_id, key=key, settings=settings, access_logs=self.access_logs
        )
