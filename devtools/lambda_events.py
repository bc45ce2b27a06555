"""Events and contexts shaped exactly like the ones Lambda hands to our handlers."""

from __future__ import annotations

import base64
import contextlib
import time
import uuid
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def http_api_event(
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    path: str = "/webhooks",
    method: str = "POST",
    base64_encoded: bool = False,
    request_id: str | None = None,
    source_ip: str = "203.0.113.10",
    now: datetime | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API payload v2 event, as API Gateway (and `sam local`) builds it."""
    now = now or datetime.now(UTC)
    request_id = request_id or base64.b32encode(uuid.uuid4().bytes).decode()[:16]
    lowered = {name.lower(): value for name, value in (headers or {}).items()}
    lowered.setdefault("content-type", "application/json")
    lowered["content-length"] = str(len(body))
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": lowered,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "body": base64.b64encode(body).decode() if base64_encoded else body.decode("utf-8"),
        "isBase64Encoded": base64_encoded,
    }


@dataclass
class LambdaContext:
    """The attributes Powertools reads from a Lambda context, with a real deadline."""

    function_name: str = "local-function"
    timeout_seconds: float = 10.0
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


#: The function whose execution role the AWS calls made now use. Lambda uses it for the function's
#: init, its invocations and its event source mapping's polling; the e2e tests check each recorded call
#: against that role's policies (tools/permissions.py).
_acting: ContextVar[str | None] = ContextVar("acting_function", default=None)


@contextlib.contextmanager
def acting_as(logical_id: str) -> Iterator[None]:
    token = _acting.set(logical_id)
    try:
        yield
    finally:
        _acting.reset(token)


def acting_function() -> str | None:
    return _acting.get()
