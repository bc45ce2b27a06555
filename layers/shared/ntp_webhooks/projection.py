"""The current state of every quote and order, kept correct under duplicate and out-of-order delivery.

One item per entity (`quote#<quoteId>`, `order#<orderId>`; workflow signals per event). Events are
totally ordered by (timestamp, lifecycle stage, event ID): two events with the same timestamp resolve
the same way whatever order they arrive in, and `order.shipped` beats `order.created` in a tie.
- Newest event: one conditional UpdateItem sets the state and appends to the history. This is the
  normal path, and it costs one DynamoDB call.
- Older event (stale-write fencing): the state is left alone and the event is inserted into the
  history, guarded by the item's `revision`.
- An event already in the history: nothing is written.

The latest event is stored as its exact body (a string), not as a DynamoDB map: any body ingest
accepts fits (numbers of any size or precision, any nesting), and MaxBodyBytes keeps the item far
below DynamoDB's 400 KB.
"""

from __future__ import annotations

import enum
import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from ntp_webhooks.dynamo import is_condition_failure
from ntp_webhooks.events import EventBase, QuoteEvent, rank_of
from ntp_webhooks.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

KEY_ATTRIBUTE = "pk"
#: How many (timestamp, event, id) entries an item keeps: the newest ones.
HISTORY_LIMIT = 20
_MAX_ATTEMPTS = 5
_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize


class Outcome(enum.StrEnum):
    APPLIED = "applied"  # newest event: state updated
    STALE = "stale"  # older than the stored state: history only
    DUPLICATE = "duplicate"  # already recorded: nothing written


def entity_of(event: EventBase) -> tuple[str, str, bool]:
    """(entity type, entity id, whether the id is missing and the event id stands in)."""
    if event.entity_key is None:
        return event.family, event.id, False
    entity_id = event.entity_id
    if not entity_id:
        return event.family, event.id, True
    return event.family, entity_id, False


def sequence(event: EventBase) -> int:
    """The event's position: microseconds since the epoch, then lifecycle rank (0-15)."""
    return int(event.timestamp.timestamp() * 1_000_000) * 16 + rank_of(event.event)


class Projection:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def apply(self, event: EventBase) -> Outcome:
        entity_type, entity_id, missing = entity_of(event)
        if missing:
            logger.warning("event has no entity ID; stored under its event ID", extra={"entity_type": entity_type})
        key = {KEY_ATTRIBUTE: {"S": f"{entity_type}#{entity_id}"}}
        entry = {"seq": sequence(event), "timestamp": event.timestamp.isoformat(), "event": event.event, "id": event.id}
        for _ in range(_MAX_ATTEMPTS):
            try:
                history_size = self._apply_newest(key, event, entry, entity=(entity_type, entity_id, missing))
            except ClientError as exc:
                if not is_condition_failure(exc):
                    raise
                returned: Any = exc.response
                stored = returned.get("Item") or self._get(key)
                if stored is None:
                    continue  # deleted in between: try again
                outcome = self._record_older(key, event, entry, stored)
                if outcome is not None:
                    return outcome
                continue  # lost a race on `revision`: re-evaluate against the new state
            if history_size > HISTORY_LIMIT:
                self._trim(key, history_size)
            return Outcome.APPLIED
        raise RuntimeError(f"projection for {key[KEY_ATTRIBUTE]['S']} kept changing; will be retried")

    def _apply_newest(
        self, key: dict[str, Any], event: EventBase, entry: dict[str, Any], *, entity: tuple[str, str, bool]
    ) -> int:
        entity_type, entity_id, missing = entity
        values: dict[str, Any] = {
            ":status": {"S": event.action},
            ":id": {"S": event.id},
            ":event": {"S": event.event},
            ":seq": {"N": str(entry["seq"])},
            ":timestamp": {"S": event.timestamp.isoformat()},
            ":body": {"S": event.body},
            ":type": {"S": entity_type},
            ":entity": {"S": entity_id},
            ":missing": {"BOOL": missing},
            ":entry": {"L": [_serialize(entry)]},
            ":empty": {"L": []},
            ":one": {"N": "1"},
        }
        assignments = [
            "#status = :status",
            "lastEventId = :id",
            "lastEvent = :event",
            "lastEventSeq = :seq",
            "lastEventTimestamp = :timestamp",
            "body = :body",
            "entityType = :type",
            "entityId = :entity",
            "entityIdMissing = :missing",
            "history = list_append(if_not_exists(history, :empty), :entry)",
        ]
        rfq_id = event.data.rfqId if isinstance(event, QuoteEvent) else None
        if rfq_id:
            values[":rfq"] = {"S": rfq_id}
            assignments.append("rfqId = :rfq")
        response = self._client.update_item(
            TableName=self._table,
            Key=key,
            UpdateExpression="SET " + ", ".join(assignments) + " ADD revision :one",
            ConditionExpression=(
                "attribute_not_exists(pk) OR lastEventSeq < :seq OR (lastEventSeq = :seq AND lastEventId < :id)"
            ),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=values,
            ReturnValues="UPDATED_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        return len(response["Attributes"]["history"]["L"])

    def _record_older(
        self, key: dict[str, Any], event: EventBase, entry: dict[str, Any], stored: dict[str, Any]
    ) -> Outcome | None:
        """Insert an older event into the history. None when another write got there first."""
        history = [_deserialize(item) for item in stored.get("history", {}).get("L", [])]
        if any(item["id"] == event.id for item in history):
            return Outcome.DUPLICATE
        ordered = sorted([*history, entry], key=lambda item: (int(item["seq"]), item["id"]))[-HISTORY_LIMIT:]
        if entry not in ordered:
            return Outcome.STALE  # older than everything the bounded history keeps
        values: dict[str, Any] = {
            ":history": _serialize(ordered),
            ":revision": stored["revision"],
            ":one": {"N": "1"},
        }
        update = "SET history = :history"
        rfq_id = event.data.rfqId if isinstance(event, QuoteEvent) else None
        if rfq_id:
            values[":rfq"] = {"S": rfq_id}
            update += ", rfqId = if_not_exists(rfqId, :rfq)"
        try:
            self._client.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression=update + " ADD revision :one",
                ConditionExpression="revision = :revision",
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return None
            raise
        return Outcome.STALE

    def _trim(self, key: dict[str, Any], size: int) -> None:
        # Rare: only when the history outgrows its bound. A lost race leaves it one write longer.
        drop = ", ".join(f"history[{i}]" for i in range(size - HISTORY_LIMIT))
        try:
            self._client.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression=f"REMOVE {drop}",
                ConditionExpression="size(history) = :size",
                ExpressionAttributeValues={":size": {"N": str(size)}},
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise

    def _get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True).get(
            "Item"
        )
        return item


def read_item(client: DynamoDBClient, table_name: str, entity_type: str, entity_id: str) -> dict[str, Any] | None:
    """An entity's projection as plain Python values, with the latest event's `data` decoded from its
    body (numbers as exact Decimals), for the CLI and tests."""
    item = client.get_item(TableName=table_name, Key={KEY_ATTRIBUTE: {"S": f"{entity_type}#{entity_id}"}}).get("Item")
    if item is None:
        return None
    values = {name: _deserialize(value) for name, value in item.items()}
    values["data"] = json.loads(values["body"], parse_float=Decimal)["data"]
    return values
