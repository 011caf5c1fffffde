"""How long items are kept: the TTL value a writer stamps on each item it puts.

The platform description declares each table's retention (``TableSpec.retention_days``);
both renderings pass it to the functions that write the table as
``AIOS_TABLE_RETENTION_DAYS`` (``{"approvals": 400}``). DynamoDB deletes an item once its TTL
attribute (epoch seconds) is in the past:
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/time-to-live-ttl-before-you-start.html
"""

from __future__ import annotations

import json

from aios.config import Settings, settings

_DAY = 86_400


def retention_days(table_id: str, config: Settings | None = None) -> int | None:
    """The declared retention of ``table_id`` for this function (``None``: kept)."""
    raw = (config or settings()).table_retention_days
    if not raw:
        return None
    value = json.loads(raw).get(table_id)
    return int(value) if value is not None else None


def expires_at(days: int | None, now: float) -> int | None:
    """The TTL attribute's value (epoch seconds) of an item written at ``now``."""
    return None if days is None else int(now) + days * _DAY
