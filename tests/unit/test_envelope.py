from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from ntp_webhooks.envelope import Envelope, EnvelopeError, check_age, parse_envelope

DOCUMENTED = b"""{
  "id": "evt_01js3q7d9w4b2k8m1z0h3v6x7y",
  "event": "quote.received",
  "timestamp": "2026-04-16T10:00:00.000Z",
  "data": {
    "rfqId": "rfq_123456",
    "quoteId": "quote_987654"
  }
}"""


def body(**changes: object) -> bytes:
    payload = json.loads(DOCUMENTED)
    payload.update(changes)
    return json.dumps(payload).encode()


def test_documented_example_parses() -> None:
    envelope = parse_envelope(DOCUMENTED)
    assert envelope.id == "evt_01js3q7d9w4b2k8m1z0h3v6x7y"
    assert envelope.event == "quote.received"
    assert envelope.timestamp == datetime(2026, 4, 16, 10, tzinfo=UTC)
    assert envelope.data == {"rfqId": "rfq_123456", "quoteId": "quote_987654"}


def test_unknown_top_level_fields_are_kept() -> None:
    envelope = parse_envelope(body(apiVersion="2026-04", partner={"id": 7}))
    dumped = envelope.fields
    assert dumped["apiVersion"] == "2026-04"
    assert dumped["partner"] == {"id": 7}


def test_offset_timestamps_are_accepted() -> None:
    assert parse_envelope(body(timestamp="2026-04-16T12:00:00+02:00")).timestamp == datetime(
        2026, 4, 16, 10, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (body(id=""), "id"),
        (body(id="x" * 129), "id"),
        (body(id="evt 1"), "id"),
        (body(id="evt\u00e9"), "id"),
        (body(id=12), "id"),
        (body(event="Quote.Received"), "event"),
        (body(event="quote"), "event"),
        (body(event="quote..received"), "event"),
        (body(event="quote.received "), "event"),
        (body(timestamp="2026-04-16T10:00:00"), "timestamp"),
        (body(timestamp="yesterday"), "timestamp"),
        (body(timestamp=1776333600), "timestamp"),
        # Finding 10: outside the documented rule, each refused.
        (body(timestamp="1796100952"), "timestamp: an ISO 8601 date-time"),
        (body(timestamp="1796100952470"), "timestamp: an ISO 8601 date-time"),
        (body(timestamp="2026-04-16t10:00:00Z"), "timestamp: an ISO 8601 date-time"),
        (body(timestamp="2026-04-16T10:00:00z"), "timestamp: an ISO 8601 date-time"),
        (body(timestamp="2026-04-16 10:00:00Z"), "timestamp: an ISO 8601 date-time"),
        (body(timestamp="2026-04-16T10:00Z"), "timestamp: an ISO 8601 date-time"),
        (body(data=["a"]), "data"),
        (body(data=None), "data"),
    ],
)
def test_invalid_envelopes_say_why(raw: bytes, reason: str) -> None:
    with pytest.raises(EnvelopeError) as caught:
        parse_envelope(raw)
    assert reason in caught.value.reason


def test_missing_fields() -> None:
    for name in ("id", "event", "timestamp", "data"):
        payload = json.loads(DOCUMENTED)
        del payload[name]
        with pytest.raises(EnvelopeError, match=name):
            parse_envelope(json.dumps(payload).encode())


def test_errors_do_not_echo_values() -> None:
    with pytest.raises(EnvelopeError) as caught:
        parse_envelope(body(id="secret-looking-value " * 10))
    assert "secret-looking-value" not in caught.value.reason


def test_128_printable_characters_is_the_limit() -> None:
    assert parse_envelope(body(id="e" * 128)).id == "e" * 128


def _at(timestamp: datetime) -> Envelope:
    return parse_envelope(body(timestamp=timestamp.isoformat()))


def test_age_window() -> None:
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    max_age = timedelta(hours=72)
    check_age(_at(now), now, max_age)
    check_age(_at(now - max_age + timedelta(seconds=1)), now, max_age)
    check_age(_at(now + timedelta(minutes=5)), now, max_age)
    with pytest.raises(EnvelopeError, match="older than 72 hours"):
        check_age(_at(now - max_age - timedelta(seconds=1)), now, max_age)
    with pytest.raises(EnvelopeError, match="future"):
        check_age(_at(now + timedelta(minutes=5, seconds=1)), now, max_age)


def with_data(data_json: str) -> bytes:
    """The documented envelope with `data` replaced by raw JSON text (for values json.dumps cannot write)."""
    return DOCUMENTED.replace(b'{\n    "rfqId": "rfq_123456",\n    "quoteId": "quote_987654"\n  }', data_json.encode())


def nested(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


@pytest.mark.parametrize(
    "data",
    [
        '{"n": NaN}',
        '{"n": Infinity}',
        '{"n": -Infinity}',
        '{"n": [1e400]}',
        nested(32),  # data is level 2, so its 32 nested objects reach level 33
    ],
)
def test_what_the_pipeline_cannot_carry_is_refused(data: str) -> None:
    with pytest.raises(EnvelopeError) as refused:
        parse_envelope(with_data(data))
    assert "finite" in refused.value.reason or "nested deeper than 32" in refused.value.reason


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ('{"n": 1e200}', {"n": 1e200}),
        ('{"n": 1e-200}', {"n": 1e-200}),
        ('{"n": 123456789012345678901234567890123456789012}', {"n": 123456789012345678901234567890123456789012}),
        ('{"s": "\\u00e9\\ud83d\\ude00", "e": {}, "l": [], "z": null}', {"s": "é😀", "e": {}, "l": [], "z": None}),
        ('{"k": 1, "k": 2}', {"k": 2}),  # duplicate keys: the last wins, in every parser of the pipeline
        (nested(31), json.loads(nested(31))),  # 32 levels in all: the limit itself
    ],
)
def test_what_the_pipeline_can_carry_is_accepted(data: str, expected: object) -> None:
    assert parse_envelope(with_data(data)).data == expected


def test_a_lone_surrogate_escape_is_not_json() -> None:
    with pytest.raises(EnvelopeError, match="not valid JSON"):
        parse_envelope(with_data('{"s": "\\ud800"}'))


@pytest.mark.parametrize(
    ("timestamp", "reason"),
    [
        # Issue 27, item 6: the format is right, a value is out of range; say which.
        ("2026-04-16T10:00:60Z", "second must be 00-59 (a leap second, 60, is not accepted)"),
        ("2026-04-16T10:00:60.5+02:00", "second must be 00-59 (a leap second, 60, is not accepted)"),
        ("2026-04-16T24:00:00Z", "hour must be 00-23 (for midnight at the end of a day, write 00:00 of the next)"),
        ("2026-04-16T10:60:00Z", "minute must be 00-59"),
        ("2026-13-01T10:00:00Z", "month must be 01-12"),
        ("2026-00-01T10:00:00Z", "month must be 01-12"),
        ("2026-02-29T10:00:00Z", "day must be 01-28 in that month"),
        ("2026-04-31T10:00:00Z", "day must be 01-30 in that month"),
        ("2026-04-00T10:00:00Z", "day must be 01-30 in that month"),
        ("0000-01-01T00:00:00Z", "year must be 0001-9999"),
        ("2026-04-16T10:00:00+24:00", "zone offset's hours must be 00-23"),
        ("2026-04-16T10:00:00+02:60", "zone offset's minutes must be 00-59"),
    ],
)
def test_an_impossible_timestamp_says_what_is_wrong_not_the_format(timestamp: str, reason: str) -> None:
    with pytest.raises(EnvelopeError) as caught:
        parse_envelope(body(timestamp=timestamp))
    assert caught.value.reason == f"invalid envelope: timestamp: {reason}"
