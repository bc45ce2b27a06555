"""`ntp replay`: archived events back through their family's consumer, into the partner handlers named.

Each event goes to its family queue as it was received, marked with the handlers to run and a replay
ID (message attributes). The consumer runs exactly those handlers once more for it: not the archive,
not the projection, no other handler; the event's own "once" record is left as it is. A replay has a
"once" record of its own, so SQS delivering it twice runs the handlers once, while a second replay
(a new ID) runs them again.
"""

from __future__ import annotations

import difflib
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

from ntp_webhooks.archive import PREFIX, ArchiveRecord, hour_prefixes, records_in
from ntp_webhooks.envelope import EVENT_NAME_PATTERN
from ntp_webhooks.events import REGISTRY
from ntp_webhooks.family_queues import MessageAttributes, Replay
from ntp_webhooks.routing import family_of

if TYPE_CHECKING:
    from ntp_webhooks.events import EventBase

#: template.yaml's `ArchiveRetentionDays` default: the bucket deletes older objects, so a range that
#: starts earlier is refused (`--retention-days` for a stack deployed with another value).
RETENTION_DAYS = 90
#: How far ahead of this machine's clock a range may end (clocks differ a little).
CLOCK_SLACK = timedelta(minutes=5)


class RangeError(ValueError):
    """A replay request that cannot be meant; its message is one line for the user."""


def check_range(since: datetime | None, until: datetime | None, now: datetime, retention_days: int) -> None:
    """Refuse a time range the archive cannot hold anything for, before any AWS call."""
    if until is not None and since is None:
        raise RangeError("--until needs --since")
    if since is None:
        return
    if until is not None and since > until:
        raise RangeError(f"--since {since.isoformat()} is after --until {until.isoformat()}")
    if since > now + CLOCK_SLACK:
        raise RangeError(f"--since {since.isoformat()} is in the future (now {now.isoformat(timespec='seconds')})")
    oldest = now - timedelta(days=retention_days)
    if since < oldest:
        raise RangeError(
            f"--since {since.isoformat()} is before anything the archive keeps: ArchiveRetentionDays is "
            f"{retention_days}, so nothing older than {oldest.isoformat(timespec='minutes')} "
            "(--retention-days N if the stack keeps more)"
        )


def subscribed(handlers: Iterable[str], event_type: str) -> set[str]:
    """Which of `handlers` the consumer would run for an event of `event_type` (by the same rule:
    `Subscriptions.handlers_for`, on the event's name and family)."""
    from ntp_webhooks.subscriptions import subscriptions

    probe = cast("EventBase", SimpleNamespace(event=event_type, family=family_of(event_type)))
    return {handler.name for handler in subscriptions.handlers_for(probe)} & set(handlers)


def check_event_type(event_type: str, handlers: Iterable[str]) -> None:
    """Refuse an `--event` that is misspelt or that none of `handlers` subscribes to."""
    names = sorted(set(handlers))
    if not re.fullmatch(EVENT_NAME_PATTERN, event_type) or len(event_type) > 128:
        raise RangeError(f"--event {event_type!r} is not an event type (family.action, as order.confirmed)")
    if event_type not in REGISTRY:
        near = difflib.get_close_matches(event_type, list(REGISTRY), n=1, cutoff=0.8)
        if near:
            raise RangeError(f"unknown event type {event_type!r}: did you mean {near[0]}?")
    if not subscribed(names, event_type):
        raise RangeError(f"{', '.join(names)} does not subscribe to {event_type}: nothing would run")


def handler_names() -> set[str]:
    """The names the consumers' registry knows: the partner's handlers, as the consumer loads them."""
    from ntp.checkout import partner_handlers

    return partner_handlers().names()


def find(
    s3: Any,
    bucket: str,
    *,
    event_ids: Iterable[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    event_type: str | None = None,
    progress: Callable[[int, int, int], None] = lambda listed, total, found: None,
) -> list[ArchiveRecord]:
    """The archived events that match, each once (a record archived twice after a crash, or delivered
    twice by Firehose, counts once), oldest first. Event IDs without a time range read the whole
    archive. A range is filtered on when each event was received, not on its object's hour: an object
    is named by its oldest record (so listing starts the hour before `since`), and an event redriven
    from a DLQ is archived later (so listing runs to now). `progress(prefixes listed, of, found)`."""
    wanted = set(event_ids)
    prefixes = listing(since)
    found: dict[str, ArchiveRecord] = {}
    for listed, prefix in enumerate(prefixes):
        progress(listed, len(prefixes), len(found))
        for record in records_in(s3, bucket, [prefix]):
            if record.event_id not in found and _matches(
                record, wanted=wanted, since=since, until=until, event_type=event_type
            ):
                found[record.event_id] = record
    progress(len(prefixes), len(prefixes), len(found))
    return list(found.values())


def listing(since: datetime | None) -> list[str]:
    """The prefixes `find` lists: the hours from the one before `since` to now, or the whole archive."""
    return hour_prefixes(since, datetime.now(UTC)) if since else [PREFIX]


def _matches(
    record: ArchiveRecord,
    *,
    wanted: set[str],
    since: datetime | None,
    until: datetime | None,
    event_type: str | None,
) -> bool:
    received = _received(record)
    return (
        (not wanted or record.event_id in wanted)
        and (not event_type or record.event_type == event_type)
        and (since is None or received >= since)
        and (until is None or received <= until)
    )


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
    names = frozenset(handlers)
    for done, record in enumerate(records, 1):
        attributes = MessageAttributes.of_archived(record, Replay(names, uuid.uuid4().hex))
        response = sqs.send_message(
            QueueUrl=queue_urls[record.family], MessageBody=record.body, MessageAttributes=attributes.to_sqs()
        )
        progress(done, len(records))
        yield str(response["MessageId"])
