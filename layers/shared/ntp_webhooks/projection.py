"""The current state of every quote and order, kept correct under duplicate and out-of-order delivery.

One item per entity (`quote#<quoteId>`, `order#<orderId>`; workflow signals per event), read then
written with one conditional write guarded by the item's `revision` (which event wins is decided in
`ordering`):
- Newest event: the state, the pointer to its archive record and the bounded history are set.
- Older event (stale-write fencing): the state is left alone; the event joins the history.
- An event already in the history: nothing is written.
- A field that only some events carry (`rfqId`) holds the value of the newest event that carries it,
  whatever the arrival order: the item keeps which event set it (`rfqIdFrom`, its `seq:id`).
- An event older than a full history is not kept in it, but a carried field it is the newest carrier
  of is still set (a late `quote.received` gives its quote the `rfqId` no newer event carries); with
  nothing to set, nothing is written. `rfqIdFrom` is also what keeps this once: an event applied
  before, whether still in the history or not, is never newer than the carrier it left.

The body is not kept here: it lives in the archive (`ntp_webhooks.archive`), and the item holds the
hour the newest event was archived (`archiveHour`): its object is under that hour's prefix or the one
before (`archive.object_prefixes`). So an item's size does not depend on
the body's, and an update costs one DynamoDB write unit (1 KB) for a typical order whatever the body,
with the history as compact `seq:event:id` strings, `history_length` of them (8 by default). Items
written before the archive existed lose their `body` at their next write.

Every item the ingest could accept must fit DynamoDB's limits:
- An entity ID whose key would pass `MAX_KEY_BYTES` is keyed by its SHA-256 (`order#sha256:<hex>`),
  with the full ID in `entityId`.
- A carried field (`rfqId`) that would take the item past `ITEM_BUDGET_BYTES` is not kept.
"""

from __future__ import annotations

import enum
import hashlib
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ntp_webhooks.errors import is_condition_failure
from ntp_webhooks.events import EventBase, QuoteEvent
from ntp_webhooks.item_size import ITEM_LIMIT_BYTES, PARTITION_KEY_LIMIT_BYTES, item_size
from ntp_webhooks.observability import logger
from ntp_webhooks.ordering import HistoryEntry, is_newer, with_entry

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

KEY_ATTRIBUTE = "pk"
#: Entries kept per item by default (StateHistoryLength in the template).
DEFAULT_HISTORY_LENGTH = 8
_MAX_ATTEMPTS = 5
#: Carried values up to this many bytes in all are appended without reading the item (they fit in the
#: margin `ITEM_BUDGET_BYTES` leaves); larger ones are weighed against the item's size first.
APPEND_CARRIED_BYTES = 1024
#: Longest key kept as written; longer ones are hashed (DynamoDB allows 2,048 bytes).
MAX_KEY_BYTES = PARTITION_KEY_LIMIT_BYTES // 2
#: Largest item written; the rest of the limit is margin for the history's growth.
ITEM_BUDGET_BYTES = ITEM_LIMIT_BYTES - 16 * 1024
#: What items written before the archive held; removed at their next write.
LEGACY_ATTRIBUTES = ("body", "bodyBytes", "bodyOmitted")


class Outcome(enum.StrEnum):
    APPLIED = "applied"  # newest event: state updated
    STALE = "stale"  # older than the stored state: history, and the carried fields it is newest for
    DUPLICATE = "duplicate"  # already recorded, or older than a full history with nothing to set: no write


def entity_of(event: EventBase) -> tuple[str, str, bool]:
    """(entity type, entity id, whether the id is missing and the event id stands in)."""
    if event.entity_key is None:
        return event.family, event.id, False
    entity_id = event.entity_id
    if not entity_id:
        return event.family, event.id, True
    return event.family, entity_id, False


def state_key(entity_type: str, entity_id: str) -> str:
    """The item key of an entity; IDs too long for a DynamoDB key are hashed (see module doc)."""
    key = f"{entity_type}#{entity_id}"
    if len(key.encode()) <= MAX_KEY_BYTES:
        return key
    return f"{entity_type}#sha256:{hashlib.sha256(entity_id.encode()).hexdigest()}"


def _carried(event: EventBase) -> dict[str, str]:
    """Projected fields that only some events carry: each holds the newest carrier's value."""
    rfq_id = event.data.rfqId if isinstance(event, QuoteEvent) else None
    return {"rfqId": rfq_id} if rfq_id else {}


class Projection:
    def __init__(self, client: DynamoDBClient, table_name: str, history_length: int = DEFAULT_HISTORY_LENGTH) -> None:
        self._client = client
        self._table = table_name
        self._history_length = history_length

    def apply(self, event: EventBase, archived: str | None = None) -> Outcome:
        """Project `event`; `archived` is the hour it was archived (`YYYY/MM/DD/HH`, `Archive.put_all`)."""
        entity_type, entity_id, missing = entity_of(event)
        if missing:
            logger.warning("event has no entity ID; stored under its event ID", extra={"entity_type": entity_type})
        pk = state_key(entity_type, entity_id)
        key = {KEY_ATTRIBUTE: {"S": pk}}
        entry = HistoryEntry.of(event)
        if sum(len(value.encode()) for value in _carried(event).values()) <= APPEND_CARRIED_BYTES:
            # The usual case, the entity's newest event with room in its history: one write, no read.
            # Otherwise the refusal returns the item (ALL_OLD) and the write below decides on it.
            try:
                self._write(key, event, entity_id, None, None, newest=True, missing=missing, archived=archived)
                return Outcome.APPLIED
            except ClientError as exc:
                stored = _refused_item(exc)
        else:  # a large carried field: its size against the item's is known only from the item
            stored = self._read(key)
        for _ in range(_MAX_ATTEMPTS):
            history = [HistoryEntry.decode(v["S"]) for v in (stored or {}).get("history", {}).get("L", [])]
            if any(h.id == event.id for h in history):
                return Outcome.DUPLICATE
            # None: older than everything a full history keeps; only its carried fields may count.
            merged = with_entry(history, entry, self._history_length)
            newest = stored is None or is_newer(entry, int(stored["lastEventSeq"]["N"]), stored["lastEventId"]["S"])
            try:
                written = self._write(
                    key, event, entity_id, merged, stored, newest=newest, missing=missing, archived=archived
                )
            except ClientError as exc:
                stored = _refused_item(exc)  # another delivery wrote in between: decide again on what it wrote
                continue
            if not written:
                return Outcome.DUPLICATE
            return Outcome.APPLIED if newest else Outcome.STALE
        raise RuntimeError(f"projection for {pk[:64]} kept changing; will be retried")

    def _read(self, key: dict[str, Any]) -> dict[str, Any] | None:
        item = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
        return _without_legacy(item) if item else None

    def _write(
        self,
        key: dict[str, Any],
        event: EventBase,
        entity_id: str,
        history: list[HistoryEntry] | None,
        stored: dict[str, Any] | None,
        *,
        newest: bool,
        missing: bool,
        archived: str | None,
    ) -> bool:
        """Write the event's part. With `stored` None and no `history`: appended as the newest event,
        on the condition that it is (the item is new, or older events only, with room in the history).
        Otherwise on the item's `revision`; `history` None (older than a full history): only the carried
        fields it is the newest carrier of, and nothing (False) when there are none."""
        entry = HistoryEntry.of(event)
        appending = stored is None and history is None
        sets: dict[str, dict[str, Any]] = {}
        if history is not None:
            sets["history"] = {"L": [{"S": h.encode()} for h in history]}
        if newest:
            sets |= {
                "status": {"S": event.action},
                "lastEventId": {"S": event.id},
                "lastEventSeq": {"N": str(entry.seq)},
            }
            if archived:
                sets["archiveHour"] = {"S": archived}
        if missing:
            sets["entityIdMissing"] = {"BOOL": True}
        if key[KEY_ATTRIBUTE]["S"] != f"{event.family}#{entity_id}":
            sets["entityId"] = {"S": entity_id}  # hashed key: the full ID lives here
        if appending:  # the newest event is its carried fields' newest carrier; small ones (see apply)
            carried = {k: v for name, value in _carried(event).items() for k, v in _carrier(name, value, event).items()}
        else:
            carried = _carried_that_fit(sets, key, event, stored, newest=newest)
            if history is None and not carried:
                return False  # nothing it carries is missing or older: a repeat, or an old event with nothing new
        sets |= carried
        removes = list(LEGACY_ATTRIBUTES)
        names = {f"#a{i}": name for i, name in enumerate(sets)}
        values: dict[str, Any] = {f":v{i}": value for i, value in enumerate(sets.values())} | {":one": {"N": "1"}}
        update = "SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(sets)))
        # REMOVE first: an engine that checks the size after each action sees the item shrink first.
        update = "REMOVE " + ", ".join(f"#r{i}" for i in range(len(removes))) + " " + update
        names |= {f"#r{i}": name for i, name in enumerate(removes)}
        if appending:
            update += ", #h = list_append(if_not_exists(#h, :none), :entry)"
            names |= {"#h": "history", "#seq": "lastEventSeq", "#id": "lastEventId"}
            values |= {
                ":none": {"L": []},
                ":entry": {"L": [{"S": entry.encode()}]},
                ":seq": {"N": str(entry.seq)},
                ":id": {"S": event.id},
                ":limit": {"N": str(self._history_length)},
            }
            condition = (
                "attribute_not_exists(pk) OR ((#seq < :seq OR (#seq = :seq AND #id < :id)) AND size(#h) < :limit)"
            )
        elif stored is None:
            condition = "attribute_not_exists(pk)"
        else:
            condition = "revision = :revision"
            values[":revision"] = stored["revision"]
        self._client.update_item(
            TableName=self._table,
            Key=key,
            UpdateExpression=update + " ADD revision :one",
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        return True


def _without_legacy(item: dict[str, Any]) -> dict[str, Any]:
    """An item as the projection decides on it: without what items before the archive held (a body)."""
    return {name: value for name, value in item.items() if name not in LEGACY_ATTRIBUTES}


def _refused_item(exc: ClientError) -> dict[str, Any] | None:
    """The item a refused conditional write found (ALL_OLD); re-raises any other error."""
    if not is_condition_failure(exc):
        raise exc
    item: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
    return _without_legacy(item) if item else None


def _carrier(name: str, value: str, event: EventBase) -> dict[str, dict[str, Any]]:
    """A carried field and the mark of the event that set it (`rfqIdFrom`: `seq:id`)."""
    return {name: {"S": value}, f"{name}From": {"S": f"{HistoryEntry.of(event).seq}:{event.id}"}}


def _carried_that_fit(
    sets: dict[str, dict[str, Any]],
    key: dict[str, Any],
    event: EventBase,
    stored: dict[str, Any] | None,
    *,
    newest: bool,
) -> dict[str, dict[str, Any]]:
    """The carried fields this event sets: when it is their newest carrier, and the item stays under
    the budget with them (only with an entity ID and a field each near the body limit). Whether or not
    the event is still in the history: an event applied before is never newer than its own carrier
    mark, so a repeat sets nothing. A value with no carrier mark (an item written before the marks)
    is replaced only by the entity's newest event, an older one only fills it in, as then."""
    entry = HistoryEntry.of(event)
    carried: dict[str, dict[str, Any]] = {}
    for name, value in _carried(event).items():
        carrier = (stored or {}).get(f"{name}From", {}).get("S")
        if is_newer(entry, *_decode_carrier(carrier)) if carrier else newest or name not in (stored or {}):
            carried |= _carrier(name, value, event)
    if carried and item_size({**(stored or {}), **key, **sets, **carried, "revision": {"N": "1"}}) > ITEM_BUDGET_BYTES:
        logger.warning("a projected field is too large to keep with the entity ID", extra={"fields": list(carried)})
        return {}
    return carried


def _decode_carrier(text: str) -> tuple[int, str]:
    seq, event_id = text.split(":", 1)
    return int(seq), event_id
