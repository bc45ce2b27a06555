"""ntp.testing, what partners test their handlers with (partner/tests, `make test-partner`), on our stand-in
partner folder (tests/partner_0_1_0): typed events as the consumer parses them, the subscribed handlers run."""

from __future__ import annotations

import pytest

from ntp.testing import run_handlers, sample_event
from ntp_webhooks.events import NowToPrintEvent, OrderConfirmed
from ntp_webhooks.subscriptions import Subscriptions


def test_a_sample_event_is_typed_with_the_data_given() -> None:
    event = sample_event("order.confirmed", orderId=42)
    assert isinstance(event, OrderConfirmed) and event.data.orderId == "42"  # as the consumer types it
    assert event.entity_id == "42" and event.id.startswith("evt_")


def test_run_handlers_runs_the_partners_subscribed_handlers_only() -> None:
    assert run_handlers(sample_event("order.confirmed")) == ["business_logic.start_production"]
    assert run_handlers(sample_event("order.shipped")) == []


def test_a_failing_handler_fails_the_test() -> None:
    registry = Subscriptions()

    @registry.on("quote.received")
    def broken(event: NowToPrintEvent) -> None:
        raise RuntimeError("CRM down")

    with pytest.raises(RuntimeError, match="CRM down"):
        run_handlers(sample_event("quote.received"), registry)
