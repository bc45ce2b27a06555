from __future__ import annotations

import base64

import pytest

from ntp_webhooks.ingest import raw_body
from ntp_webhooks.responses import Rejection

BODY = b'{"id":"evt_1","event":"order.created"}'


def test_plain_body_is_taken_as_utf8_bytes() -> None:
    assert raw_body({"body": BODY.decode(), "isBase64Encoded": False}, 1024) == BODY
    assert raw_body({"body": '{"n":"\u00e9"}'}, 1024) == '{"n":"\u00e9"}'.encode()


def test_base64_body_is_decoded() -> None:
    assert raw_body({"body": base64.b64encode(BODY).decode(), "isBase64Encoded": True}, 1024) == BODY


def test_missing_body_is_empty() -> None:
    assert raw_body({}, 1024) == b""


@pytest.mark.parametrize("encoded", [False, True])
def test_limit_is_inclusive(encoded: bool) -> None:
    payload = b"x" * 100
    body = base64.b64encode(payload).decode() if encoded else payload.decode()
    assert raw_body({"body": body, "isBase64Encoded": encoded}, 100) == payload
    body = base64.b64encode(payload + b"x").decode() if encoded else (payload + b"x").decode()
    with pytest.raises(Rejection) as caught:
        raw_body({"body": body, "isBase64Encoded": encoded}, 100)
    assert caught.value.status == 413


def test_multibyte_characters_count_as_bytes() -> None:
    with pytest.raises(Rejection) as caught:
        raw_body({"body": "\u00e9" * 60}, 100)
    assert caught.value.status == 413


def test_invalid_base64_is_a_bad_request() -> None:
    with pytest.raises(Rejection) as caught:
        raw_body({"body": "not base64!", "isBase64Encoded": True}, 1024)
    assert caught.value.status == 400


@pytest.mark.parametrize("body", ["\ud800", '{"id":"evt_1","s":"\udcff"}'])
def test_a_lone_surrogate_is_a_bad_request_not_a_crash(body: str) -> None:
    """API Gateway hands non-UTF-8 bytes of a text body over as lone surrogates."""
    with pytest.raises(Rejection) as caught:
        raw_body({"body": body, "isBase64Encoded": False}, 1024)
    assert (caught.value.status, caught.value.code) == (400, "invalid_body")
