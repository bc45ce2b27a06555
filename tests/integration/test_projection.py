"""The state projection against moto: ordering, duplicates, ties, missing IDs, and its call budget."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from moto import mock_aws

from devtools.pipeline import reused_client
from devtools.provision import Provisioner
from devtools.sam_template import SamTemplate
from ntp.deliveries import encode, envelope
from ntp.operations import read_state
from ntp_webhooks.aws_clients import client as aws_client
from ntp_webhooks.events import EventBase, parse_event
from ntp_webhooks.projection import DEFAULT_HISTORY_LENGTH as HISTORY_LIMIT
from ntp_webhooks.projection import Outcome, Projection
from tests.conftest import TEMPLATE, JsonLogs
from tests.hypothesis_profiles import settings

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
LIFECYCLE = ("order.created", "order.confirmed", "order.shipped")


@pytest.fixture(scope="module")
def state() -> Iterator[tuple[Projection, Any, str]]:
    """One moto table for the module; each test uses its own entity IDs."""
    with mock_aws():
        # A consumer's resources hold the projection's table: no alarms, logs, queues of other families.
        stack = Provisioner(
            TEMPLATE, reused_client, operations=False, functions=["OrderConsumerFunction"], record_only=False
        ).provision()
        # The consumers' own client (no parameter validation, the User-Agent built once): the projection's
        # calls as in Lambda, and a tenth less CPU each than a default boto3 client's.
        client = aws_client("dynamodb")
        yield Projection(client, stack.refs["StateTable"]), client, stack.refs["StateTable"]


def order_events(
    order_id: str, names: tuple[str, ...] = LIFECYCLE, step: timedelta = timedelta(minutes=1)
) -> list[EventBase]:
    return [
        parse_event(encode(envelope(name, timestamp=T0 + i * step, data={"orderId": order_id, "step": i})))
        for i, name in enumerate(names)
    ]


def arrivals(count: int) -> st.SearchStrategy[list[int]]:
    """Every one of `count` events in any order, then up to 4 duplicates of any of them."""
    return st.permutations(range(count)).flatmap(
        lambda order: st.lists(st.sampled_from(range(count)), max_size=4).map(lambda extra: [*order, *extra])
    )


def assert_ends_like_in_order(
    state: tuple[Projection, Any, str],
    projection: Projection,
    reference: list[EventBase],
    arrival: list[int],
    applied: bool = False,
) -> None:
    """`reference` applied in order (already, if `applied`), and the same events (same IDs, timestamps
    and data) for another entity in `arrival` order, end in the same item but for the entity's own ID."""
    entity, reference_id = reference[0].family, reference[0].entity_id
    assert reference_id is not None
    shuffled_id = f"{reference_id}_shuffled_{uuid.uuid4().hex[:8]}"
    if not applied:
        for event in reference:
            projection.apply(event)
    shuffled = [parse_event(e.body.replace(reference_id, shuffled_id).encode()) for e in reference]
    for index in arrival:
        projection.apply(shuffled[index])
    expected = final(state, entity, reference_id)
    actual = final(state, entity, shuffled_id)
    for item in (expected, actual):  # everything but the entity's own ID
        del item["pk"], item["entityId"]
    assert actual == expected


def final(state: tuple[Projection, Any, str], entity: str, entity_id: str) -> dict[str, Any]:
    _, client, table = state
    item = read_state(client, table, entity, entity_id)
    assert item is not None
    item.pop("revision")  # counts writes, which depends on arrival order by design
    return item


def test_in_order_lifecycle(state: tuple[Projection, Any, str]) -> None:
    projection, *_ = state
    order_id = f"ord_{uuid.uuid4().hex[:8]}"
    created, confirmed, shipped = order_events(order_id)
    hours = ("2026/12/01/09", "2026/12/01/10", "2026/12/01/11")
    assert [projection.apply(e, hour) for e, hour in zip((created, confirmed, shipped), hours, strict=True)] == [
        Outcome.APPLIED
    ] * 3
    item = final(state, "order", order_id)
    assert item["archiveHour"] == hours[2]  # where the newest event's bytes are (the archive)
    assert "body" not in item and "data" not in item
    assert item["status"] == "shipped"
    assert item["lastEventId"] == shipped.id
    assert item["lastEvent"] == "order.shipped"
    assert item["lastEventTimestamp"] == shipped.timestamp.isoformat()
    assert item["entityType"] == "order" and item["entityId"] == order_id
    assert [h["id"] for h in item["history"]] == [created.id, confirmed.id, shipped.id]


def test_older_event_never_overwrites_but_is_recorded(state: tuple[Projection, Any, str]) -> None:
    projection, *_ = state
    order_id = f"ord_{uuid.uuid4().hex[:8]}"
    created, confirmed, shipped = order_events(order_id)
    assert projection.apply(shipped) == Outcome.APPLIED
    assert projection.apply(created) == Outcome.STALE
    assert projection.apply(confirmed) == Outcome.STALE
    item = final(state, "order", order_id)
    assert item["status"] == "shipped"
    assert [h["event"] for h in item["history"]] == list(LIFECYCLE)


def test_the_same_event_twice_changes_nothing(state: tuple[Projection, Any, str]) -> None:
    projection, *_ = state
    order_id = f"ord_{uuid.uuid4().hex[:8]}"
    created, confirmed, _ = order_events(order_id)
    projection.apply(created)
    projection.apply(confirmed)
    _, client, table = state
    before = read_state(client, table, "order", order_id)
    assert projection.apply(confirmed) == Outcome.DUPLICATE
    assert projection.apply(created) == Outcome.DUPLICATE
    assert read_state(client, table, "order", order_id) == before  # revision included: nothing written


def test_same_timestamp_resolves_the_same_way_in_either_order(state: tuple[Projection, Any, str]) -> None:
    projection, *_ = state
    results = []
    for order in ((0, 1), (1, 0)):
        order_id = f"ord_{uuid.uuid4().hex[:8]}"
        events = [
            parse_event(encode(envelope(name, event_id=f"evt_{suffix}", timestamp=T0, data={"orderId": order_id})))
            for name, suffix in (("order.confirmed", "a"), ("order.shipped", "b"))
        ]
        for index in order:
            projection.apply(events[index])
        item = final(state, "order", order_id)
        results.append((item["status"], item["lastEventId"], [h["id"] for h in item["history"]]))
    assert results[0] == results[1] == ("shipped", "evt_b", ["evt_a", "evt_b"])


#: (the module's `state`, step) -> the lifecycle applied in order with that step between events.
_REFERENCES: dict[tuple[int, timedelta], list[EventBase]] = {}


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arrival=arrivals(3), tie=st.booleans())
def test_any_arrival_order_with_duplicates_ends_like_in_order_delivery(
    state: tuple[Projection, Any, str], arrival: list[int], tie: bool
) -> None:
    """Every permutation of created/confirmed/shipped, plus duplicates anywhere, with or without
    timestamp ties, ends in exactly the item that in-order delivery produces."""
    projection, *_ = state
    step = timedelta(0) if tie else timedelta(minutes=1)
    # The in-order reference of each step is written once: every example compares its own entity,
    # given the same events in its own arrival order, with it.
    key = (id(state), step)
    if key not in _REFERENCES:
        reference = order_events(f"ord_{uuid.uuid4().hex[:8]}", step=step)
        for event in reference:
            projection.apply(event)
        _REFERENCES[key] = reference
    assert_ends_like_in_order(state, projection, _REFERENCES[key], arrival, applied=True)


def test_quote_keeps_its_rfq_link(state: tuple[Projection, Any, str]) -> None:
    projection, *_ = state
    quote_id = f"quote_{uuid.uuid4().hex[:8]}"
    updated = parse_event(
        encode(envelope("quote.updated", timestamp=T0 + timedelta(minutes=5), data={"quoteId": quote_id}))
    )
    received = parse_event(
        encode(envelope("quote.received", timestamp=T0, data={"quoteId": quote_id, "rfqId": "rfq_9"}))
    )
    projection.apply(updated)
    assert projection.apply(received) == Outcome.STALE
    item = final(state, "quote", quote_id)
    assert item["status"] == "updated"
    assert item["rfqId"] == "rfq_9"


def test_missing_entity_id_is_stored_under_the_event_id(
    state: tuple[Projection, Any, str], json_logs: JsonLogs
) -> None:
    projection, *_ = state
    event = parse_event(encode(envelope("order.created", data={"note": "no id"})))
    assert projection.apply(event) == Outcome.APPLIED
    item = final(state, "order", event.id)
    assert item["entityIdMissing"] is True
    assert any(log["level"] == "WARNING" and "no entity ID" in log["message"] for log in json_logs.records())


def test_workflow_signals_are_stored_per_event(state: tuple[Projection, Any, str]) -> None:
    projection, *_ = state
    event = parse_event(encode(envelope("preflight.failed", data={"jobId": "j1"})))
    assert projection.apply(event) == Outcome.APPLIED
    item = final(state, "workflow", event.id)
    assert item["status"] == "failed" and item["lastEventId"] == event.id


def test_history_is_bounded_to_the_newest_entries(state: tuple[Projection, Any, str]) -> None:
    projection, *_ = state
    order_id = f"ord_{uuid.uuid4().hex[:8]}"
    names = tuple(f"order.step_{i}" for i in range(HISTORY_LIMIT + 5))
    events = order_events(order_id, names)
    for event in events[5:]:
        projection.apply(event)
    for event in events[:5]:  # older than everything kept: nothing to write
        assert projection.apply(event) == Outcome.DUPLICATE
    projection.apply(events[0])
    item = final(state, "order", order_id)
    assert [h["id"] for h in item["history"]] == [e.id for e in events[5:]]
    assert len(item["history"]) == HISTORY_LIMIT


def test_an_item_written_with_a_body_loses_it_at_its_next_write(state: tuple[Projection, Any, str]) -> None:
    """Items of the version before the archive kept the newest body; the next write removes it."""
    projection, client, table = state
    order_id = f"ord_{uuid.uuid4().hex[:8]}"
    created, confirmed, _ = order_events(order_id)
    projection.apply(created)
    client.update_item(
        TableName=table,
        Key={"pk": {"S": f"order#{order_id}"}},
        UpdateExpression="SET body = :b, bodyBytes = :n",
        ExpressionAttributeValues={":b": {"S": created.body}, ":n": {"N": str(len(created.body))}},
    )
    projection.apply(confirmed)
    item = final(state, "order", order_id)
    assert item["status"] == "confirmed" and not {"body", "bodyBytes", "bodyOmitted"} & item.keys()


def test_template_table_key_matches_the_code(template: SamTemplate) -> None:
    from ntp_webhooks.projection import KEY_ATTRIBUTE

    props = template.resources["StateTable"]["Properties"]
    assert props["KeySchema"] == [{"AttributeName": KEY_ATTRIBUTE, "KeyType": "HASH"}]


def test_a_field_some_events_omit_holds_the_newest_carriers_value_in_any_order(
    state: tuple[Projection, Any, str],
) -> None:
    """Finding 8: rfq_1 (t0), rfq_2 (t10), then two updates without an rfqId. Every one of the 24
    arrival orders ends with rfq_2, as in-order delivery does."""
    projection, *_ = state
    outcomes = set()
    for order in itertools.permutations(range(4)):
        quote_id = f"quote_{uuid.uuid4().hex[:8]}"
        datas = [{"rfqId": "rfq_1"}, {"rfqId": "rfq_2"}, {}, {}]
        events = [
            parse_event(
                encode(
                    envelope(
                        "quote.updated",
                        timestamp=T0 + timedelta(seconds=10 * i),
                        data={"quoteId": quote_id, **data},
                    )
                )
            )
            for i, data in enumerate(datas)
        ]
        for index in order:
            projection.apply(events[index])
        item = final(state, "quote", quote_id)
        outcomes.add((item["rfqId"], item["lastEventId"] == events[3].id))
    assert outcomes == {("rfq_2", True)}


def test_the_state_item_does_not_grow_with_the_body(state: tuple[Projection, Any, str]) -> None:
    """The body lives in the archive: a 16 KB body costs the state table what a 200 B body does."""
    from ntp_webhooks.item_size import item_size

    projection, client, table = state
    sizes = {}
    for body_bytes in (200, 16 * 1024):
        order_id = f"ord_{uuid.uuid4().hex[:8]}"
        payload = envelope("order.created", data={"orderId": order_id, "notes": ""})
        payload["data"]["notes"] = "n" * (body_bytes - len(encode(payload)))
        event = parse_event(encode(payload))
        assert len(event.body.encode()) == body_bytes
        assert projection.apply(event, "2026/12/01/10") == Outcome.APPLIED
        stored = client.get_item(TableName=table, Key={"pk": {"S": f"order#{order_id}"}})["Item"]
        sizes[body_bytes] = item_size(stored)
    assert sizes[200] == sizes[16 * 1024] and sizes[200] <= 1024, sizes


def quote_event(quote_id: str, name: str, at: timedelta, **data: str) -> EventBase:
    return parse_event(encode(envelope(name, timestamp=T0 + at, data={"quoteId": quote_id, **data})))


@pytest.mark.parametrize("history_length", [2, 3, 8, 9, 12])
@pytest.mark.parametrize("newer", ["one more than kept", "twice as many as kept"])
def test_a_late_carrier_older_than_a_full_history_still_gives_its_field(
    state: tuple[Projection, Any, str], history_length: int, newer: str
) -> None:
    """Issue 27, item 2: the `quote.received` that alone carries `rfqId` arrives after more than
    `StateHistoryLength` newer updates. It is not kept in the history, but the quote gets its `rfqId`;
    the newer events' state stays, and a redelivery of it changes nothing."""
    _, client, table = state
    projection = Projection(client, table, history_length)
    quote_id = f"quote_{uuid.uuid4().hex[:8]}"
    count = history_length + 1 if newer == "one more than kept" else 2 * history_length
    updates = [quote_event(quote_id, "quote.updated", timedelta(minutes=1 + i)) for i in range(count)]
    received = quote_event(quote_id, "quote.received", timedelta(0), rfqId="rfq_late")
    for update in updates:
        assert projection.apply(update) == Outcome.APPLIED
    before = final(state, "quote", quote_id)
    assert "rfqId" not in before
    assert projection.apply(received) == Outcome.STALE
    item = final(state, "quote", quote_id)
    assert item["rfqId"] == "rfq_late"
    assert {k: v for k, v in item.items() if k not in ("rfqId", "rfqIdFrom")} == before  # nothing newer touched
    stored = read_state(client, table, "quote", quote_id)
    assert projection.apply(received) == Outcome.DUPLICATE  # a redelivery: nothing written
    assert read_state(client, table, "quote", quote_id) == stored  # revision included


@pytest.mark.parametrize("history_length", [2, 3, 8, 9, 12])
def test_a_late_carrier_never_overwrites_a_newer_carriers_value(
    state: tuple[Projection, Any, str], history_length: int
) -> None:
    _, client, table = state
    projection = Projection(client, table, history_length)
    quote_id = f"quote_{uuid.uuid4().hex[:8]}"
    updates = [quote_event(quote_id, "quote.updated", timedelta(minutes=1 + i)) for i in range(history_length + 2)]
    updates[-2] = quote_event(quote_id, "quote.updated", timedelta(minutes=history_length + 1), rfqId="rfq_new")
    for update in updates:
        projection.apply(update)
    stored = read_state(client, table, "quote", quote_id)
    assert stored is not None and stored["rfqId"] == "rfq_new"
    late = quote_event(quote_id, "quote.received", timedelta(0), rfqId="rfq_old")
    assert projection.apply(late) == Outcome.DUPLICATE  # older than a full history, nothing to add
    assert read_state(client, table, "quote", quote_id) == stored  # revision included: nothing written


@pytest.mark.parametrize("history_length", [2, 3, 8, 9, 12])
def test_a_redelivered_carrier_pushed_out_of_the_history_changes_nothing(
    state: tuple[Projection, Any, str], history_length: int
) -> None:
    """Applied in order, then pushed out of the history by newer updates: its redelivery finds its
    field already set by it (`rfqIdFrom`) and writes nothing."""
    _, client, table = state
    projection = Projection(client, table, history_length)
    quote_id = f"quote_{uuid.uuid4().hex[:8]}"
    received = quote_event(quote_id, "quote.received", timedelta(0), rfqId="rfq_1")
    assert projection.apply(received) == Outcome.APPLIED
    for i in range(history_length + 1):
        projection.apply(quote_event(quote_id, "quote.updated", timedelta(minutes=1 + i)))
    stored = read_state(client, table, "quote", quote_id)
    assert stored is not None and stored["rfqId"] == "rfq_1"
    assert received.id not in [h["id"] for h in stored["history"]]
    assert projection.apply(received) == Outcome.DUPLICATE
    assert read_state(client, table, "quote", quote_id) == stored  # revision included: nothing written


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    history_length=st.sampled_from([2, 3]),
    carriers=st.lists(st.booleans(), min_size=6, max_size=6),
    arrival=arrivals(6),
)
def test_any_arrival_order_past_a_short_history_ends_like_in_order_delivery(
    state: tuple[Projection, Any, str], history_length: int, carriers: list[bool], arrival: list[int]
) -> None:
    """Six quote events, any of them carrying an `rfqId`, with a history shorter than their number:
    every arrival order, with duplicates anywhere, ends in the item in-order delivery produces
    (status, history, and the newest carrier's `rfqId`)."""
    _, client, table = state
    projection = Projection(client, table, history_length)
    reference_id = f"quote_{uuid.uuid4().hex[:8]}"
    reference = [
        quote_event(
            reference_id,
            "quote.received" if i == 0 else "quote.updated",
            timedelta(minutes=i),
            **({"rfqId": f"rfq_{i}"} if carries else {}),
        )
        for i, carries in enumerate(carriers)
    ]
    assert_ends_like_in_order(state, projection, reference, arrival)


def test_a_value_without_its_carrier_mark_is_only_replaced_by_the_newest_event(
    state: tuple[Projection, Any, str],
) -> None:
    """Items written before `rfqIdFrom` existed: an older event only fills a missing value, as then."""
    _, client, table = state
    projection = Projection(client, table, 2)
    quote_id = f"quote_{uuid.uuid4().hex[:8]}"
    for i in range(3):
        projection.apply(quote_event(quote_id, "quote.updated", timedelta(minutes=2 + i)))
    client.update_item(
        TableName=table,
        Key={"pk": {"S": f"quote#{quote_id}"}},
        UpdateExpression="SET rfqId = :r",
        ExpressionAttributeValues={":r": {"S": "rfq_unmarked"}},
    )
    in_history = quote_event(quote_id, "quote.updated", timedelta(minutes=3, seconds=30), rfqId="rfq_stale")
    past_history = quote_event(quote_id, "quote.received", timedelta(0), rfqId="rfq_old")
    assert projection.apply(in_history) == Outcome.STALE  # joins the history, leaves the value
    assert projection.apply(past_history) == Outcome.DUPLICATE
    assert final(state, "quote", quote_id)["rfqId"] == "rfq_unmarked"
    newest = quote_event(quote_id, "quote.updated", timedelta(minutes=9), rfqId="rfq_new")
    assert projection.apply(newest) == Outcome.APPLIED
    item = final(state, "quote", quote_id)
    assert item["rfqId"] == "rfq_new" and item["rfqIdFrom"].endswith(newest.id)


def test_the_newest_event_is_one_write_and_anything_else_is_decided_on_the_refused_writes_item(
    state: tuple[Projection, Any, str],
) -> None:
    """No read: the entity's newest event with room in its history is appended by one conditional
    write; a full history, an older event or a repeat is refused, and the write that decides (or none,
    for a repeat) uses the item the refusal returned. Another error than a refusal is raised."""
    from botocore.exceptions import ClientError

    projection, client, _ = state
    calls: list[str] = []

    def record(event_name: str, **_: Any) -> None:
        calls.append(event_name.rsplit(".", 1)[1])

    client.meta.events.register("before-call.dynamodb.*", record)
    try:
        order_id = f"ord_{uuid.uuid4().hex[:8]}"
        events = order_events(order_id, tuple(f"order.step_{i}" for i in range(HISTORY_LIMIT + 1)))
        for event in events[:HISTORY_LIMIT]:
            assert projection.apply(event) == Outcome.APPLIED
        assert calls == ["UpdateItem"] * HISTORY_LIMIT  # appended, nothing read
        calls.clear()
        assert projection.apply(events[HISTORY_LIMIT]) == Outcome.APPLIED  # the history is full
        assert calls == ["UpdateItem", "UpdateItem"]  # refused, then written on the returned item
        calls.clear()
        assert projection.apply(events[HISTORY_LIMIT]) == Outcome.DUPLICATE  # a repeat
        assert projection.apply(events[1]) == Outcome.DUPLICATE  # older than the whole history
        assert calls == ["UpdateItem", "UpdateItem"]  # each refused; nothing to write
    finally:
        client.meta.events.unregister("before-call.dynamodb.*", record)
    assert [h["id"] for h in final(state, "order", order_id)["history"]] == [e.id for e in events[1:]]

    throttled = ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "UpdateItem")

    def throttle(**_: Any) -> None:
        raise throttled

    client.meta.events.register("before-call.dynamodb.UpdateItem", throttle)
    try:
        with pytest.raises(ClientError) as raised:
            projection.apply(order_events(f"ord_{uuid.uuid4().hex[:8]}")[0])
    finally:
        client.meta.events.unregister("before-call.dynamodb.UpdateItem", throttle)
    assert raised.value is throttled
