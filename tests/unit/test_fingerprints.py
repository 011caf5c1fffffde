"""Keyed references of bank accounts (aios.fingerprints, aios.invoices)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from pydantic import ValidationError

from aios.fingerprints import FingerprintKey, fingerprint_key_secret_name
from aios.invoices import Invoice, bank_account_reference
from aios.secrets import SecretUnavailable

KEY = b"unit-fingerprint-key-0123456789abcdef-0123"
IBAN = "DE89 3704 0044 0532 0130 00"


class FakeProvider:
    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.asked: list[str] = []

    def get(self, name: str, **_: Any) -> Any:
        self.asked.append(name)
        return self.values[name]


def test_a_reference_is_an_hmac_under_the_key_not_a_plain_hash() -> None:
    reference = bank_account_reference(IBAN, KEY)
    normalised = "DE89370400440532013000"
    assert reference == "hmac-sha256:" + hmac.new(KEY, normalised.encode(), hashlib.sha256).hexdigest()
    # A plain sha256, which anyone can compute over the space of IBANs, is not what is stored
    assert reference.rpartition(":")[2] != hashlib.sha256(normalised.encode()).hexdigest()
    assert bank_account_reference(IBAN, b"another-key-0123456789abcdef-0123456") != reference


def test_spaces_and_case_do_not_change_the_reference() -> None:
    assert bank_account_reference("de89370400440532013000", KEY) == bank_account_reference(IBAN, KEY)


def test_an_invoice_refuses_an_unkeyed_reference() -> None:
    base = {"invoice_id": "I-1", "business_key": "erp:I-1", "vendor_id": "V", "vendor_name": "A",
            "amount": "10", "currency": "EUR", "invoice_date": "2024-01-02"}  # fmt: skip
    plain = "sha256:" + hashlib.sha256(b"DE89370400440532013000").hexdigest()
    with pytest.raises(ValidationError):
        Invoice.model_validate({**base, "bank_account": plain})
    assert Invoice.model_validate({**base, "bank_account": bank_account_reference(IBAN, KEY)}).bank_account


def test_the_key_is_read_from_its_secret() -> None:
    provider = FakeProvider({"aios/platform/fingerprint-key": {"current": KEY.decode()}})
    key = FingerprintKey(prefix="aios", provider=provider)  # type: ignore[arg-type]
    assert key.value() == KEY
    assert provider.asked == [fingerprint_key_secret_name("aios")]


@pytest.mark.parametrize("value", [{"current": "short"}, {"previous": "x" * 40}, "not json"])
def test_an_unusable_key_is_unavailable_without_quoting_it(value: Any) -> None:
    key = FingerprintKey(prefix="aios", provider=FakeProvider({"aios/platform/fingerprint-key": value}))  # type: ignore[arg-type]
    with pytest.raises(SecretUnavailable) as raised:
        key.value()
    assert "short" not in str(raised.value)
