"""Connector credentials: read from Secrets Manager through Powertools parameters.

A connector's secret is named ``{secrets_prefix}/connectors/{connector}`` and holds JSON::

    {"base_url": "https://erp.example.com/api", "api_key": "...", "api_key_header": "X-API-Key"}
    {"token": "xoxb-..."}                                   # bearer token
    {"client_id": "...", "client_secret": "...", "token_url": "https://.../oauth/token"}

plus an optional ``settings`` object of connector-specific, non-secret configuration (the
ERP's field mapping, a sender address...). Values are cached for ``max_age`` seconds; after
an authentication failure the kit re-reads once with ``force_fetch`` so a rotated secret is
picked up without a cold start. Secret values are ``SecretStr``: their ``repr`` and
``str`` are masked, so a stray log line cannot print them. They never travel through
environment variables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from aios import clients
from aios.config import settings
from aios.errors import ConnectorAuthFailed
from aios.secrets import connector_secret_name

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

#: How long a secret value is reused before Secrets Manager is asked again.
DEFAULT_MAX_AGE_SECONDS = 300


def secret_name(connector: str, *, prefix: str | None = None) -> str:
    """The Secrets Manager name of ``connector``'s credentials."""
    return connector_secret_name(connector, prefix if prefix is not None else settings().secrets_prefix)


class ConnectorSecret(BaseModel):
    """The parsed secret. Exactly which fields are set decides the auth scheme
    (see ``aios.connectors.http.auth_from_secret``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    base_url: Annotated[str, Field(pattern=r"^https?://")] | None = None
    api_key: SecretStr | None = None
    api_key_header: str = "X-API-Key"
    token: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    token_url: Annotated[str, Field(pattern=r"^https?://")] | None = None
    scope: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)


class Credentials:
    """Reads connector secrets; one instance per process, shared by every connector."""

    def __init__(
        self,
        *,
        client: SecretsManagerClient | None = None,
        prefix: str | None = None,
        max_age_seconds: int = DEFAULT_MAX_AGE_SECONDS,
    ) -> None:
        self._provider = SecretsProvider(boto3_client=client or clients.secretsmanager())
        self._prefix = prefix
        self._max_age = max_age_seconds

    def get(self, connector: str, *, refresh: bool = False) -> ConnectorSecret:
        """The secret of ``connector``; ``refresh`` bypasses the cache (after a rotation)."""
        name = secret_name(connector, prefix=self._prefix)
        try:
            raw = self._provider.get(name, transform="json", max_age=self._max_age, force_fetch=refresh)
        except (GetParameterError, TransformParameterError) as error:
            # The provider's message names the secret, never its value.
            raise ConnectorAuthFailed(
                f"{connector}: credentials {name} could not be read ({type(error).__name__})",
                connector=connector,
            ) from None
        try:
            return ConnectorSecret.model_validate(raw)
        except ValidationError as error:
            fields = sorted({".".join(str(part) for part in e["loc"]) for e in error.errors()})
            raise ConnectorAuthFailed(
                f"{connector}: credentials {name} are malformed (fields {fields})", connector=connector
            ) from None
