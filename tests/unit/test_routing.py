"""Which family queue an event name goes to (the ingest's wiring of each family to its queue is
tests/integration/test_ingest_handler.py's `test_accepted_event_reaches_its_family_queue`)."""

from __future__ import annotations

import pytest

from ntp_webhooks.routing import family_of


@pytest.mark.parametrize(
    ("event", "family"),
    [
        ("quote.received", "quote"),
        ("quote.updated", "quote"),
        ("quote.something_new", "quote"),
        ("order.created", "order"),
        ("order.confirmed", "order"),
        ("order.shipped", "order"),
        ("order.refund.requested", "order"),
        ("workflow.preflight_completed", "workflow"),
        ("preflight.failed", "workflow"),
        ("estimate.created", "workflow"),
        ("quotes.received", "workflow"),
        ("orders.created", "workflow"),
    ],
)
def test_family(event: str, family: str) -> None:
    assert family_of(event) == family
