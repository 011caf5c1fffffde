"""The platform's secrets in Secrets Manager, under the platform key: webhook signing
secrets and connector credentials, named as the runtime looks them up (``aios.secrets``)."""

from __future__ import annotations

import json

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from aios.fingerprints import fingerprint_key_secret_name
from aios.secrets import PLACEHOLDER_BASE_URL, connector_secret_name, webhook_secret_name
from infrastructure.nag import acknowledge
from infrastructure.platform.spec import Platform
from infrastructure.settings import DeploymentSettings


class PlatformSecrets(Construct):
    """One secret per webhook source and per connector that declares credentials.

    Webhook secrets hold ``{"current": ..., "previous": ...}``; connector secrets hold the
    connector's JSON settings (base URL, API key or OAuth2 client). Providers issue these
    values, so the deployed ones are placeholders the operator replaces (README, "Secrets").
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
        self.webhooks: dict[str, secretsmanager.Secret] = {
            source.name: self._secret(
                f"webhook-{source.name}",
                name=webhook_secret_name(source.name, settings.secrets_prefix),
                description=f"aios: signing secret of webhook source {source.name} ({source.scheme})",
                template={"previous": None},
                generated_key="current",
                settings=settings,
            )
            for source in platform.sources
        }
        connectors = sorted({f.credentials for f in platform.functions if f.credentials})
        self.connectors: dict[str, secretsmanager.Secret] = {
            connector: self._secret(
                f"connector-{connector}",
                name=connector_secret_name(connector, settings.secrets_prefix),
                description=f"aios: credentials and settings of the {connector} connector",
                template={"base_url": PLACEHOLDER_BASE_URL},
                generated_key="api_key",
                settings=settings,
            )
            for connector in connectors
        }
        # HMAC key of bank-account references (aios.fingerprints): generated here, never
        # issued by a provider; only the functions that reference accounts may read it.
        self.fingerprint_key: secretsmanager.Secret | None = (
            self._secret(
                "fingerprint-key",
                name=fingerprint_key_secret_name(settings.secrets_prefix),
                description="aios: HMAC key of bank-account references and fingerprints",
                template={},
                generated_key="current",
                settings=settings,
            )
            if any(f.fingerprint_key for f in platform.functions)
            else None
        )
        acknowledge(
            self,
            "AwsSolutions-SMG4",
            "Webhook signing secrets and connector API credentials are issued by the providers "
            "(Stripe, GitHub, Slack, the ERP, the payment processor), so Secrets Manager cannot "
            "rotate them; rotation is provider-driven, and ingest accepts both 'current' and "
            "'previous' signing secrets while a provider switches over; rotating the fingerprint "
            "key would re-key every bank-account reference, so it is rotated by hand (README)",
        )

    def _secret(
        self,
        construct_id: str,
        *,
        name: str,
        description: str,
        template: dict[str, object],
        generated_key: str,
        settings: DeploymentSettings,
    ) -> secretsmanager.Secret:
        return secretsmanager.Secret(
            self,
            construct_id,
            secret_name=name,
            description=description,
            encryption_key=self._key,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=json.dumps(template),
                generate_string_key=generated_key,
                exclude_punctuation=True,
                password_length=48,
            ),
            removal_policy=settings.removal_policy,
        )

    def grant_read(self, grantee: iam.IGrantable, secrets: list[secretsmanager.ISecret]) -> None:
        """Read access to ``secrets``, written on the grantee's policy.

        ``Secret.grant_read`` would also add a statement naming the grantee to the key
        policy, which lives in the data stack: a dependency cycle. The identity policy below
        grants the same, with decryption limited to calls made through Secrets Manager.
        """
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                resources=[secret.secret_arn for secret in secrets],
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
