"""Powertools idempotency wired to the platform's idempotency table, created once."""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from aios import clients
from aios.config import settings


@cache
def persistence_layer(purpose: str = "default") -> DynamoDBPersistenceLayer:
    """The idempotency store for one idempotent operation of this process.

    One instance per purpose: Powertools configures a persistence layer once (function
    name, expiry, key expression), so two idempotent functions sharing one instance would
    write each other's keys. The table (``AIOS_IDEMPOTENCY_TABLE``) is shared.
    """
    return DynamoDBPersistenceLayer(
        table_name=settings().require("idempotency_table"), boto3_client=clients.dynamodb()
    )
