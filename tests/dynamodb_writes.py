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


def apply_update(item: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    result = dict(item)
    result.update(params["Key"])
    names = params.get("ExpressionAttributeNames", {})
    values = params.get("ExpressionAttributeValues", {})
    parts = _CLAUSE.split(params["UpdateExpression"])
    for keyword, body in zip(parts[1::2], parts[2::2], strict=True):
        for action in filter(None, (a.strip() for a in body.split(","))):
            if keyword == "SET":
                target, expression = (side.strip() for side in action.split("=", 1))
                if expression.startswith("if_not_exists("):
                    existing, fallback = expression[len("if_not_exists(") : -1].split(",")
                    value = result.get(_name(existing, names)) or values[fallback.strip()]
                else:
                    value = values[expression]
                result[_name(target, names)] = value
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
    """A `provide-client-params.dynamodb.*` hook: sizes and keys of the items writes ask for."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client  # created before the hook: its own reads are not recorded
        self._table = table_name
        self.sizes: list[int] = []
        self.keys: list[str] = []

    def before(self, params: dict[str, Any], event_name: str, **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[1]
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
