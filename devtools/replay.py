"""`ntp replay`: archived events back through their family's consumer, into the partner handlers named.

Each event goes to its family queue as it was received, marked with the handlers to run and a replay
ID (message attributes). The consumer runs exactly those handlers once more for it: not the archive,
not the projection, no other handler; the event's own "once" record is left as it is. A replay has a
"once" record of its own, so SQS delivering it twice runs the handlers once, while a second replay
(a new ID) runs them again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ntp_webhooks.archive import PREFIX, ArchiveRecord, hour_prefixes, records_in
from ntp_webhooks.family_queues import (
    ATTR_API_REQUEST_ID,
    ATTR_EVENT_ID,
    ATTR_EVENT_TYPE,
    ATTR_KEY_STAGE,
    ATTR_KEY_VERSION,
    ATTR_RECEIVED_AT,
    ATTR_REPLAY_HANDLERS,
    ATTR_REPLAY_ID,
    ATTR_SENDER_REQUEST_ID,
)
from ntp_webhooks.routing import FAMILIES, template_name

CONSUMER_CODE = Path(__file__).resolve().parents[1] / "functions" / "consumers"
QUEUE_OUTPUTS = {family: f"{template_name(family)}QueueUrl" for family in FAMILIES}


def handler_names() -> set[str]:
    """The names the consumers' registry knows: business_logic.py's handlers, as the consumer loads them."""
    import sys

    from ntp_webhooks.subscriptions import subscriptions

    if str(CONSUMER_CODE) not in sys.path:
        sys.path.insert(0, str(CONSUMER_CODE))
    import business_logic  # noqa: F401 - registers the partner's handlers

    return subscriptions.names()


def find(
    s3: Any,
    bucket: str,
    *,
    event_ids: Iterable[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    event_type: str | None = None,
) -> list[ArchiveRecord]:
    """The archived events that match, each once (a record archived twice after a crash counts once),
    oldest first. Event IDs without a time range read the whole archive. `until` filters on when the
    event was received, not on its object's hour: an event redriven from a DLQ is archived later."""
    wanted = set(event_ids)
    prefixes = hour_prefixes(since, datetime.now(UTC)) if since else [PREFIX]
    found: dict[str, ArchiveRecord] = {}
    for record in records_in(s3, bucket, prefixes):
        if wanted and record.event_id not in wanted:
            continue
        if event_type and record.event_type != event_type:
            continue
        if since and _received(record) < since:
            continue
        if until and _received(record) > until:
            continue
        found.setdefault(record.event_id, record)
    return list(found.values())


def _received(record: ArchiveRecord) -> datetime:
    return datetime.fromisoformat(record.received_at) if record.received_at else datetime.min.replace(tzinfo=UTC)


def send(
    sqs: Any,
    queue_urls: dict[str, str],
    records: list[ArchiveRecord],
    handlers: Iterable[str],
    *,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> Iterator[str]:
    """Enqueue each record as a replay of `handlers`; yields each message ID. One replay ID per event."""
    names = ",".join(sorted(set(handlers)))
    for done, record in enumerate(records, 1):
        attributes = {
            ATTR_EVENT_TYPE: record.event_type,
            ATTR_EVENT_ID: record.event_id,
            ATTR_API_REQUEST_ID: record.api_request_id,
            ATTR_KEY_STAGE: record.key_stage,
            ATTR_KEY_VERSION: record.key_version,
            ATTR_RECEIVED_AT: record.received_at,
            ATTR_SENDER_REQUEST_ID: record.sender_request_id,
            ATTR_REPLAY_HANDLERS: names,
            ATTR_REPLAY_ID: uuid.uuid4().hex,
        }
        response = sqs.send_message(
            QueueUrl=queue_urls[record.family],
            MessageBody=record.body,
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value} for name, value in attributes.items() if value
            },
        )
        progress(done, len(records))
        yield str(response["MessageId"])
