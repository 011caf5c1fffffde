"""Every aios log group: encrypted with the platform key, with the deployment's retention."""

from __future__ import annotations

from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from infrastructure.settings import DeploymentSettings


def encrypted_log_group(
    scope: Construct,
    construct_id: str,
    *,
    key: kms.IKey,
    settings: DeploymentSettings,
    name: str | None = None,
) -> logs.LogGroup:
    return logs.LogGroup(
        scope,
        construct_id,
        log_group_name=name,
        encryption_key=key,
        retention=settings.log_retention,
        removal_policy=settings.removal_policy,
    )
