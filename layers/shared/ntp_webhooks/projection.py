"""The current state of every quote and order, kept correct under duplicate and out-of-order delivery.

One item per entity (`quote#<quoteId>`, `order#<orderId>`; workflow signals per event), read then
written with one conditional write guarded by the item's `revision` (which event wins is decided in
`ordering`):
- Newest event: the state, the exact body and the bounded history are set.
- Older event (stale-write fencing): the state is left alone; the event joins the history.
- An event already in the history, or older than a full history: nothing is written.

The item stays within one DynamoDB write unit (1 KB) for a typical order: the latest event is kept as
its exact body (a string, which also fits any body ingest accepts: numbers of any size, any nesting),
and the history as compact `seq:event:id` strings, `history_length` of them (8 by default).
"""

from __future__ import annotations

import enum
import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from ntp_webhooks.dynamo import is_condition_failure
from ntp_webhooks.events import EventBase, QuoteEvent
from ntp_webhooks.observability import logger
from ntp_webhooks.ordering import HistoryEntry, is_newer, with_entry

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

KEY_ATTRIBUTE = "pk"
#: Entries kept per item by default (StateHistoryLength in the template).
DEFAULT_HISTORY_LENGTH = 8
_MAX_ATTEMPTS = 5
_deserialize = TypeDeserializer().deserialize


class Outcome(enum.StrEnum):
    APPLIED = "applied"  # newest event: state updated
    STALE = "stale"  # older than the stored state: history only
    DUPLICATE = "duplicate"  # already recorded, or older than a full history: nothing written


def entity_of(event: EventBase) -> tuple[str, str, bool]:
    """(entity type, entity id, whether the id is missing and the event id stands in)."""
    if event.entity_key is None:
        return event.family, event.id, False
    entity_id = event.entity_id
    if not entity_id:
        return event.family, event.id, True
    return event.family, entity_id, False


class Projection:
    def __init__(self, client: DynamoDBClient, table_name: str, history_length: int = DEFAULT_HISTORY_LENGTH) -> None:
        self._client = client
        self._table = table_name
        self._history_length = history_length

    def apply(self, event: EventBase) -> Outcome:
        entity_type, entity_id, missing = entity_of(event)
        if missing:
            logger.warning("event has no entity ID; stored under its event ID", extra={"entity_type": entity_type})
        key = {KEY_ATTRIBUTE: {"S": f"{entity_type}#{entity_id}"}}
        entry = HistoryEntry.of(event)
        for _ in range(_MAX_ATTEMPTS):
            stored = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
            history = [HistoryEntry.decode(v["S"]) for v in (stored or {}).get("history", {}).get("L", [])]
            if any(h.id == event.id for h in history):
                return Outcome.DUPLICATE
            merged = with_entry(history, entry, self._history_length)
            newest = stored is None or is_newer(entry, int(stored["lastEventSeq"]["N"]), stored["lastEventId"]["S"])
            if merged is None:
                return Outcome.DUPLICATE  # older than everything a full history keeps
            try:
                self._write(key, event, merged, stored, newest=newest, missing=missing)
            except ClientError as exc:
                if not is_condition_failure(exc):
                    raise
                continue  # another delivery wrote in between: decide again on what it wrote
            return Outcome.APPLIED if newest else Outcome.STALE
        raise RuntimeError(f"projection for {key[KEY_ATTRIBUTE]['S']} kept changing; will be retried")

    def _write(
        self,
        key: dict[str, Any],
        event: EventBase,
        history: list[HistoryEntry],
        stored: dict[str, Any] | None,
        *,
        newest: bool,
        missing: bool,
    ) -> None:
        values: dict[str, Any] = {":history": {"L": [{"S": h.encode()} for h in history]}, ":one": {"N": "1"}}
        assignments = ["history = :history"]
        if newest:
            values |= {
                ":status": {"S": event.action},
                ":id": {"S": event.id},
                ":seq": {"N": str(history[-1].seq)},
                ":body": {"S": event.body},
            }
            assignments += ["#status = :status", "lastEventId = :id", "lastEventSeq = :seq", "body = :body"]
        if missing:
            values[":missing"] = {"BOOL": True}
            assignments.append("entityIdMissing = :missing")
        rfq_id = event.data.rfqId if isinstance(event, QuoteEvent) else None
        if rfq_id:
            values[":rfq"] = {"S": rfq_id}
            assignments.append("rfqId = :rfq" if newest else "rfqId = if_not_exists(rfqId, :rfq)")
        if stored is None:
            condition = "attribute_not_exists(pk)"
        else:
            condition = "revision = :revision"
            values[":revision"] = stored["revision"]
        self._client.update_item(
            TableName=self._table,
            Key=key,
            UpdateExpression="SET " + ", ".join(assignments) + " ADD revision :one",
            ConditionExpression=condition,
            ExpressionAttributeNames={"#status": "status"} if newest else {},
            ExpressionAttributeValues=values,
        )


def read_item(client: DynamoDBClient, table_name: str, entity_type: str, entity_id: str) -> dict[str, Any] | None:
    """An entity's projection as plain Python values, for the CLI and tests: the stored attributes,
    the history expanded to `{seq, timestamp, event, id}`, and the latest event's `event`, `timestamp`
    and `data` (numbers as exact Decimals) read from its body."""
    item = client.get_item(TableName=table_name, Key={KEY_ATTRIBUTE: {"S": f"{entity_type}#{entity_id}"}}).get("Item")
    if item is None:
        return None
    values = {name: _deserialize(value) for name, value in item.items()}
    history = [HistoryEntry.decode(text) for text in values["history"]]
    body = json.loads(values["body"], parse_float=Decimal)
    newest = next(h for h in history if h.id == values["lastEventId"]) if history else None
    return {
        **values,
        "entityType": entity_type,
        "entityId": entity_id,
        "lastEvent": body["event"],
        "lastEventTimestamp": newest.timestamp.isoformat() if newest else None,
        "data": body["data"],
        "history": [
            {"seq": h.seq, "timestamp": h.timestamp.isoformat(), "event": h.event, "id": h.id} for h in history
        ],
    }
