from __future__ import annotations

import pytest

from ntp_webhooks.routing import FAMILIES, family_of


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


def test_every_family_has_a_queue() -> None:
    assert set(FAMILIES) == {"quote", "order", "workflow"}
