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
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from aios.config import settings
from aios.errors import ConnectorAuthFailed
from aios.secrets import JsonSecretReader, SecretUnavailable

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


class FingerprintKey(JsonSecretReader):
    """The fingerprint key, read on first use and cached like the other secrets."""

    def __init__(self, *, prefix: str, **reader: Any) -> None:
        super().__init__(**reader)
        self.name = fingerprint_key_secret_name(prefix)

    def value(self) -> bytes:
        """The key; ``SecretUnavailable`` when it cannot be read or is too short."""
        secret = self.read(
            self.name, FingerprintKeySecret, shape=f"{{current}} with {MIN_KEY_LENGTH}+ characters"
        )
        return secret.current.get_secret_value().encode()

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
