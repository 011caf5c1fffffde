"""Powertools idempotency wired to the platform's idempotency table, created once."""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from aios.config import settings


@cache
def persistence_layer() -> DynamoDBPersistenceLayer:
    """The idempotency store of this process (table name from ``AIOS_IDEMPOTENCY_TABLE``)."""
    return DynamoDBPersistenceLayer(table_name=settings().require("idempotency_table"))
