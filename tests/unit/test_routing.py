from __future__ import annotations

import pytest

from devtools.sam_template import SamTemplate
from ntp_webhooks.routing import FAMILIES, family_of, template_name
from ntp_webhooks.settings import queue_url_variable


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


def test_every_family_has_a_queue_the_ingest_is_given(template: SamTemplate) -> None:
    env = template.function("IngestFunction").environment
    for family in FAMILIES:
        queue = f"{template_name(family)}EventsQueue"
        assert template.resources[queue]["Type"] == "AWS::SQS::Queue"
        assert env[queue_url_variable(family)] == {"Ref": queue}
