"""The model serving stack: the anomaly model's buckets, registry and SageMaker endpoint.

Its own stack because its lifecycle is the model's: a new artifact (``make model``) changes
this stack alone, registers a new model package version, and SageMaker rolls the approved
version out blue/green, rolling back on the endpoint's alarms.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infrastructure.constructs.model_serving import (
    ModelEndpoint,
    ModelRegistry,
    ModelStorage,
    ServingOptions,
    publish_artifact,
    serving_image,
)
from infrastructure.platform.models import (
    approved_package,
    artifact_version,
    endpoint_name,
    serving_choice,
)
from infrastructure.settings import DeploymentSettings
from infrastructure.stacks.data import DataStack


class ModelsStack(Stack):
    """Artifact and capture buckets, registry group and version, model, endpoint config,
    endpoint, rollback alarms, autoscaling."""

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
        entry = approved_package(self.model_version)
        options = ServingOptions.from_scope(self)
        self.choice = serving_choice(settings)
        image = serving_image(self, self.choice.instance_type)
        self.storage = ModelStorage(self, "Storage", key=data.key, settings=settings, options=options)
        artifact = publish_artifact(
            self, bucket=self.storage.artifacts, model_version=self.model_version, choice=self.choice
        )
        self.registry = ModelRegistry(
            self,
            "Registry",
            settings=settings,
            model_version=self.model_version,
            entry=entry,
            image=image,
            artifact=artifact,
            choice=self.choice,
        )
        self.serving = ModelEndpoint(
            self,
            "InvoiceAnomaly",
            endpoint_name=endpoint_name(settings),
            model_version=self.model_version,
            key=data.key,
            storage=self.storage,
            image=image,
            artifact=artifact,
            registry=self.registry,
            choice=self.choice,
            settings=settings,
            options=options,
        )
        CfnOutput(self, "EndpointName", value=self.serving.endpoint.attr_endpoint_name)
        CfnOutput(self, "ModelVersion", value=self.model_version)
        CfnOutput(self, "ModelPackageArn", value=self.registry.package_arn)
