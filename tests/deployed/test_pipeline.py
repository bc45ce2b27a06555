"""One accepted order.confirmed through the whole pipeline: a duplicate of it is answered as such and not
enqueued again; the family's consumer (run by the stack's own SQS event source mapping) projects it and
archives its exact bytes; `ntp replay` runs one named handler for it once more."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ntp_webhooks.archive import archived_hour
from ntp_webhooks.handler_runs import KEY_PREFIX, PROJECTION_STEP
from ntp_webhooks.ordering import HistoryEntry
from tests.deployed.harness import (
    Archived,
    Delivery,
    Run,
    Sender,
    Settings,
    Stack,
    current_key,
    done_steps,
    eventually,
    find_archived,
    ntp,
    subscribed_handlers,
    wait_processed,
)


@dataclass(frozen=True)
class Accepted:
    delivery: Delivery
    key_version: str
    sent_at: datetime


@pytest.fixture(scope="module")
def accepted(stack: Stack, sender: Sender, run: Run) -> Accepted:
    delivery = run.delivery("order.confirmed")
    key = current_key(stack)
    sent_at = datetime.now(UTC)
    answer = sender.send(delivery, key.value)
    assert answer.status == 202, answer
    return Accepted(delivery, key.version_id, sent_at)


@pytest.fixture(scope="module")
def archived(stack: Stack, accepted: Accepted, settings: Settings) -> Callable[[], Archived]:
    """The accepted event's archive record, waited for once (Firehose's buffer, up to 300 s on AWS)."""

    @functools.cache
    def wait() -> Archived:
        hour = archived_hour(done_steps(wait_processed(stack, accepted.delivery, settings.process_timeout)))
        assert hour is not None
        seen: set[str] = set()
        return eventually(
            lambda: find_archived(stack, accepted.delivery.event_id, hour, seen),
            settings.archive_timeout,
            f"{accepted.delivery.event_id} in the archive bucket under {hour}",
            interval=5,
        )

    return wait


def test_the_same_bytes_again_are_a_duplicate_and_enqueue_nothing(
    stack: Stack, sender: Sender, accepted: Accepted, settings: Settings
) -> None:
    """The duplicate answer, and no second message. A message is not observable on the queue (the
    event source mapping takes it at once), but what consuming one writes is: every copy that reaches a
    consumer rewrites the event's `handled#` record (its claim, then its TTL, whole seconds). So the
    record must stay exactly as the first copy left it, for the batching window and 20 s more: long
    enough for a second message to be consumed. (A copy delayed longer, or SQS delivering the first
    message twice, which it may, would be outside or beside what this proves.)"""
    delivery = accepted.delivery
    first = wait_processed(stack, delivery, settings.process_timeout)
    state = stack.state_item(delivery.state_key)
    time.sleep(1.1)  # a later copy's TTL would differ in whole seconds
    answer = sender.send(delivery)
    assert answer.status == 200, answer
    assert answer.body == {"status": "duplicate", "eventId": delivery.event_id}, answer
    item = stack.dedup_item(delivery.event_id)
    assert item is not None and item["status"]["S"] == "COMPLETED", item
    quiet = float(stack.parameter("ConsumerBatchingWindowSeconds", "10")) + 20
    deadline = time.monotonic() + quiet
    while time.monotonic() < deadline:
        assert stack.handled_item(delivery.event_id) == first, "a second copy of the event was consumed"
        time.sleep(2)
    assert stack.state_item(delivery.state_key) == state


def test_the_consumer_projects_the_event_and_runs_its_handlers(
    stack: Stack, accepted: Accepted, settings: Settings
) -> None:
    delivery = accepted.delivery
    done = done_steps(wait_processed(stack, delivery, settings.process_timeout))
    hour = archived_hour(done)
    assert hour is not None
    assert done == {PROJECTION_STEP, f"#archive:{hour}", *subscribed_handlers(delivery)}
    hour_sent = accepted.sent_at.replace(minute=0, second=0, microsecond=0)
    assert hour_sent <= datetime.strptime(hour, "%Y/%m/%d/%H").replace(tzinfo=UTC) <= datetime.now(UTC), hour
    state = stack.state_item(delivery.state_key)
    assert state is not None, f"no state item {delivery.state_key}"
    assert state["status"] == {"S": "confirmed"}
    assert state["lastEventId"] == {"S": delivery.event_id}
    assert state["archiveHour"] == {"S": hour}
    history = [HistoryEntry.decode(entry["S"]) for entry in state["history"]["L"]]
    assert [(h.id, h.event) for h in history] == [(delivery.event_id, delivery.event_type)]


def test_the_archive_keeps_the_exact_bytes_received(
    stack: Stack, accepted: Accepted, archived: Callable[[], Archived]
) -> None:
    delivery, found = accepted.delivery, archived()
    print(f"archived in {found.key} ({'gzip' if found.gzip else 'not compressed'})")
    record = found.record
    assert record.body.encode() == delivery.body, body_difference(record.body.encode(), delivery.body)
    assert record.encode() in found.data, "the record's bytes differ from its metadata line, body and newline"
    assert (record.event_type, record.family) == (delivery.event_type, delivery.family)
    assert record.sender_request_id == delivery.sender_request_id
    assert (record.key_stage, record.key_version) == ("AWSCURRENT", accepted.key_version)
    assert record.api_request_id, "no API request ID archived"
    received = datetime.fromisoformat(record.received_at)
    assert accepted.sent_at - timedelta(minutes=5) <= received <= datetime.now(UTC), record.received_at


def body_difference(archived: bytes, sent: bytes) -> str:
    at = next(
        (i for i, (a, b) in enumerate(zip(archived, sent, strict=False)) if a != b), min(len(archived), len(sent))
    )
    why = (
        f"archived body differs from the bytes sent at byte {at}: {archived[at : at + 16]!r} vs {sent[at : at + 16]!r}"
    )
    if archived == json.dumps(json.loads(sent)).encode():
        why += "; it is the body parsed and written again by json.dumps (between the family queue and the archive)"
    return why


def test_replay_runs_the_named_handler_once_more(
    stack: Stack, accepted: Accepted, archived: Callable[[], Archived], settings: Settings
) -> None:
    delivery = accepted.delivery
    handlers = subscribed_handlers(delivery)
    if not handlers:
        pytest.skip(f"business_logic.py subscribes no handler to {delivery.event_type}: nothing to replay into")
    handler = handlers[0]
    archived()  # replay reads the archive
    own = wait_processed(stack, delivery, settings.process_timeout)
    state = stack.state_item(delivery.state_key)

    result = ntp(stack, "replay", "--event-id", delivery.event_id, "--handler", handler)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"replayed 1 event into {handler}" in result.stdout, result.stdout

    prefix = f"{KEY_PREFIX}{delivery.event_id}#replay:"

    def replays() -> list[dict[str, Any]] | None:
        found = stack.state_items_starting(prefix)
        return found if found and all("claimToken" not in item and done_steps(item) for item in found) else None

    (replay,) = eventually(replays, settings.process_timeout, f"a finished {prefix}<replay id> record")
    assert done_steps(replay) == {handler}, "the replay ran other steps than the handler it named"
    assert stack.handled_item(delivery.event_id) == own, "the replay changed the event's own handled# record"
    assert stack.state_item(delivery.state_key) == state, "the replay changed the projection"
