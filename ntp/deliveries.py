"""Sample NowToPrint events, as the sender shapes them: `ntp send` and `ntp sample`, your tests (`ntp.testing`),
our tests and the sample-event generator."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

#: The documented local development secret: sample events in events/ are signed with it.
LOCAL_DEV_SECRET = "ntp-local-dev-secret-do-not-use-in-production"  # noqa: S105 - public by design
DEFAULT_SIGNATURE_HEADER = "X-Webhook-Signature"

#: `data` for a sample of every documented event type (events/, `ntp sample`, `ntp send`); a test
#: checks that every type in the registry has one.
SAMPLE_DATA: dict[str, dict[str, Any]] = {
    "quote.received": {"rfqId": "rfq_123456", "quoteId": "quote_987654"},
    "quote.updated": {"rfqId": "rfq_123456", "quoteId": "quote_987654", "total": {"amount": 1249, "currency": "EUR"}},
    "order.created": {"orderId": "ord_555001", "quoteId": "quote_987654"},
    "order.confirmed": {"orderId": "ord_555001"},
    "order.shipped": {"orderId": "ord_555001", "trackingNumber": "1Z999AA10123456784"},
    "workflow.preflight_completed": {"jobId": "job_42", "result": "passed"},
}


def new_event_id() -> str:
    return "evt_" + uuid.uuid4().hex


def envelope(
    event: str = "quote.received",
    *,
    event_id: str | None = None,
    timestamp: datetime | str | None = None,
    data: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A sender-shaped payload with a fresh ID and the current time unless given."""
    when = timestamp or datetime.now(UTC)
    return {
        "id": event_id or new_event_id(),
        "event": event,
        "timestamp": when if isinstance(when, str) else when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "data": dict(SAMPLE_DATA.get(event, {}) if data is None else data),
        **extra,
    }


def encode(payload: dict[str, Any]) -> bytes:
    """Compact JSON, as a typical sender serializes it."""
    return json.dumps(payload, separators=(",", ":")).encode()
