from __future__ import annotations

import hmac
from dataclasses import dataclass

import pytest

from ntp_webhooks import signature

GITHUB_SECRET = b"It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_HEADER = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


@dataclass(frozen=True)
class Key:
    stage: str
    secret: bytes


def test_published_vector() -> None:
    assert signature.sign(GITHUB_BODY, GITHUB_SECRET) == GITHUB_HEADER
    digest = signature.parse_header(GITHUB_HEADER)
    assert digest is not None
    assert signature.verify(GITHUB_BODY, digest, [Key("AWSCURRENT", GITHUB_SECRET)]) == "AWSCURRENT"


def test_upper_case_hex_is_accepted() -> None:
    upper = "sha256=" + GITHUB_HEADER.removeprefix("sha256=").upper()
    assert signature.parse_header(upper) == GITHUB_HEADER.removeprefix("sha256=")


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "sha256=",
        "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "SHA256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17a",
        "sha256=z57107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "sha256=757107ea 0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        # Two headers joined by API Gateway.
        GITHUB_HEADER + "," + GITHUB_HEADER,
    ],
)
def test_malformed_headers_are_refused(value: str | None) -> None:
    assert signature.parse_header(value) is None


@pytest.mark.parametrize("name", ["x-webhook-signature", "X-Webhook-Signature", "X-WEBHOOK-SIGNATURE"])
def test_header_lookup_ignores_case(name: str) -> None:
    assert signature.find_header({name: GITHUB_HEADER}, "X-Webhook-Signature") == GITHUB_HEADER
    assert signature.find_header({name: GITHUB_HEADER}, "x-webhook-signature") == GITHUB_HEADER


def test_missing_header() -> None:
    assert signature.find_header({"content-type": "application/json"}, "X-Webhook-Signature") is None
    assert signature.find_header(None, "X-Webhook-Signature") is None


def test_verify_reports_the_stage_that_matched() -> None:
    keys = [Key("AWSCURRENT", b"new"), Key("AWSPREVIOUS", b"old")]
    body = b'{"id":"evt_1"}'
    assert signature.verify(body, signature.sign(body, b"old").removeprefix("sha256="), keys) == "AWSPREVIOUS"
    assert signature.verify(body, signature.sign(body, b"new").removeprefix("sha256="), keys) == "AWSCURRENT"
    assert signature.verify(body, signature.sign(body, b"other").removeprefix("sha256="), keys) is None
    assert signature.verify(body, signature.sign(body, b"new").removeprefix("sha256="), []) is None


def test_one_changed_byte_fails() -> None:
    digest = signature.sign(GITHUB_BODY, GITHUB_SECRET).removeprefix("sha256=")
    assert signature.verify(b"Hello, World?", digest, [Key("AWSCURRENT", GITHUB_SECRET)]) is None


def test_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Receiver pitfall 3: every candidate is compared with hmac.compare_digest, never ==."""
    seen: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    keys = [Key("AWSCURRENT", b"a"), Key("AWSPENDING", b"b"), Key("AWSPREVIOUS", GITHUB_SECRET)]
    digest = GITHUB_HEADER.removeprefix("sha256=")
    assert signature.verify(GITHUB_BODY, digest, keys) == "AWSPREVIOUS"
    assert len(seen) == 3
