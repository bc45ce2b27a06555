"""Which event wins: the total order of an entity's events, and its bounded history. Pure, no I/O.

Events are ordered by (timestamp, lifecycle rank, event ID): two events with the same timestamp
resolve the same way whatever order they arrive in, and `order.shipped` beats `order.created` in a tie.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ntp_webhooks.events import rank_of

if TYPE_CHECKING:
    from ntp_webhooks.events import EventBase

_RANKS = 16  # lifecycle ranks 0-15 fit below one microsecond


def sequence(event: EventBase) -> int:
    """The event's position: microseconds since the epoch, then its lifecycle rank."""
    micros = int(event.timestamp.timestamp() * 1_000_000)
    return micros * _RANKS + rank_of(event.event)


@dataclass(frozen=True, order=True)
class HistoryEntry:
    """One event in an entity's history, stored compactly as `seq:event:id` (event IDs may hold ':')."""

    seq: int
    id: str
    event: str

    @classmethod
    def of(cls, event: EventBase) -> HistoryEntry:
        return cls(sequence(event), event.id, event.event)

    @classmethod
    def decode(cls, text: str) -> HistoryEntry:
        seq, name, event_id = text.split(":", 2)
        return cls(int(seq), event_id, name)

    def encode(self) -> str:
        return f"{self.seq}:{self.event}:{self.id}"

    @property
    def timestamp(self) -> datetime:
        return datetime.fromtimestamp(self.seq // _RANKS / 1_000_000, UTC)


def is_newer(entry: HistoryEntry, last_seq: int, last_id: str) -> bool:
    return (entry.seq, entry.id) > (last_seq, last_id)


def with_entry(history: list[HistoryEntry], entry: HistoryEntry, limit: int) -> list[HistoryEntry] | None:
    """The history with `entry` in order, keeping the newest `limit`; None if `entry` would not be
    kept (older than all of a full history)."""
    merged = sorted([*history, entry])[-limit:]
    return merged if entry in merged else None
