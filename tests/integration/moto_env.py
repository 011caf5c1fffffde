"""The environment every moto-backed test starts from: fake credentials, so that no call can
reach a real account, and one region for both boto3 (``AWS_DEFAULT_REGION``) and the Lambda
runtime's variable that Powertools and aios read (``AWS_REGION``)
(https://docs.getmoto.org/en/latest/docs/getting_started.html#how-do-i-avoid-tests-from-mutating-my-real-infrastructure)."""

from __future__ import annotations


def fake_aws_environment(region: str) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }
