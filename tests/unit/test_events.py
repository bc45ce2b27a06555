from __future__ import annotations

import json
from typing import Any

import pytest

from ntp.deliveries import SAMPLE_DATA, encode, envelope
from ntp_webhooks import events
from ntp_webhooks.envelope import EnvelopeError, parse_envelope

DOCUMENTED = {
    "id": "evt_01js3q7d9w4b2k8m1z0h3v6x7y",
    "event": "quote.received",
    "timestamp": "2026-04-16T10:00:00.000Z",
    "data": {"rfqId": "rfq_123456", "quoteId": "quote_987654"},
}

MODELS = {name: event_type.model for name, event_type in events.REGISTRY.items()}


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
    ("name", "data", "expected"),
    [
        ("order.created", {"orderId": 5550123}, "5550123"),
        ("order.created", {"orderId": 10**40}, str(10**40)),
        ("quote.received", {"quoteId": 987654, "rfqId": 123}, "987654"),
        ("order.created", {"orderId": "ord_1"}, "ord_1"),
        # Not usable as a key: the event is kept and stored under its event ID, never failed.
        ("order.created", {"orderId": {"nested": 1}}, None),
        ("order.created", {"orderId": True}, None),
        ("order.created", {"orderId": 1.5}, None),
        ("order.created", {"orderId": None}, None),
    ],
)
def test_entity_ids_are_strings_whatever_was_sent(name: str, data: dict[str, Any], expected: str | None) -> None:
    event = events.parse_event(encode(envelope(name, data=data)))
    assert event.entity_id == expected
    assert json.loads(event.body)["data"] == data  # the data as sent stays available


def test_every_registered_type_has_a_sample_and_a_lifecycle_rank() -> None:
    assert set(SAMPLE_DATA) == set(events.REGISTRY)  # each parses into its model: the test above
    ranks = {t.name: t.rank for t in events.REGISTRY.values()}
    assert ranks["order.shipped"] > ranks["order.confirmed"] > ranks["order.created"]
    assert events.rank_of("order.not_in_registry") == 0


def test_a_model_outside_its_family_cannot_be_registered() -> None:
    with pytest.raises(TypeError):
        events.event_type("order.refunded", rank=4)(events.QuoteEvent)
    assert "order.refunded" not in events.REGISTRY


def test_the_consumer_applies_the_ingest_contract_itself() -> None:
    """One definition of the envelope: a body ingest would refuse is refused here for the same reason."""
    for body in (
        json.dumps({**DOCUMENTED, "id": ""}),
        json.dumps({**DOCUMENTED, "timestamp": "2026-04-16T10:00:00"}),
        json.dumps(DOCUMENTED).replace('"quote_987654"', "NaN"),
    ):
        with pytest.raises(EnvelopeError) as refused:
            events.parse_event(body)
        with pytest.raises(EnvelopeError) as at_ingest:
            parse_envelope(body.encode())
        assert refused.value.reason == at_ingest.value.reason


def test_a_partner_model_for_a_name_we_document_later_replaces_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    """Their handlers' module keeps importing when a release of ours registers a name they registered."""
    monkeypatch.setattr(events, "REGISTRY", dict(events.REGISTRY))
    monkeypatch.setattr(events, "_registered", list(events._registered))  # the parser cache's key, restored
    partner_model = type("Confirmed", (events.OrderEvent,), {"__module__": "business_logic"})
    events.event_type("order.confirmed", rank=9)(partner_model)
    assert events.REGISTRY["order.confirmed"].model is partner_model
    # ...and the consumer parses into it from the next event on (the registry kept its size).
    assert type(events.parse_event(encode(envelope("order.confirmed")))) is partner_model
    with pytest.raises(ValueError, match="registered twice"):  # but not twice from one module
        events.event_type("order.confirmed", rank=9)(partner_model)
