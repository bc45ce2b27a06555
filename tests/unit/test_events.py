from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from devtools.deliveries import SAMPLE_DATA, encode, envelope
from ntp_webhooks import events
from ntp_webhooks.envelope import EnvelopeError, parse_envelope

DOCUMENTED = {
    "id": "evt_01js3q7d9w4b2k8m1z0h3v6x7y",
    "event": "quote.received",
    "timestamp": "2026-04-16T10:00:00.000Z",
    "data": {"rfqId": "rfq_123456", "quoteId": "quote_987654"},
}

MODELS = {
    "quote.received": events.QuoteReceived,
    "quote.updated": events.QuoteUpdated,
    "order.created": events.OrderCreated,
    "order.confirmed": events.OrderConfirmed,
    "order.shipped": events.OrderShipped,
    "workflow.preflight_completed": events.WorkflowSignal,
}


def test_documented_example() -> None:
    event = events.parse_event(json.dumps(DOCUMENTED))
    assert isinstance(event, events.QuoteReceived)
    assert event.data.rfqId == "rfq_123456"
    assert event.data.quoteId == "quote_987654"
    assert event.family == "quote"
    assert event.action == "received"


@pytest.mark.parametrize(("name", "model"), MODELS.items())
def test_every_documented_event_parses_and_keeps_extra_fields(name: str, model: type[events.EventBase]) -> None:
    payload = envelope(name, data={**SAMPLE_DATA[name], "newField": {"nested": [1, 2]}}, apiVersion="2026-04")
    event = events.parse_event(encode(payload))
    assert type(event) is model
    assert event.event == name
    dumped = event.model_dump(mode="json")
    assert dumped["apiVersion"] == "2026-04"
    assert dumped["data"]["newField"] == {"nested": [1, 2]}
    for key, value in SAMPLE_DATA[name].items():
        assert dumped["data"][key] == value


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("quote.expired", events.QuoteEvent),
        ("order.cancelled", events.OrderEvent),
        ("preflight.failed", events.WorkflowSignal),
    ],
)
def test_unknown_names_parse_into_their_family_model(name: str, model: type[events.EventBase]) -> None:
    event = events.parse_event(encode(envelope(name, data={"orderId": "o1", "quoteId": "q1"})))
    assert type(event) is model


def test_missing_ids_are_allowed() -> None:
    event = events.parse_event(encode(envelope("order.created", data={})))
    assert isinstance(event, events.OrderCreated)
    assert event.data.orderId is None


@pytest.mark.parametrize(
    "payload",
    [
        {**DOCUMENTED, "event": "Quote.Received"},
        {**DOCUMENTED, "timestamp": "2026-04-16T10:00:00"},
        {**DOCUMENTED, "data": []},
        {key: value for key, value in DOCUMENTED.items() if key != "id"},
        {**DOCUMENTED, "data": {"quoteId": 5}},
    ],
)
def test_invalid_bodies_raise(payload: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        events.parse_event(json.dumps(payload))


def test_non_json_raises() -> None:
    with pytest.raises(ValidationError):
        events.parse_event("not json")


# Ingest (pydantic-core) and the consumers (pydantic models) must agree on what an envelope is.
_values = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=12),
    st.sampled_from(["", "evt_1", "x" * 129, "quote.received", "Order.Created", "order", "a.b.c", "workflow.x-y"]),
    st.sampled_from(["2026-04-16T10:00:00Z", "2026-04-16T10:00:00", "2026-04-16T12:00:00+02:00", "yesterday"]),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.lists(st.integers(), max_size=2),
)


# Each field is valid about half the time, so both verdicts occur often.
_payloads = st.fixed_dictionaries(
    {name: st.one_of(st.just(DOCUMENTED[name]), _values) for name in ("id", "event", "timestamp", "data")},
    optional={"extra": _values},
)
agreed: dict[bool, int] = {True: 0, False: 0}


@settings(max_examples=400, deadline=None)
@given(_payloads)
def test_ingest_and_consumer_agree_on_validity(payload: dict[str, Any]) -> None:
    raw = json.dumps(payload).encode()
    try:
        parse_envelope(raw)
        ingest_accepts = True
    except EnvelopeError:
        ingest_accepts = False
    try:
        events.NowToPrintEvent.model_validate_json(raw)
        consumer_accepts = True
    except ValidationError:
        consumer_accepts = False
    assert ingest_accepts == consumer_accepts, payload
    agreed[ingest_accepts] += 1


def test_parity_saw_both_verdicts() -> None:
    """Runs after the property test (file order): it must not have been vacuous."""
    assert agreed[True] > 0 and agreed[False] > 0, agreed
