"""HMAC-SHA256 webhook signatures (`sha256=<hex>`) over the exact raw body bytes."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from typing import Protocol

PREFIX = "sha256="
_HEADER_VALUE = re.compile(r"sha256=([0-9a-fA-F]{64})")


class VerificationKey(Protocol):
    """Anything that carries a secret and says which Secrets Manager stage it came from."""

    @property
    def stage(self) -> str: ...

    @property
    def secret(self) -> bytes: ...


def sign(body: bytes, secret: bytes) -> str:
    """The header value the sender puts on `body`."""
    return PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def find_header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """Header lookup that ignores case (API Gateway v2 lower-cases, other callers may not)."""
    if not headers:
        return None
    value = headers.get(name.lower())
    if value is not None:
        return value
    wanted = name.lower()
    for key, candidate in headers.items():
        if key.lower() == wanted:
            return candidate
    return None


def parse_header(value: str | None) -> str | None:
    """The lower-case hex digest of a well-formed header value, else None."""
    if value is None:
        return None
    match = _HEADER_VALUE.fullmatch(value.strip())
    return match.group(1).lower() if match else None


def matching_key[K: VerificationKey](body: bytes, digest_hex: str, keys: Iterable[K]) -> K | None:
    """The first key whose HMAC of `body` equals `digest_hex`, else None.

    Every candidate is compared in constant time; the loop does not stop early on a match so the
    time taken does not reveal which stage matched.
    """
    received = digest_hex.encode("ascii")
    matched: K | None = None
    for key in keys:
        expected = hmac.new(key.secret, body, hashlib.sha256).hexdigest().encode("ascii")
        if hmac.compare_digest(expected, received) and matched is None:
            matched = key
    return matched


def verify(body: bytes, digest_hex: str, keys: Iterable[VerificationKey]) -> str | None:
    """The stage of the key that signed `body` (see `matching_key`), else None."""
    key = matching_key(body, digest_hex, keys)
    return key.stage if key is not None else None
