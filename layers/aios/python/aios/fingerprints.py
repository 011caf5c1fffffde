"""Keyed fingerprints of values that identify an account or an invoice.

A plain sha256 of an IBAN is not a secret: IBANs have few unknown digits and a check sum, so
the whole space of a bank's accounts hashes in minutes, and anyone who can read a reference
(lineage, state, the approvals table) recovers the account. References and duplicate
fingerprints are therefore HMAC-SHA256 under a key that only the functions computing them
can read: the platform secret ``{prefix}/platform/fingerprint-key`` (``{"current": ...}``),
created by the deploy and read through Powertools' cached ``SecretsProvider``.

Rotating the key changes every reference computed after it, so duplicate detection and
"bank account changed" start afresh; rotate only with that in mind (README, "Secrets").
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from aios.config import settings
from aios.errors import ConnectorAuthFailed
from aios.secrets import DEFAULT_SECRET_MAX_AGE_SECONDS, SecretUnavailable

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from mypy_boto3_secretsmanager import SecretsManagerClient

#: Minimum key length: the HMAC key should be at least as long as the hash output.
MIN_KEY_LENGTH = 32


def fingerprint_key_secret_name(prefix: str) -> str:
    """``aios/platform/fingerprint-key``: the key of every keyed fingerprint."""
    return f"{prefix.rstrip('/')}/platform/fingerprint-key"


class FingerprintKeySecret(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    current: Annotated[SecretStr, Field(min_length=MIN_KEY_LENGTH)]


def keyed_digest(key: bytes, text: str) -> str:
    """Hex HMAC-SHA256 of ``text`` under ``key``."""
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


class FingerprintKey:
    """The fingerprint key, read on first use and cached like the other secrets."""

    def __init__(
        self,
        *,
        prefix: str,
        max_age_seconds: int = DEFAULT_SECRET_MAX_AGE_SECONDS,
        provider: SecretsProvider | None = None,
        client: SecretsManagerClient | None = None,
    ) -> None:
        self.name = fingerprint_key_secret_name(prefix)
        self._max_age = max_age_seconds
        self._provider = provider
        self._client = client

    @property
    def provider(self) -> SecretsProvider:
        if self._provider is None:
            from aws_lambda_powertools.utilities.parameters import SecretsProvider  # noqa: PLC0415

            self._provider = SecretsProvider(boto3_client=self._client)
        return self._provider

    def value(self) -> bytes:
        """The key; ``SecretUnavailable`` when it cannot be read or is too short."""
        try:
            raw: Any = self.provider.get(self.name, max_age=self._max_age, transform="json")
            return FingerprintKeySecret.model_validate(raw).current.get_secret_value().encode()
        except ValidationError:
            raise SecretUnavailable(
                f"secret {self.name} is not of the form {{current}} with {MIN_KEY_LENGTH}+ characters"
            ) from None
        except Exception as error:  # the provider wraps every SDK and transform failure
            raise SecretUnavailable(
                f"secret {self.name} could not be read ({type(error).__name__})"
            ) from None

    def digest(self, text: str) -> str:
        return keyed_digest(self.value(), text)


@cache
def default_key() -> FingerprintKey:
    """This function's fingerprint key (prefix from its settings), created once."""
    return FingerprintKey(prefix=settings().secrets_prefix)


def connector_account_key(connector: str, override: Callable[[], bytes] | None = None) -> bytes:
    """The fingerprint key for a connector that references bank accounts; a key that cannot
    be read is ``Connector.AuthFailed`` (an operator must act, as with the credentials)."""
    try:
        return (override or default_key().value)()
    except SecretUnavailable as error:
        raise ConnectorAuthFailed(f"{connector}: {error}", connector=connector) from None
