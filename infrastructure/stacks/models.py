"""The model serving stack: the models' buckets, and per model of the platform description
its registry group and version, SageMaker endpoint, rollback alarms and autoscaling.

Its own stack because its lifecycle is the models': a new artifact (``make model``) changes
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
from infrastructure.platform.spec import ModelSpec, Platform, camel
from infrastructure.settings import DeploymentSettings
from infrastructure.stacks.data import DataStack


class ModelsStack(Stack):
    """Artifact and capture buckets (shared), and for each model: registry group and version,
    model, endpoint config, endpoint, rollback alarms, autoscaling."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        platform: Platform,
        data: DataStack,
        settings: DeploymentSettings,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # Before any grant: the key's stack must not get a policy that points back here.
        self.add_stack_dependency(data)
        self.settings = settings
        self.options = ServingOptions.from_scope(self)
        self.storage = ModelStorage(self, "Storage", key=data.key, settings=settings, options=self.options)
        self.endpoints: dict[str, ModelEndpoint] = {}
        for index, model in enumerate(platform.models):
            self.endpoints[model.name] = self._serve(model, key=data.key, first=index == 0)

    def _serve(self, model: ModelSpec, *, key: Any, first: bool) -> ModelEndpoint:
        """One model's image, published artifact, registry and endpoint.

        The first model keeps the ids it had when it was the only one (``ServingImages``,
        ``PublishArtifact``, ``Registry``, ``EndpointName``...): a new logical id would replace
        its named endpoint, which CloudFormation refuses. Every other model's ids start with
        its name; the endpoint construct is the model's name for all.
        """
        prefix = "" if first else camel(model.name)
        version = artifact_version(model)
        entry = approved_package(model, version)
        choice = serving_choice(model, self.settings)
        image = serving_image(self, choice.instance_type, mapping_id=f"{prefix}ServingImages")
        artifact = publish_artifact(
            self,
            model=model,
            bucket=self.storage.artifacts,
            model_version=version,
            choice=choice,
            construct_id=f"{prefix}PublishArtifact",
        )
        registry = ModelRegistry(
            self,
            f"{prefix}Registry",
            model=model,
            settings=self.settings,
            model_version=version,
            entry=entry,
            image=image,
            artifact=artifact,
            choice=choice,
        )
        endpoint = ModelEndpoint(
            self,
            camel(model.name),
            model=model,
            endpoint_name=endpoint_name(model, self.settings),
            model_version=version,
            key=key,
            storage=self.storage,
            image=image,
            artifact=artifact,
            registry=registry,
            choice=choice,
            settings=self.settings,
            options=self.options,
        )
        CfnOutput(self, f"{prefix}EndpointName", value=endpoint.endpoint.attr_endpoint_name)
        CfnOutput(self, f"{prefix}ModelVersion", value=version)
        CfnOutput(self, f"{prefix}ModelPackageArn", value=registry.package_arn)
        return endpoint
