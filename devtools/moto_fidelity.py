"""Where moto is weaker than AWS in a way our tests depend on, restore the AWS guarantee.

DynamoDB makes every single-item write atomic: a conditional PutItem/UpdateItem/DeleteItem checks
and writes as one step. moto evaluates the condition, then writes, with no lock, so under load two
threads can both pass the same condition. A lock per write restores exactly that guarantee and
nothing more: code that reads, then writes in a separate call still races, as it would on AWS.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.dynamodb.models import DynamoDBBackend

_WRITE_LOCK = threading.RLock()
_OPERATIONS = ("put_item", "update_item", "delete_item", "transact_write_items")


def _atomic(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _WRITE_LOCK:
            return method(*args, **kwargs)

    locked.__atomic__ = True  # type: ignore[attr-defined]
    return locked


def make_dynamodb_writes_atomic() -> None:
    """Idempotent: patches moto's DynamoDB backend once per process."""
    for name in _OPERATIONS:
        method = getattr(DynamoDBBackend, name)
        if not getattr(method, "__atomic__", False):
            setattr(DynamoDBBackend, name, _atomic(method))
