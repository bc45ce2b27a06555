"""Test your handlers with typed events, as the consumer hands them over, without AWS.

    from ntp.testing import run_handlers, sample_event

    def test_a_confirmed_order_starts_production():
        event = sample_event("order.confirmed", orderId="ord_1")
        assert run_handlers(event) == ["business_logic.start_production"]

`make test-partner` runs partner/tests with partner/handlers importable (partner/tests/conftest.py).
What the consumer adds around your handlers (projection, once-per-event records, retries) is ours and
tested by us; these helpers run only your code.
"""

from __future__ import annotations

from typing import Any

from ntp.checkout import partner_handlers, use_template_families
from ntp.deliveries import encode, envelope
from ntp_webhooks.events import EventBase, parse_event
from ntp_webhooks.subscriptions import Subscriptions


def sample_event(event_type: str, /, **data: Any) -> EventBase:
    """A typed event of `event_type` (a new ID, sent now): the documented sample's `data`, updated with
    `data`. Parsed by the consumer's own rules, so a field your handler reads is typed as it will be."""
    use_template_families()
    payload = envelope(event_type)
    payload["data"] = {**payload["data"], **data}
    return parse_event(encode(payload))


def run_handlers(event: EventBase, registry: Subscriptions | None = None) -> list[str]:
    """Run every handler subscribed to `event` (your business_logic's, by default), in the consumer's
    order; returns their names. An exception propagates: the consumer would retry the record."""
    registry = registry or partner_handlers()
    ran = []
    for handler in registry.handlers_for(event):
        handler(event)
        ran.append(handler.name)
    return ran
