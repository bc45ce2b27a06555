"""The envelope every NowToPrint webhook shares: `id`, `event`, `timestamp`, `data`, and anything else.

This module is the one contract of the pipeline: what ingest answers 202 for, the consumers store and
hand to the partner's handlers (docs/architecture.md, "The envelope contract"). Besides the fields'
rules, the body must be RFC 8259 JSON that every later step can carry: finite numbers only (no
`NaN`/`Infinity`, no number beyond a double's range) and at most `MAX_DEPTH` levels of nesting.
Duplicate keys are accepted: the parser keeps the last one, and it is the same parser in both
functions, so all steps see the same event.

Validated with pydantic-core's `SchemaValidator` (pydantic v2's validation engine) rather than a
`BaseModel`: importing `pydantic.main` costs ~100 ms of the ingest function's cold start, over its
budget (docs/performance.md). The consumers apply this same function first (`events.parse_event`)
and only then build their typed models, so there is one definition of the rules.
"""

from __future__ import annotations

import calendar
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic_core import SchemaValidator, ValidationError

#: Clock skew tolerated for a timestamp ahead of ours.
MAX_FUTURE_SKEW = timedelta(minutes=5)
#: 1-128 visible ASCII characters (no spaces or control characters).
EVENT_ID_PATTERN = r"^[\x21-\x7e]{1,128}$"
#: A lower-case dotted name: `quote.received`, `workflow.preflight_completed`.
EVENT_NAME_PATTERN = r"^[a-z][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)+$"
EVENT_NAME_MAX_LENGTH = 128
#: The one timestamp rule (README and docs/architecture.md quote it): an ISO 8601 date-time as RFC 3339
#: profiles it: date, upper-case `T`, time with seconds (a fraction allowed), and a zone (`Z` or
#: `+02:00`). Unix numbers, numeric strings, lower-case `t`/`z` and a space separator are refused.
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$"
#: Nesting levels of the whole body (the envelope object is level 1, `data` level 2). JSON parsers
#: recurse per level; real payloads stay far below this.
MAX_DEPTH = 32

_VALIDATOR = SchemaValidator(
    {
        "type": "typed-dict",
        "extra_behavior": "allow",  # unknown top-level fields are kept
        "fields": {
            "id": {
                "type": "typed-dict-field",
                "schema": {
                    "type": "str",
                    "strict": True,
                    "min_length": 1,
                    "max_length": 128,
                    "pattern": EVENT_ID_PATTERN,
                },
            },
            "event": {
                "type": "typed-dict-field",
                "schema": {
                    "type": "str",
                    "strict": True,
                    "max_length": EVENT_NAME_MAX_LENGTH,
                    "pattern": EVENT_NAME_PATTERN,
                },
            },
            # The text must match TIMESTAMP_PATTERN before it is read as a date-time.
            "timestamp": {
                "type": "typed-dict-field",
                "schema": {
                    "type": "chain",
                    "steps": [
                        {"type": "str", "strict": True, "pattern": TIMESTAMP_PATTERN},
                        {"type": "datetime", "tz_constraint": "aware"},
                    ],
                },
            },
            "data": {
                "type": "typed-dict-field",
                "schema": {"type": "dict", "keys_schema": {"type": "str"}, "values_schema": {"type": "any"}},
            },
        },
    }
)


@dataclass(frozen=True, slots=True)
class Envelope:
    id: str
    event: str
    timestamp: datetime
    data: dict[str, Any]
    #: Every top-level field as sent (timestamp as an ISO string), unknown ones included.
    fields: dict[str, Any]


class EnvelopeError(ValueError):
    """The body is not a valid envelope; `reason` is safe to return to the sender."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_envelope(raw: bytes) -> Envelope:
    """Validate the (already verified) raw body. Errors name the field, never echo its value."""
    try:
        parsed: dict[str, Any] = _VALIDATOR.validate_json(raw)
    except ValidationError as exc:
        raise EnvelopeError(describe(exc)) from None
    _check_values(parsed)
    timestamp: datetime = parsed["timestamp"]
    return Envelope(
        id=parsed["id"],
        event=parsed["event"],
        timestamp=timestamp,
        data=parsed["data"],
        fields={**parsed, "timestamp": timestamp.isoformat()},
    )


def _check_values(body: dict[str, Any]) -> None:
    """Refuse what the JSON parser lets through but the pipeline cannot carry: non-finite numbers
    (`NaN`, `Infinity`, `1e400`) and nesting deeper than `MAX_DEPTH`."""
    # Iterative: a recursive walk would itself be the depth problem it guards against.
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, float):
            if not math.isfinite(value):
                raise EnvelopeError("numbers must be finite: NaN, Infinity and numbers beyond 1.8e308 are refused")
        elif isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise EnvelopeError(f"body is nested deeper than {MAX_DEPTH} levels")
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list | float))


def describe(exc: ValidationError) -> str:
    """A short reason for the first validation error, without the offending value."""
    first = exc.errors(include_url=False, include_input=False, include_context=False)[0]
    if first["type"] == "json_invalid":
        return "body is not valid JSON"
    if first["type"] in ("dict_type", "model_type") and not first["loc"]:
        return "body must be a JSON object"
    where = ".".join(str(part) for part in first["loc"]) or "body"
    if first["type"] == "string_pattern_mismatch" and where in _PATTERN_RULES:
        return f"invalid envelope: {where}: {_PATTERN_RULES[where]}"
    if where == "timestamp":
        # The text has the format; a part of it is out of range (second 60, hour 24, February 30).
        text = exc.errors(include_url=False, include_context=False)[0].get("input")
        problem = _timestamp_out_of_range(text) if isinstance(text, str) else None
        if problem is not None:
            return f"invalid envelope: timestamp: {problem}"
    return f"invalid envelope: {where}: {first['msg']}"


_TIMESTAMP_PARTS = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:Z|[+-](\d{2}):(\d{2}))$")


def _timestamp_out_of_range(text: str) -> str | None:
    """Which part of a timestamp that matches `TIMESTAMP_PATTERN` is out of range, said as the rule
    it breaks (the value itself is not repeated)."""
    parts = _TIMESTAMP_PARTS.match(text)
    if parts is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in parts.groups()[:6])
    zone_hours, zone_minutes = (int(part or 0) for part in parts.groups()[6:])
    if year == 0:
        return "year must be 0001-9999"
    if not 1 <= month <= 12:
        return "month must be 01-12"
    last = calendar.monthrange(year, month)[1]
    if not 1 <= day <= last:
        return f"day must be 01-{last} in that month"
    if hour > 23:
        return "hour must be 00-23 (for midnight at the end of a day, write 00:00 of the next)"
    if minute > 59:
        return "minute must be 00-59"
    if second > 59:
        return "second must be 00-59" + (" (a leap second, 60, is not accepted)" if second == 60 else "")
    if zone_hours > 23:
        return "zone offset's hours must be 00-23"
    if zone_minutes > 59:
        return "zone offset's minutes must be 00-59"
    return None


#: What a field's pattern means, said to the sender instead of the regular expression.
_PATTERN_RULES = {
    "id": "1-128 visible ASCII characters",
    "event": "a lower-case dotted name such as order.created",
    "timestamp": "an ISO 8601 date-time with seconds and a zone (RFC 3339), such as 2026-04-16T10:00:00.000Z",
}


def check_age(envelope: Envelope, now: datetime, max_age: timedelta) -> None:
    """Refuse events too old to be deduplicated any more (replays) or from the future."""
    if envelope.timestamp < now - max_age:
        raise EnvelopeError(f"event timestamp is older than {int(max_age.total_seconds() // 3600)} hours")
    if envelope.timestamp > now + MAX_FUTURE_SKEW:
        raise EnvelopeError("event timestamp is more than 5 minutes in the future")
