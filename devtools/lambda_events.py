"""Events and contexts shaped exactly like the ones Lambda hands to our handlers."""

from __future__ import annotations

import base64
import contextlib
import functools
import time
import uuid
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ntp.deliveries import DEFAULT_SIGNATURE_HEADER, LOCAL_DEV_SECRET, encode
from ntp_webhooks.signature import sign

#: Every request reaches the function: a function URL, or an HTTP API's `$default` route.
DEFAULT_ROUTE = "$default"
#: Where the events' requests come from (`requestContext.http.sourceIp`): an address of TEST-NET-3.
DEFAULT_SOURCE_IP = "203.0.113.10"


@dataclass(frozen=True)
class FrontDoor:
    """What invokes the ingest function, as the template configures it (`provision.front_door`): an
    HTTP API's integration and routes, or a function URL (payload 2.0, route `$default`)."""

    kind: str  # "HttpApi" or "FunctionUrl"
    payload_format_version: str  # "1.0" or "2.0"
    routes: tuple[str, ...]  # route keys ("POST /webhooks"); `$default` matches every request

    def route_key(self, method: str, path: str) -> str | None:
        """The route a request matches (an explicit one before `$default`, as API Gateway picks), None
        if none does: API Gateway then answers 404 itself and the function never runs."""
        for key in self.routes:
            route_method, _, route_path = key.partition(" ")
            if route_path == path and route_method in (method, "ANY"):
                return key
        return DEFAULT_ROUTE if DEFAULT_ROUTE in self.routes else None

    def event(self, body: bytes, headers: Mapping[str, str] | None = None, **request: Any) -> dict[str, Any]:
        """The event the function gets for a request (`request`: http_api_event's path, method...)."""
        route_key = self.route_key(request.get("method", "POST"), request.get("path", "/webhooks"))
        if route_key is None:
            raise ValueError(f"no route of the {self.kind} matches {request}: the function would not run")
        return http_api_event(
            body, headers, payload_format_version=self.payload_format_version, route_key=route_key, **request
        )


def http_api_event(
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    payload_format_version: str,
    route_key: str,
    path: str = "/webhooks",
    method: str = "POST",
    base64_encoded: bool = False,
    request_id: str | None = None,
    source_ip: str = DEFAULT_SOURCE_IP,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The event API Gateway's HTTP API (and `sam local`) builds for a request, in the integration's
    payload format version, with the route that matched (`FrontDoor.event` passes the template's). A
    function URL sends 2.0 with the route key `$default`."""
    now = now or datetime.now(UTC)
    request_id = request_id or base64.b32encode(uuid.uuid4().bytes).decode()[:16]
    lowered = {name.lower(): value for name, value in (headers or {}).items()}
    lowered.setdefault("content-type", "application/json")
    lowered["content-length"] = str(len(body))
    encoded = base64.b64encode(body).decode() if base64_encoded else body.decode("utf-8")
    if payload_format_version == "1.0":
        return _payload_v1(
            headers=lowered,
            body=encoded,
            base64_encoded=base64_encoded,
            path=path,
            method=method,
            route_key=route_key,
            request_id=request_id,
            source_ip=source_ip,
            now=now,
        )
    if payload_format_version != "2.0":
        raise ValueError(f"payload format version {payload_format_version!r}: API Gateway sends 1.0 or 2.0")
    return {
        "version": "2.0",
        "routeKey": route_key,
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
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "body": encoded,
        "isBase64Encoded": base64_encoded,
    }


def _payload_v1(
    *,
    headers: dict[str, str],
    body: str,
    base64_encoded: bool,
    path: str,
    method: str,
    route_key: str,
    request_id: str,
    source_ip: str,
    now: datetime,
) -> dict[str, Any]:
    """Payload format 1.0 (the REST API's shape): no `rawPath`, no `requestContext.http`."""
    resource = route_key.split(" ", 1)[-1]
    return {
        "version": "1.0",
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "extendedRequestId": request_id,
            "httpMethod": method,
            "identity": {"sourceIp": source_ip, "userAgent": headers.get("user-agent", "")},
            "path": path,
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "resourceId": route_key,
            "resourcePath": resource,
            "stage": "$default",
        },
        "pathParameters": None,
        "stageVariables": None,
        "body": body,
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


@functools.cache
def default_front_door() -> FrontDoor:
    """template.yaml's front door at its defaults (read when first needed: the CLI never needs it)."""
    from devtools.provision import front_door  # it imports this module
    from devtools.sam_template import SamTemplate

    return front_door(SamTemplate())


def signed_event(
    body: bytes | dict[str, Any],
    secret: str = LOCAL_DEV_SECRET,
    *,
    header: str = DEFAULT_SIGNATURE_HEADER,
    base64_encoded: bool = False,
    headers: dict[str, str] | None = None,
    request_id: str | None = None,
    front_door: FrontDoor | None = None,
    source_ip: str = DEFAULT_SOURCE_IP,
) -> dict[str, Any]:
    """The event the ingest function gets for a POST of `body` signed with `secret`, shaped by the
    front door template.yaml configures (its payload format version, its route) unless given.
    `source_ip`: the address the front door received it from (its request context, not a header)."""
    raw = body if isinstance(body, bytes) else encode(body)
    return (front_door or default_front_door()).event(
        raw,
        {header: sign(raw, secret.encode()), **(headers or {})},
        base64_encoded=base64_encoded,
        request_id=request_id,
        source_ip=source_ip,
    )
