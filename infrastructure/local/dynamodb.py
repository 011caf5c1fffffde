"""DynamoDB of the local mode: a conditional write is atomic, as DynamoDB makes it.

Written for exactly moto 5.2.5, whose ``DynamoDBBackend`` checks a ``ConditionExpression``
and then applies the write with nothing in between held: two requests served at once (the
local mode serves each on its own thread) could both pass ``#status = :pending`` and both
write, so an approval click and the expiry step could each be told they won. DynamoDB
guarantees that a conditional write is evaluated and applied atomically per item
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html,
"conditional writes"; transactions: all or nothing,
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html).

The bridge holds one lock per table around each single-item read and write (``GetItem``,
``PutItem``, ``UpdateItem``, ``DeleteItem``: ``BatchWriteItem`` is made of these), and the
locks of every table a ``TransactWriteItems`` touches, taken in name order. Queries and
scans are left as they were: DynamoDB does not make them atomic across items either.

And where moto is slow for no reason of DynamoDB's (issue 11): an ``UpdateExpression`` is
parsed once per expression text, not twice per ``UpdateItem`` (moto's handler parses it to
check attribute names, its backend again to validate and apply it). The parsed tree is only
read: moto's validator works on a deep copy of it, which it then normalizes and executes.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from infrastructure.local import pin  # noqa: F401 - the moto version guard, before moto internals

# isort: split
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]

_locks: dict[tuple[int, str], threading.RLock] = {}
_locks_guard = threading.Lock()
_SINGLE_ITEM = ("get_item", "put_item", "update_item", "delete_item")
_ORIGINALS: dict[str, Any] = {
    name: getattr(DynamoDBBackend, name) for name in (*_SINGLE_ITEM, "transact_write_items")
}


def table_lock(backend: Any, table_name: str) -> threading.RLock:
    """The lock of one table of one backend (an account and region)."""
    key = (id(backend), table_name)
    with _locks_guard:
        lock = _locks.get(key)
        if lock is None:
            lock = _locks[key] = threading.RLock()
        return lock


@contextmanager
def _tables_locked(backend: Any, names: list[str]) -> Iterator[None]:
    with ExitStack() as stack:
        for name in sorted(set(names)):  # one order for all: no two transactions deadlock
            stack.enter_context(table_lock(backend, name))
        yield


def _single_item(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def locked(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
        with table_lock(self, table_name):
            return method(self, table_name, *args, **kwargs)

    return locked


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
    names = [
        str(operation["TableName"])
        for item in transact_items
        for operation in item.values()
        if isinstance(operation, dict) and operation.get("TableName")
    ]
    with _tables_locked(self, names):
        return _ORIGINALS["transact_write_items"](self, transact_items, *args, **kwargs)


_ORIGINAL_MAKE = UpdateExpressionParser.__dict__["make"]
_parsed_update_expression = functools.lru_cache(maxsize=1024)(UpdateExpressionParser.make)


def install() -> None:
    for name in _SINGLE_ITEM:
        setattr(DynamoDBBackend, name, _single_item(_ORIGINALS[name]))
    DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
    UpdateExpressionParser.make = staticmethod(_parsed_update_expression)


def uninstall() -> None:
    for name, original in _ORIGINALS.items():
        setattr(DynamoDBBackend, name, original)
    UpdateExpressionParser.make = _ORIGINAL_MAKE


__all__ = ["install", "table_lock", "uninstall"]
