"""The front door: each HTTP request becomes the event that IngestFunction gets from API Gateway or a
function URL, as the template configures it (`provision.front_door`: its routes, its payload format
version); `/_local/*` carries the admin actions."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request, Response

from devtools.lambda_events import FrontDoor

_TEXT_TYPES = ("application/json", "text/", "application/xml", "application/x-www-form-urlencoded")


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(json.dumps(body), status, content_type="application/json")


class HttpApi:
    def __init__(
        self,
        invoke_ingest: Callable[[dict[str, Any]], Any],
        admin: Callable[[str], tuple[int, dict[str, Any]]],
        say: Callable[[str], None],
        door: FrontDoor,
    ) -> None:
        self._invoke = invoke_ingest
        self._admin = admin
        self._say = say
        self._door = door

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.path.startswith("/_local/") and request.method == "POST":
            response = _json(*self._admin(request.path.removeprefix("/_local/")))
        elif self._door.route_key(request.method, request.path) is None:
            # API Gateway's own answer to a request no route matches: the function never runs.
            self._say(f"{request.method} {request.path} -> 404 no route (only {', '.join(self._door.routes)})")
            response = _json(404, {"message": "Not Found"})
        else:
            response = self._deliver(request)
        return response(environ, start_response)

    def _deliver(self, request: Request) -> Response:
        body = request.get_data(cache=False)
        textual = request.headers.get("Content-Type", "").startswith(_TEXT_TYPES)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            textual = False
        event = self._door.event(
            body,
            dict(request.headers.items()),
            path=request.path,
            method=request.method,
            base64_encoded=not textual,
            request_id=uuid.uuid4().hex[:16],
            source_ip=request.remote_addr or "127.0.0.1",
        )
        try:
            result = self._invoke(event)
        except Exception as exc:  # what the front door answers when the function errors
            self._say(f"{request.method} {request.path} -> 500 function error: {type(exc).__name__}: {exc}")
            return _json(500, {"message": "Internal Server Error"})
        payload: Any = result.get("body", "")
        if result.get("isBase64Encoded"):
            payload = base64.b64decode(payload)
        summary = json.loads(result["body"]) if result.get("body", "").startswith("{") else {}
        self._say(
            f"{request.method} {request.path} -> {result['statusCode']} "
            f"{summary.get('status') or summary.get('error', '')} {summary.get('eventId', '')}".rstrip()
        )
        return Response(payload, result["statusCode"], headers=result.get("headers", {}))
