"""Where the platform keeps its secrets, and how functions read them.

Names are built here and nowhere else, so CDK (which creates the secrets and grants read
access), the local mode (which seeds them on moto) and the functions (which read them)
agree on one spelling.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from mypy_boto3_secretsmanager import SecretsManagerClient

SecretModel = TypeVar("SecretModel", bound=BaseModel)

#: How long a function keeps a secret before reading it again. A rotation keeps the
#: previous value valid for longer than this, so no request fails during a rotation.
DEFAULT_SECRET_MAX_AGE_SECONDS = 300


#: A connector secret's ``base_url`` as the deploy creates it, until an operator sets it
#: (``aios smoke`` reports a connector still holding it as not set).
PLACEHOLDER_BASE_URL = "https://replace-me.invalid"


def connector_secret_name(connector: str, prefix: str) -> str:
    """The credentials of a connector: ``{prefix}/connectors/{connector}``."""
    return f"{prefix}/connectors/{connector}"


def webhook_secret_name(source: str, prefix: str) -> str:
    """``aios/webhooks/stripe``: the Secrets Manager name of a webhook source's signing secret."""
    return f"{prefix.rstrip('/')}/webhooks/{source}"


class SecretUnavailable(Exception):
    """A secret could not be read or is not in the expected shape (an operator must act)."""


class WebhookSecret(BaseModel):
    """The JSON value of a webhook signing secret: ``{"current": "...", "previous": "..."}``.

    During a rotation both values verify; ``previous`` is dropped once providers sign with
    ``current`` only.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    current: Annotated[SecretStr, Field(min_length=1)]
    previous: Annotated[SecretStr, Field(min_length=1)] | None = None

    def values(self) -> tuple[str, ...]:
        """The secrets that verify now, current first."""
        if self.previous is None:
            return (self.current.get_secret_value(),)
        return (self.current.get_secret_value(), self.previous.get_secret_value())

    def to_json(self) -> str:
        """The secret string to store (for the local mode and tests that seed secrets)."""
        value: dict[str, str] = {"current": self.current.get_secret_value()}
        if self.previous is not None:
            value["previous"] = self.previous.get_secret_value()
        return json.dumps(value)


class JsonSecretReader:
    """Reads JSON secrets into pydantic models through Powertools' cached ``SecretsProvider``.

    The provider (and its boto3 client) is created on first use, not at import, so a cold
    start that is rejected early never pays for it.
    """

    def __init__(
        self,
        *,
        max_age_seconds: int = DEFAULT_SECRET_MAX_AGE_SECONDS,
        provider: SecretsProvider | None = None,
        client: SecretsManagerClient | None = None,
    ) -> None:
        self._max_age = max_age_seconds
        self._provider = provider
        self._client = client

    @property
    def provider(self) -> SecretsProvider:
        if self._provider is None:
            from aws_lambda_powertools.utilities.parameters import SecretsProvider  # noqa: PLC0415

            from aios import clients  # noqa: PLC0415 - created on first use, not at cold start

            self._provider = SecretsProvider(boto3_client=self._client or clients.secretsmanager())
        return self._provider

    def read(self, name: str, model: type[SecretModel], *, shape: str) -> SecretModel:
        """Secret ``name`` as ``model``; ``SecretUnavailable`` (saying ``shape``) when it cannot be used."""
        try:
            value: Any = self.provider.get(name, max_age=self._max_age, transform="json")
            return model.model_validate(value)
        except ValidationError:
            # Never chain the validation error: its text may quote the secret.
            raise SecretUnavailable(f"secret {name} is not of the form {shape}") from None
        except Exception as error:  # the provider wraps every SDK and transform failure
            raise SecretUnavailable(f"secret {name} could not be read ({type(error).__name__})") from None


class WebhookSecrets(JsonSecretReader):
    """Reads webhook signing secrets (``{prefix}/webhooks/{source}``)."""

    def __init__(self, *, prefix: str, **reader: Any) -> None:
        super().__init__(**reader)
        self._prefix = prefix

    def get(self, source: str) -> WebhookSecret:
        """The signing secret of ``source``; ``SecretUnavailable`` when it cannot be used."""
        name = webhook_secret_name(source, self._prefix)
        return self.read(name, WebhookSecret, shape="{current, previous}")
