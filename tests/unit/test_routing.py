from __future__ import annotations

import pytest

from devtools.sam_template import SamTemplate
from ntp_webhooks.routing import FAMILIES, family_of
from ntp_webhooks.settings import IngestSettings


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


def test_every_family_has_a_queue_in_the_template_and_the_settings(template: SamTemplate) -> None:
    env = template.function("IngestFunction").environment
    for family in FAMILIES:
        queue = f"{family.title()}EventsQueue"
        assert template.resources[queue]["Type"] == "AWS::SQS::Queue"
        assert env[f"{family.upper()}_QUEUE_URL"] == {"Ref": queue}
    assert set(IngestSettings.__dataclass_fields__) >= {f"{family}_queue_url" for family in FAMILIES}
