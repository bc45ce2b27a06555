"""API Gateway HTTP API (payload v2) responses. Every response is a small JSON document."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

_JSON = {"Content-Type": "application/json"}


def json_response(status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {**_JSON, **(headers or {})},
        "body": json.dumps(body, separators=(",", ":")),
        "isBase64Encoded": False,
    }


class Rejection(Exception):
    """A delivery that ends with a non-2xx status; `code` and `message` are safe to send back.
    `logged`: keys for its log line only, never sent back."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
        *,
        logged: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.logged = dict(logged or {})

    def response(self) -> dict[str, Any]:
        return json_response(self.status, {"error": self.code, "message": self.message}, self.headers)


def unauthorized() -> Rejection:
    # One body for missing, malformed and wrong signatures: nothing tells an attacker which it was.
    return Rejection(401, "invalid_signature", "signature missing or invalid")


def source_not_allowed(source_ip: str | None) -> Rejection:
    # The address is logged (to tell NowToPrint's new range from noise), never sent back.
    return Rejection(
        403,
        "source_not_allowed",
        "requests from this address are not accepted",
        logged={"source_ip": (source_ip or "")[:64]},
    )
