"""Fixtures for the connector contract tests: moto (Secrets Manager, DynamoDB, S3, SES) and
real HTTP servers on 127.0.0.1 that answer as the providers' APIs do."""

from __future__ import annotations

import datetime
import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from aws_lambda_powertools.utilities.circuit_breaker import base as powertools_base
from aws_lambda_powertools.utilities.circuit_breaker.persistence import base as powertools_persistence
from aws_lambda_powertools.utilities.circuit_breaker.persistence import dynamodb as powertools_dynamodb
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from moto import mock_aws

from aios.connectors import BreakerPolicy, CircuitBreaker, Credentials, Timeouts
from tests.integration.moto_env import fake_aws_environment

# --import-mode=importlib: make this folder's helper module importable by the tests here.
sys.path.insert(0, str(Path(__file__).parent))
from connector_api import Clock, FakeApi  # type: ignore[import-not-found]

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

PREFIX = "test"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in fake_aws_environment("eu-west-1").items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


@pytest.fixture
def dynamodb(aws: None) -> DynamoDBClient:
    client = boto3.client("dynamodb", region_name="eu-west-1")
    for table in ("idempotency", "circuit"):
        client.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    return client


@pytest.fixture
def secretsmanager(aws: None) -> SecretsManagerClient:
    return boto3.client("secretsmanager", region_name="eu-west-1")


class Secrets:
    """Writes connector secrets the way an operator (or rotation) does."""

    def __init__(self, client: SecretsManagerClient) -> None:
        self.client = client

    def put(self, connector: str, value: dict[str, Any]) -> None:
        name = f"{PREFIX}/connectors/{connector}"
        try:
            self.client.create_secret(Name=name, SecretString=json.dumps(value))
        except self.client.exceptions.ResourceExistsException:
            self.client.put_secret_value(SecretId=name, SecretString=json.dumps(value))


@pytest.fixture
def secrets(secretsmanager: SecretsManagerClient) -> Secrets:
    return Secrets(secretsmanager)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """One clock for the breaker's window rule and for Powertools' circuit breaker, which
    reads ``datetime.now()`` in these three modules (pinned aws-lambda-powertools 3.37.0)."""
    now = Clock()

    class FrozenDatetime(datetime.datetime):
        @classmethod
        def now(cls, tz: datetime.tzinfo | None = None) -> FrozenDatetime:
            return cls.fromtimestamp(now(), tz)

    frozen = types.SimpleNamespace(datetime=FrozenDatetime)
    for module in (powertools_base, powertools_persistence, powertools_dynamodb):
        monkeypatch.setattr(module, "dt", frozen)
    return now


@pytest.fixture
def kit(dynamodb: DynamoDBClient, secretsmanager: SecretsManagerClient, clock: Clock) -> dict[str, Any]:
    """The keyword arguments every connector of a test is built with."""
    return {
        "credentials": Credentials(client=secretsmanager, prefix=PREFIX),
        "breaker": CircuitBreaker(
            table_name="circuit",
            client=dynamodb,
            clock=clock,
            policy=BreakerPolicy(failure_threshold=3, cooldown_seconds=30, window_failure_threshold=10),
        ),
        "idempotency_store": DynamoDBPersistenceLayer(table_name="idempotency", boto3_client=dynamodb),
        "timeouts": Timeouts(connect=1.0, read=0.5),
    }


@pytest.fixture
def api() -> Iterator[FakeApi]:
    server = FakeApi()
    yield server
    server.close()
