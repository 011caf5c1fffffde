"""The data stack's tables and buckets as the platform stack sees them: by physical name.

Referencing them by name (both names derive from ``DeploymentSettings``) instead of by
CloudFormation export keeps the stacks' lifecycles apart: the data stack can change what
it exports without first redeploying every consumer, and IAM resources read as real names
(``table/aios-dev-lineage``) in policies, findings and the console.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infrastructure.platform.spec import Platform
from infrastructure.settings import DeploymentSettings


class DataReferences(Construct):
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
        stack = Stack.of(self)
        self.tables: dict[str, dynamodb.ITable] = {
            spec.id: dynamodb.Table.from_table_attributes(
                self,
                f"{spec.id}-table",
                table_name=settings.name(spec.id),
                encryption_key=key,
                global_indexes=[index.name for index in spec.indexes],
            )
            for spec in platform.tables
        }
        self.buckets: dict[str, s3.IBucket] = {
            spec.id: s3.Bucket.from_bucket_attributes(
                self,
                f"{spec.id}-bucket",
                bucket_name=settings.bucket_name(spec.id, account=stack.account, region=stack.region),
                encryption_key=key,
            )
            for spec in platform.buckets
        }
