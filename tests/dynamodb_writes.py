"""The item a DynamoDB write asks for, computed from the request the way DynamoDB applies it.

moto stores items over DynamoDB's 400 KB limit, so a size check must not read what moto kept. This
applies each PutItem or UpdateItem (the SET/REMOVE/ADD forms the functions use) to the item as it
was, and records the result's size and key.
"""

from __future__ import annotations

import re
from typing import Any

from ntp_webhooks.item_size import item_size

_CLAUSE = re.compile(r"\b(SET|REMOVE|ADD)\b")


def _name(token: str, names: dict[str, str]) -> str:
    return names.get(token.strip(), token.strip())


def _split(text: str) -> list[str]:
    """`text` split at its commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for position, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:position].strip())
            start = position + 1
    return [*parts, text[start:].strip()]


def _operand(expression: str, item: dict[str, Any], names: dict[str, str], values: dict[str, Any]) -> Any:
    """A SET operand: a value placeholder, an attribute, `if_not_exists(a, b)` or `list_append(a, b)`."""
    expression = expression.strip()
    for function in ("if_not_exists", "list_append"):
        if expression.startswith(f"{function}("):
            first, second = (_operand(arg, item, names, values) for arg in _split(expression[len(function) + 1 : -1]))
            if function == "if_not_exists":
                return first or second
            return {"L": first["L"] + second["L"]}
    return values[expression] if expression.startswith(":") else item.get(_name(expression, names))


def apply_update(item: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    result = dict(item)
    result.update(params["Key"])
    names = params.get("ExpressionAttributeNames", {})
    values = params.get("ExpressionAttributeValues", {})
    parts = _CLAUSE.split(params["UpdateExpression"])
    for keyword, body in zip(parts[1::2], parts[2::2], strict=True):
        for action in filter(None, _split(body)):
            if keyword == "SET":
                target, expression = (side.strip() for side in action.split("=", 1))
                result[_name(target, names)] = _operand(expression, item, names, values)
            elif keyword == "REMOVE":
                result.pop(_name(action, names), None)
            else:
                target, placeholder = action.split()
                name, value = _name(target, names), values[placeholder]
                if "N" in value:
                    current = result.get(name, {"N": "0"})["N"]
                    result[name] = {"N": str(int(current) + int(value["N"]))}
                else:
                    (kind,) = value
                    result[name] = {kind: sorted(set(result.get(name, {kind: []})[kind]) | set(value[kind]))}
    return result


class ItemsAfterWrites:
    """A `provide-client-params.dynamodb.*` hook: sizes and keys of the items writes ask for (PutItem,
    UpdateItem, and each PutRequest of a BatchWriteItem)."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client  # created before the hook: its own reads are not recorded
        self._table = table_name
        self.sizes: list[int] = []
        self.keys: list[str] = []

    def before(self, params: dict[str, Any], event_name: str, **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[1]
        if operation == "BatchWriteItem":  # PutRequests: each item as written
            for request in params["RequestItems"].get(self._table, []):
                item = request["PutRequest"]["Item"]
                self.keys.append(next(iter(item.values()))["S"])
                self.sizes.append(item_size(item))
            return
        if params.get("TableName") != self._table or operation not in ("PutItem", "UpdateItem"):
            return
        if operation == "PutItem":
            after = params["Item"]
        else:
            before = self._client.get_item(TableName=self._table, Key=params["Key"], ConsistentRead=True).get(
                "Item", {}
            )
            after = apply_update(before, params)
        self.keys.append(next(iter(params.get("Key", params.get("Item", {})).values()))["S"])
        self.sizes.append(item_size(after))
