"""Signing secrets of the webhook sources, in Secrets Manager under the platform key."""

from __future__ import annotations

import json

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from aios.secrets import webhook_secret_name
from infrastructure.nag import acknowledge
from infrastructure.platform.model import Platform
from infrastructure.settings import DeploymentSettings


class WebhookSecrets(Construct):
    """One secret per source, named as the ingest function looks it up.

    The value is ``{"current": ..., "previous": ...}``. Each provider issues its own signing
    secret, so the deployed value is a placeholder the operator replaces (README, "Webhook
    secrets"); rotating means moving ``current`` to ``previous`` and storing the new one.
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
        self._key = key
        self.by_source: dict[str, secretsmanager.Secret] = {
            source.name: secretsmanager.Secret(
                self,
                source.name,
                secret_name=webhook_secret_name(source.name, settings.secrets_prefix),
                description=f"aios: signing secret of webhook source {source.name} ({source.scheme})",
                encryption_key=key,
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    secret_string_template=json.dumps({"previous": None}),
                    generate_string_key="current",
                    exclude_punctuation=True,
                    password_length=48,
                ),
                removal_policy=settings.removal_policy,
            )
            for source in platform.sources
        }
        acknowledge(
            self,
            "AwsSolutions-SMG4",
            "Webhook signing secrets are issued by each provider (Stripe, GitHub, Slack, the ERP), "
            "so Secrets Manager cannot rotate them; rotation is provider-driven, and ingest accepts "
            "both 'current' and 'previous' while the provider switches over",
        )

    def grant_read(self, grantee: iam.IGrantable) -> None:
        """Read access to every source's secret, written on the grantee's policy.

        ``Secret.grant_read`` would also add a statement naming the grantee to the key
        policy, which lives in the data stack: a dependency cycle. The identity policy below
        grants the same, with decryption limited to calls made through Secrets Manager.
        """
        secret_arns = [secret.secret_arn for secret in self.by_source.values()]
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                resources=secret_arns,
            )
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt"],
                resources=[self._key.key_arn],
                conditions={
                    "StringEquals": {
                        "kms:ViaService": f"secretsmanager.{Stack.of(self).region}.amazonaws.com"
                    }
                },
            )
        )
