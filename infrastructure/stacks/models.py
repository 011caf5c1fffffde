"""The model serving stack: the anomaly model's registry group and its SageMaker endpoint.

Its own stack because its lifecycle is the model's: a new artifact (``make model``) changes
this stack alone, and SageMaker rolls it out blue/green, rolling back on the endpoint's alarms.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infrastructure.constructs.model_serving import ModelEndpoint, ModelRegistry, ServingOptions
from infrastructure.platform.default import DOCUMENTS
from infrastructure.platform.models import artifact_version, endpoint_name
from infrastructure.settings import DeploymentSettings
from infrastructure.stacks.data import DataStack


class ModelsStack(Stack):
    """Registry group, model, endpoint config, endpoint, rollback alarms, autoscaling."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data: DataStack,
        settings: DeploymentSettings,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # Before any grant: the key's stack must not get a policy that points back here.
        self.add_stack_dependency(data)
        self.model_version = artifact_version()
        # The capture bucket by name, as the platform stack references data buckets
        # (stacks/references.py): no export to keep in step.
        capture_bucket = s3.Bucket.from_bucket_attributes(
            self,
            "CaptureBucket",
            bucket_name=settings.bucket_name(DOCUMENTS.id, account=self.account, region=self.region),
            encryption_key=data.key,
        )
        self.registry = ModelRegistry(self, "Registry", settings=settings, model_version=self.model_version)
        self.serving = ModelEndpoint(
            self,
            "InvoiceAnomaly",
            endpoint_name=endpoint_name(settings),
            model_version=self.model_version,
            key=data.key,
            capture_bucket=capture_bucket,
            settings=settings,
            options=ServingOptions.from_scope(self),
        )
        CfnOutput(self, "EndpointName", value=self.serving.endpoint.attr_endpoint_name)
        CfnOutput(self, "ModelVersion", value=self.model_version)
