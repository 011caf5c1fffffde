"""The CDK app: renders the platform description into stacks, checked by cdk-nag.

``cdk synth`` (cdk.json) and ``make synth`` run this module; neither needs an AWS account.
"""

from __future__ import annotations

import os
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infrastructure.platform import PLATFORM, Platform
from infrastructure.settings import DeploymentSettings, cdk_json_context
from infrastructure.stacks.data import DataStack
from infrastructure.stacks.models import ModelsStack
from infrastructure.stacks.platform import PlatformStack


class AiosStacks:
    """The stacks of one deployment, split by lifecycle: data outlives platform code."""

    def __init__(self, app: cdk.App, *, platform: Platform, settings: DeploymentSettings) -> None:
        environment = cdk.Environment(
            account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")
        )
        self.data = DataStack(
            app,
            settings.name("data"),
            platform=platform,
            settings=settings,
            env=environment,
            termination_protection=settings.is_production,
            description="aios: key, tables, buckets and audit trail (stateful)",
        )
        self.platform = PlatformStack(
            app,
            settings.name("platform"),
            platform=platform,
            data=self.data,
            settings=settings,
            env=environment,
            description="aios: bus, functions, workflows and HTTP API",
        )
        self.models = ModelsStack(
            app,
            settings.name("models"),
            platform=platform,
            data=self.data,
            settings=settings,
            env=environment,
            description="aios: the served models, their SageMaker endpoints (blue/green) and autoscaling",
        )
        # The functions call the endpoint the models stack deploys, in the version it deploys.
        self.platform.add_stack_dependency(self.models)
        for stack in (self.data, self.platform, self.models):
            cdk.Tags.of(stack).add("aios:stage", settings.stage)

    @property
    def all(self) -> list[cdk.Stack]:
        return [self.data, self.models, self.platform]


def build_app(
    *,
    outdir: str | Path | None = None,
    context: dict[str, object] | None = None,
    platform: Platform = PLATFORM,
) -> tuple[cdk.App, AiosStacks]:
    # Command-line context (-c key=value, or ``context`` here) wins over cdk.json.
    app = cdk.App(outdir=str(outdir) if outdir else None, context={**cdk_json_context(), **(context or {})})
    settings = DeploymentSettings.from_app(app)
    stacks = AiosStacks(app, platform=platform, settings=settings)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stacks


def main() -> None:
    app, _ = build_app()
    app.synth()


if __name__ == "__main__":
    main()
