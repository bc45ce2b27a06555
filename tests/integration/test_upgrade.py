"""A partner folder written for the previous release runs unchanged with this one (README, "Upgrade").

tests/partner_0_1_0 is the partner's code exactly as release 0.1.0 shipped it (then at
functions/consumers/business_logic.py); every test of ours loads it in place of partner/handlers.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from devtools.lambda_events import signed_event
from devtools.pipeline import Pipeline
from ntp.deliveries import envelope
from tests.conftest import STAND_IN_PARTNER, JsonLogs

#: sha256 of 0.1.0's business_logic.py. A release must not need this file changed: if a change of ours
#: fails with it, the change breaks partners; fix the change, not the fixture.
RELEASE_0_1_0 = "7d78e0bc36809ba6caf00dfdd76ca4aa62f473677645c460c9b830a002e3e0f6"

#: One event per family and the line each of 0.1.0's example handlers logs for it.
EXPECTED = {
    "quote.received": "quote received: notify sales",
    "order.confirmed": "order confirmed: start production",
    "workflow.preflight_completed": "workflow signal",
}


def test_the_stand_in_is_the_0_1_0_partner_folder_unchanged() -> None:
    assert hashlib.sha256((STAND_IN_PARTNER / "business_logic.py").read_bytes()).hexdigest() == RELEASE_0_1_0


def test_a_0_1_0_partner_folder_runs_its_handlers_with_this_release(pipeline: Pipeline, json_logs: JsonLogs) -> None:
    sent = {name: envelope(name) for name in EXPECTED}
    for payload in sent.values():
        assert pipeline.deliver(signed_event(payload))["statusCode"] == 202
    for family in ("quote", "order", "workflow"):
        pipeline.poller(family).drain()

    logged = {(r.get("message"), r.get("event_id")) for r in json_logs.records()}
    for name, message in EXPECTED.items():
        assert (message, sent[name]["id"]) in logged, (name, sorted(m for m, _ in logged if m))
    # ...and it was the stand-in that ran, not the partner's own partner/handlers.
    loaded = Path(sys.modules["business_logic"].__file__ or "")
    assert loaded.resolve().parent == STAND_IN_PARTNER.resolve()
