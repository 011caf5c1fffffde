"""Test vectors for every signature scheme: pure functions, no AWS."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from aios.webhooks.errors import InvalidBody, InvalidSignature
from aios.webhooks.schemes import SCHEMES, Challenge, Delivery, Scheme
from tests.unit.webhooks.webhook_fakes import (
    GITHUB_SECRET,
    NOW,
    SLACK_SECRET,
    STANDARD_SECRET,
    STRIPE_SECRET,
    github_headers,
    slack_headers,
    standard_headers,
    standard_signature,
    stripe_headers,
)

BODY = b'{"id":"evt_1","type":"invoice.paid"}'
Sign = Callable[..., dict[str, str]]
TIMESTAMPED: list[tuple[str, Sign, str]] = [
    ("stripe", stripe_headers, STRIPE_SECRET),
    ("slack", slack_headers, SLACK_SECRET),
    ("standard", standard_headers, STANDARD_SECRET),
]
ALL: list[tuple[str, Sign, str]] = [*TIMESTAMPED, ("github", github_headers, GITHUB_SECRET)]


def verify(
    scheme_name: str, headers: dict[str, str], body: bytes, secrets: Sequence[str], now: float = NOW
) -> None:
    scheme: Scheme = SCHEMES[scheme_name]
    lowered = {name.lower(): value for name, value in headers.items()}
    scheme.verify(lowered, body, [scheme.key(secret) for secret in secrets], now)


# -- provider-published vectors ----------------------------------------------------------------


def test_github_documented_vector() -> None:
    # From GitHub's "Validating webhook deliveries" page.
    headers = {
        "x-hub-signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    }
    verify("github", headers, b"Hello, World!", ["It's a Secret to Everybody"])


def test_standard_webhooks_reference_vector() -> None:
    # From the Standard Webhooks reference libraries' tests.
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    verify("standard", headers, b'{"test": 2432232314}', [STANDARD_SECRET], now=1614265330)


def test_slack_documented_vector() -> None:
    # From Slack's "Verifying requests from Slack" page.
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
        b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
        b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
        b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    headers = {
        "X-Slack-Request-Timestamp": "1531420618",
        "X-Slack-Signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
    }
    verify("slack", headers, body, [SLACK_SECRET], now=1531420618 + 10)


# -- every scheme: valid, wrong secret, tampered, missing, rotation -------------------------------


@pytest.mark.parametrize(("name", "sign", "secret"), ALL)
def test_valid_signature_verifies(name: str, sign: Sign, secret: str) -> None:
    verify(name, sign(BODY, secret), BODY, [secret])


@pytest.mark.parametrize(("name", "sign", "secret"), ALL)
def test_header_names_are_case_insensitive(name: str, sign: Sign, secret: str) -> None:
    headers = {key.upper(): value for key, value in sign(BODY, secret).items()}
    verify(name, headers, BODY, [secret])


@pytest.mark.parametrize(("name", "sign", "secret"), ALL)
def test_wrong_secret_is_refused(name: str, sign: Sign, secret: str) -> None:
    other = "whsec_" + "b3RoZXItc2VjcmV0LWtleS1ieXRlcw==" if name == "standard" else "other-secret"
    with pytest.raises(InvalidSignature):
        verify(name, sign(BODY, other), BODY, [secret])


@pytest.mark.parametrize(("name", "sign", "secret"), ALL)
def test_tampered_body_is_refused(name: str, sign: Sign, secret: str) -> None:
    with pytest.raises(InvalidSignature):
        verify(name, sign(BODY, secret), BODY.replace(b"paid", b"void"), [secret])


@pytest.mark.parametrize(("name", "sign", "secret"), ALL)
def test_missing_headers_are_refused(name: str, sign: Sign, secret: str) -> None:
    headers = sign(BODY, secret)
    for header in headers:
        if header.lower() in {"x-github-delivery", "x-github-event"}:
            continue  # not part of the signature
        partial = {k: v for k, v in headers.items() if k != header}
        with pytest.raises(InvalidSignature):
            verify(name, partial, BODY, [secret])
    with pytest.raises(InvalidSignature):
        verify(name, {}, BODY, [secret])


@pytest.mark.parametrize(("name", "sign", "secret"), ALL)
def test_previous_secret_verifies_during_rotation(name: str, sign: Sign, secret: str) -> None:
    new = "whsec_bmV3LXNpZ25pbmcta2V5LWJ5dGVzLTMyLWxvbmc=" if name == "standard" else "new-secret"
    # Given the provider still signs with the old secret, which is now "previous"
    verify(name, sign(BODY, secret), BODY, [new, secret])
    # and once it signs with the new one, "current" verifies too
    verify(name, sign(BODY, new), BODY, [new, secret])


@pytest.mark.parametrize(("name", "sign", "secret"), TIMESTAMPED)
@pytest.mark.parametrize("skew", [-301, 301, -10_000, 10_000])
def test_stale_and_future_timestamps_are_refused(name: str, sign: Sign, secret: str, skew: int) -> None:
    with pytest.raises(InvalidSignature):
        verify(name, sign(BODY, secret, ts=NOW + skew), BODY, [secret])


@pytest.mark.parametrize(("name", "sign", "secret"), TIMESTAMPED)
@pytest.mark.parametrize("skew", [-300, 0, 300])
def test_timestamps_within_tolerance_verify(name: str, sign: Sign, secret: str, skew: int) -> None:
    verify(name, sign(BODY, secret, ts=NOW + skew), BODY, [secret])


@pytest.mark.parametrize("bad", ["", "abc", "1e9", "-5", "1_750_000_000", "٣", "99999999999999999999"])
def test_malformed_timestamps_are_refused(bad: str) -> None:
    with pytest.raises(InvalidSignature):
        verify("slack", {**slack_headers(BODY), "X-Slack-Request-Timestamp": bad}, BODY, [SLACK_SECRET])


def test_stripe_several_v1_with_one_valid() -> None:
    good = stripe_headers(BODY)["Stripe-Signature"]
    header = f"t={NOW},v1={'0' * 64},v0=deadbeef,{good.split(',')[1]},v1=zz"
    verify("stripe", {"stripe-signature": header}, BODY, [STRIPE_SECRET])


def test_stripe_timestamp_is_signed() -> None:
    good = stripe_headers(BODY)["Stripe-Signature"]
    moved = good.replace(f"t={NOW}", f"t={NOW + 1}")
    with pytest.raises(InvalidSignature):
        verify("stripe", {"stripe-signature": moved}, BODY, [STRIPE_SECRET])


def test_standard_several_signatures_with_one_valid() -> None:
    headers = standard_headers(BODY)
    valid = headers["webhook-signature"]
    wrong = standard_signature(BODY, "whsec_" + "b3RoZXI=", "msg_p5jXN8AQM9LWM0D4loKWxJek", NOW)
    headers["webhook-signature"] = f"v1a,c29tZXRoaW5n {wrong} {valid}"
    verify("standard", headers, BODY, [STANDARD_SECRET])


def test_standard_id_is_signed() -> None:
    headers = {**standard_headers(BODY), "webhook-id": "msg_other"}
    with pytest.raises(InvalidSignature):
        verify("standard", headers, BODY, [STANDARD_SECRET])


def test_standard_secret_without_prefix_is_the_same_key() -> None:
    assert SCHEMES["standard"].key(STANDARD_SECRET) == SCHEMES["standard"].key(STANDARD_SECRET[6:])


def test_standard_secret_that_is_not_base64_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="whsec_"):
        SCHEMES["standard"].key("whsec_not base64!")


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Hub-Signature-256", "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"),
        ("X-Hub-Signature-256", "sha256="),
        ("X-Hub-Signature-256", "sha256=\udcff\u00e9"),
    ],
)
def test_github_malformed_signatures_are_refused(header: str, value: str) -> None:
    with pytest.raises(InvalidSignature):
        verify("github", {header: value}, BODY, [GITHUB_SECRET])


def test_slack_wrong_version_is_refused() -> None:
    headers = slack_headers(BODY)
    headers["X-Slack-Signature"] = headers["X-Slack-Signature"].replace("v0=", "v1=")
    with pytest.raises(InvalidSignature):
        verify("slack", headers, BODY, [SLACK_SECRET])


# -- describe: delivery id and type ------------------------------------------------------------


def test_describe_stripe() -> None:
    payload = {"id": "evt_1", "type": "invoice.paid", "created": NOW, "data": {"object": {"id": "in_1"}}}
    delivery = SCHEMES["stripe"].describe({}, payload, NOW)
    assert delivery == Delivery(delivery_id="evt_1", type="invoice.paid", subject="in_1", time=delivery.time)
    assert isinstance(delivery, Delivery)
    assert delivery.time is not None
    assert delivery.time.timestamp() == NOW


def test_describe_github_reads_headers() -> None:
    headers = {"x-github-delivery": "d-1", "x-github-event": "push"}
    assert SCHEMES["github"].describe(headers, {}, None) == Delivery(delivery_id="d-1", type="push")


def test_describe_slack_event_and_challenge() -> None:
    payload = {"type": "event_callback", "event_id": "Ev1", "event": {"type": "message"}}
    assert SCHEMES["slack"].describe({}, payload, NOW) == Delivery(delivery_id="Ev1", type="message")
    challenge = SCHEMES["slack"].describe({}, {"type": "url_verification", "challenge": "abc"}, NOW)
    assert challenge == Challenge(challenge="abc")


def test_describe_standard() -> None:
    delivery = SCHEMES["standard"].describe({"webhook-id": "msg_1"}, {"type": "invoice.created"}, NOW)
    assert isinstance(delivery, Delivery)
    assert (delivery.delivery_id, delivery.type) == ("msg_1", "invoice.created")


@pytest.mark.parametrize(
    ("name", "headers", "payload"),
    [
        ("stripe", {}, {"type": "invoice.paid"}),
        ("stripe", {}, {"id": "evt_1"}),
        ("stripe", {}, {"id": 5, "type": "invoice.paid"}),
        ("stripe", {}, {"id": "evt_1", "type": "x" * 129}),
        ("stripe", {}, {"id": "", "type": "t"}),
        ("github", {"x-github-event": "push"}, {}),
        ("slack", {}, {"type": "event_callback", "event": {"type": "message"}}),
        ("slack", {}, {"type": "url_verification"}),
        ("slack", {}, {"type": "app_rate_limited"}),
        ("standard", {"webhook-id": "msg_1"}, {"data": {}}),
    ],
)
def test_describe_refuses_bodies_without_id_or_type(
    name: str, headers: dict[str, str], payload: dict[str, object]
) -> None:
    with pytest.raises(InvalidBody):
        SCHEMES[name].describe(headers, payload, NOW)
