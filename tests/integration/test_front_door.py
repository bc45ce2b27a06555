"""The events the tests, the tools and the local stack hand to the ingest function follow template.yaml's
front door (issue 26): the HTTP API integration's PayloadFormatVersion and its routes, or the function
URL's payload (2.0, route `$default`). Copies of the template, changed in one line, show the events
change with it, as what API Gateway sends would."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from werkzeug.test import Client

from devtools.lambda_events import FrontDoor, LambdaContext, signed_event
from devtools.local_stack.http_api import HttpApi
from devtools.provision import front_door
from devtools.sam_template import TemplateError
from ntp.deliveries import encode, envelope
from tests.conftest import TEMPLATE, template_with

VERSION_2 = 'PayloadFormatVersion: "2.0"'


def local_front_door(door: FrontDoor) -> tuple[Client, list[dict[str, Any]]]:
    """The local stack's front door in front of a function that records its events and answers 200."""
    events: list[dict[str, Any]] = []

    def ingest(event: dict[str, Any]) -> dict[str, Any]:
        events.append(event)
        return {"statusCode": 200, "body": "{}"}

    return Client(HttpApi(ingest, lambda action: (404, {}), lambda line: None, door=door)), events


def test_the_events_are_the_http_apis_of_the_template() -> None:
    integration = TEMPLATE.resources["WebhookApiIntegration"]["Properties"]
    route = TEMPLATE.resources["WebhookApiRoute"]["Properties"]["RouteKey"]
    assert front_door(TEMPLATE) == FrontDoor("HttpApi", integration["PayloadFormatVersion"], (route,))
    event = signed_event(envelope())
    assert event["version"] == integration["PayloadFormatVersion"]
    assert event["routeKey"] == event["requestContext"]["routeKey"] == route


def test_a_function_url_sends_payload_2_with_the_default_route_for_every_request() -> None:
    door = front_door(TEMPLATE, {"FrontDoor": "FunctionUrl"})
    assert door == FrontDoor("FunctionUrl", "2.0", ("$default",))
    client, events = local_front_door(door)
    assert client.get("/anything").status_code == 200  # the function answers everything itself
    (event,) = events
    assert (event["version"], event["routeKey"], event["rawPath"]) == ("2.0", "$default", "/anything")
    assert event["requestContext"]["http"]["method"] == "GET"


def test_the_local_http_api_routes_only_the_templates_route(tmp_path: Path) -> None:
    client, events = local_front_door(front_door(TEMPLATE))
    assert client.post("/webhooks", data=b"{}").status_code == 200
    assert client.get("/webhooks").status_code == client.post("/other").status_code == 404  # API Gateway's own
    assert len(events) == 1
    moved = front_door(template_with(tmp_path, "RouteKey: POST /webhooks", "RouteKey: POST /hooks"))
    client, events = local_front_door(moved)
    assert client.post("/webhooks", data=b"{}").status_code == 404
    assert client.post("/hooks", data=b"{}").status_code == 200
    assert events[0]["routeKey"] == "POST /hooks"


def test_payload_format_1_in_the_template_reaches_the_ingest_as_1_and_is_refused(
    tmp_path: Path, ingest_handler: ModuleType, context: LambdaContext
) -> None:
    """An integration changed to 1.0 sends events without `rawPath` or `requestContext.http`: on AWS
    the ingest answers 404 to every delivery. So do the tests and the local stack, reading the version."""
    door = front_door(template_with(tmp_path, VERSION_2, 'PayloadFormatVersion: "1.0"'))
    assert door.payload_format_version == "1.0"
    event = signed_event(encode(envelope()), front_door=door)
    assert event["version"] == "1.0" and event["httpMethod"] == "POST" and "rawPath" not in event
    assert ingest_handler.lambda_handler(event, context)["statusCode"] == 404
    client, events = local_front_door(door)
    client.post("/webhooks", data=b"{}")
    assert events[0]["version"] == "1.0"


@pytest.mark.parametrize(
    ("old", "new", "refused"),
    [
        (VERSION_2, 'PayloadFormatVersion: "3.0"', "PayloadFormatVersion"),
        ("RouteKey: POST /webhooks", "RouteKey: POST /webhooks/{id}", "routes"),
        ("      IntegrationUri: !GetAtt IngestFunction.Arn\n", "      IntegrationUri: elsewhere\n", "front door"),
    ],
    ids=["unknown-version", "path-parameter", "no-integration"],
)
def test_what_the_emulation_cannot_follow_it_refuses(tmp_path: Path, old: str, new: str, refused: str) -> None:
    with pytest.raises(TemplateError, match=refused):
        front_door(template_with(tmp_path, old, new))
