"""Through whichever front door the stack has (`-m door` runs these alone, on a stack of either door):
a signed delivery is accepted and claimed once; unsigned and badly signed ones are refused before
anything is recorded."""

from __future__ import annotations

import time

import pytest

from ntp_webhooks.signature import sign
from tests.deployed.harness import FrontDoor, Run, Sender, Stack

pytestmark = pytest.mark.door


def test_the_door_is_the_one_the_stack_was_deployed_with(stack: Stack, door: FrontDoor) -> None:
    """WebhookUrl names the door FrontDoor chose (`.lambda-url.` for a function URL), and the suite
    reaches it the way NowToPrint would unless told otherwise (NTP_E2E_HTTP_API_TRANSPORT)."""
    assert door.kind == stack.parameter("FrontDoor", "HttpApi"), (stack.webhook_url, stack.parameters)
    assert door.url.endswith("/webhooks"), door.url
    print(f"front door {door.kind} at {door.url}, reached by {door.transport}")


def test_a_signed_delivery_is_accepted_and_its_event_id_claimed(stack: Stack, sender: Sender, run: Run) -> None:
    delivery = run.delivery("quote.received")
    answer = sender.send(delivery)
    assert answer.status == 202, answer
    assert answer.body == {"status": "accepted", "eventId": delivery.event_id, "family": "quote"}, answer
    item = stack.dedup_item(delivery.event_id)
    assert item is not None, "no dedup record for the accepted event"
    assert item["status"]["S"] == "COMPLETED", item
    assert int(item["expiration"]["N"]) > time.time() + 86400, "the dedup record expires within a day"


@pytest.mark.parametrize("how", ["no-header", "malformed-header", "another-key", "body-changed-after-signing"])
def test_an_unsigned_or_badly_signed_delivery_is_refused(stack: Stack, sender: Sender, run: Run, how: str) -> None:
    delivery = run.delivery("quote.received")
    header = stack.signature_header
    if how == "no-header":
        answer = sender.send_unsigned(delivery)
    elif how == "malformed-header":
        answer = sender.send_unsigned(delivery, {header: "sha256=not-a-digest"})
    elif how == "another-key":
        answer = sender.send_unsigned(delivery, {header: sign(delivery.body, b"not-the-stack-s-key-" + b"x" * 44)})
    else:
        answer = sender.send(delivery, body=delivery.body.replace(b'"data":{', b'"data": {', 1))
    assert answer.status == 401, answer
    assert answer.body == {"error": "invalid_signature", "message": "signature missing or invalid"}, answer
    assert stack.dedup_item(delivery.event_id) is None, "a refused delivery claimed its event ID"
