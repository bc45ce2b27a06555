"""The envelope every NowToPrint webhook shares: `id`, `event`, `timestamp`, `data`, and anything else."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

#: Clock skew tolerated for a timestamp ahead of ours.
MAX_FUTURE_SKEW = timedelta(minutes=5)

EventId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]
EventName = Annotated[str, Field(max_length=128, pattern=r"^[a-z][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)+$")]


class Envelope(BaseModel):
    """`id`: 1-128 visible ASCII characters. `event`: lower-case dotted name. Unknown fields are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: EventId
    event: EventName
    # strict: an ISO-8601 string with a zone, not a Unix number.
    timestamp: Annotated[AwareDatetime, Field(strict=True)]
    data: dict[str, Any]

    @property
    def family(self) -> str:
        return self.event.split(".", 1)[0]


class EnvelopeError(ValueError):
    """The body is not a valid envelope; `reason` is safe to return to the sender."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_envelope(raw: bytes) -> Envelope:
    """Validate the (already verified) raw body. Errors name the field, never echo its value."""
    try:
        return Envelope.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        if first["type"] == "json_invalid":
            raise EnvelopeError("body is not valid JSON") from None
        if first["type"] == "model_type":
            raise EnvelopeError("body must be a JSON object") from None
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise EnvelopeError(f"invalid envelope: {where}: {first['msg']}") from None


def check_age(envelope: Envelope, now: datetime, max_age: timedelta) -> None:
    """Refuse events too old to be deduplicated any more (replays) or from the future."""
    if envelope.timestamp < now - max_age:
        raise EnvelopeError(f"event timestamp is older than {int(max_age.total_seconds() // 3600)} hours")
    if envelope.timestamp > now + MAX_FUTURE_SKEW:
        raise EnvelopeError("event timestamp is more than 5 minutes in the future")
