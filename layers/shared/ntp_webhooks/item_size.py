"""DynamoDB's item size rule: the projection keeps its items under the 400 KB limit with it, and the
cost model counts write and read units with it.

From the DynamoDB developer guide ("Item sizes and formats"): an item's size is the sum of its
attribute names' UTF-8 lengths and its values' sizes. Strings and binaries count their bytes; numbers
about one byte per two significant digits plus one; booleans and nulls one byte; lists and maps three
bytes plus one per element plus their elements (and, for maps, their keys); sets their elements.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

#: DynamoDB refuses an item (PutItem, or the result of an UpdateItem) larger than this.
ITEM_LIMIT_BYTES = 400 * 1024
#: A partition key's value may hold at most this many bytes.
PARTITION_KEY_LIMIT_BYTES = 2048
WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096


def _number_size(text: str) -> int:
    digits = Decimal(text).normalize().as_tuple().digits
    return max(1, math.ceil(len(digits) / 2)) + 1


def value_size(value: dict[str, Any]) -> int:
    (kind, content), *_ = value.items()
    if kind == "S":
        return len(content.encode())
    if kind == "B":
        return len(content)
    if kind == "N":
        return _number_size(content)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in content)
    if kind == "NS":
        return sum(_number_size(n) for n in content)
    if kind == "BS":
        return sum(len(b) for b in content)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in content)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in content.items())
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: dict[str, dict[str, Any]]) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2
