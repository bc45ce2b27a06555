"""The optional source allowlist (issue 29, item 3), through IngestFunction's handler as SAM runs it: the
template's SourceAllowlist parameter becomes its SOURCE_ALLOWLIST, behind either front door. A request
from outside the ranges gets 403 with the usual JSON error before the signature is checked and before
any AWS call, and one log line; the address is the front door's (`requestContext`), never a header.
Defence in depth: an allowed address still needs a valid signature."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devtools.lambda_events import DEFAULT_SOURCE_IP, FrontDoor, LambdaContext, signed_event
from devtools.pipeline import reused_client
from devtools.provision import Provisioner, Stack, front_door
from devtools.sam_template import SamTemplate
from ntp.deliveries import LOCAL_DEV_SECRET, envelope
from ntp_webhooks.settings import SettingsError
from tests.conftest import (
    TEMPLATE,
    AwsCalls,
    JsonLogs,
    _warm_session,
    empty_queues,
    function_env,
    load_function_module,
)

DOORS = ("HttpApi", "FunctionUrl")
#: A documentation range of each family (RFC 5737, RFC 3849), as NowToPrint's would be listed.
ALLOWLIST = "203.0.113.0/24, 2001:db8:4e54::/48"
INSIDE_V4, OUTSIDE_V4 = "203.0.113.77", "198.51.100.7"
INSIDE_V6, OUTSIDE_V6 = "2001:db8:4e54:7::15", "2001:db8:4e55::1"
SPOOFING_HEADERS = ("X-Forwarded-For", "X-Real-Ip", "Forwarded", "True-Client-Ip", "CF-Connecting-IP")


class Ingest:
    """The ingest function deployed at these parameters: its module (imported as Lambda's cold start
    would, with the template's environment), its front door and its stack."""

    def __init__(self, handler: ModuleType, door: FrontDoor, stack: Stack) -> None:
        self.handler, self.door, self.stack = handler, door, stack

    def post(self, source_ip: str, *, headers: dict[str, str] | None = None, secret: str = LOCAL_DEV_SECRET) -> Any:
        """POST a fresh signed event from `source_ip`: (status, JSON body, event id)."""
        payload = envelope("order.created")
        event = signed_event(payload, secret, headers=headers, front_door=self.door, source_ip=source_ip)
        return self.invoke(event), payload["id"]

    def invoke(self, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        response = self.handler.lambda_handler(event, LambdaContext(function_name="IngestFunction"))
        assert response["headers"]["Content-Type"] == "application/json"
        return response["statusCode"], json.loads(response["body"])

    def enqueued(self) -> int:
        sqs = reused_client("sqs")
        url = self.stack.refs["OrderEventsQueue"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


@pytest.fixture(scope="module")
def stacks() -> Iterator[dict[tuple[str, str], Stack]]:
    """(door, allowlist) -> the stack deployed at those parameters, provisioned on first use and then
    kept for the module's other tests at the same parameters (26 tests, 7 parameter sets)."""
    with mock_aws():  # each test's `aws` nests in it, so moto keeps the stacks until the module ends
        boto3.DEFAULT_SESSION = _warm_session()
        yield {}


@pytest.fixture
def deploy(
    aws: None,
    aws_calls: AwsCalls,
    stacks: dict[tuple[str, str], Stack],
    template: SamTemplate,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., Ingest]]:
    """`deploy(door, allowlist)`: the ingest function of a stack deployed with FrontDoor=door and
    SourceAllowlist=allowlist, cold-started; its AWS calls are counted from its first request on.
    A stack is shared by the tests at its parameters, as a fresh one would be: each test posts events
    of its own (`envelope()` draws a new ID, the dedup records are keyed by the ID alone), nothing
    changes the secret or the settings, and the queues, which tests count, are emptied after each test."""
    used: list[Stack] = []

    def deployed(door: str, allowlist: str) -> Ingest:
        parameters = {"FrontDoor": door, "SourceAllowlist": allowlist}
        if (door, allowlist) not in stacks:
            stacks[door, allowlist] = Provisioner(
                template,
                reused_client,
                name_prefix=f"local{len(stacks)}",  # apart from the module's other stacks
                parameter_overrides=parameters,
                secret_values={"WebhookSigningSecret": LOCAL_DEV_SECRET},
                operations=False,
                functions=["IngestFunction"],
                record_only=False,  # the dedup table's point-in-time recovery: moto only records it
            ).provision()
        stack = stacks[door, allowlist]
        used.append(stack)
        assert function_env(stack, template, "IngestFunction", monkeypatch)["SOURCE_ALLOWLIST"] == allowlist
        handler = load_function_module(template, "IngestFunction")
        aws_calls.reset()
        return Ingest(handler, front_door(template, parameters), stack)

    yield deployed
    for stack in used:
        empty_queues(stack)


def refused(status: int, body: dict[str, Any]) -> bool:
    return (status, body) == (
        403,
        {"error": "source_not_allowed", "message": "requests from this address are not accepted"},
    )


# --- inside and outside the ranges, behind both doors -----------------------------------------------


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("source", [INSIDE_V4, INSIDE_V6, f"::ffff:{INSIDE_V4}"])
def test_a_signed_delivery_from_inside_the_ranges_is_accepted(
    deploy: Callable[..., Ingest], door: str, source: str
) -> None:
    ingest = deploy(door, ALLOWLIST)
    assert ingest.door.kind == door
    (status, body), event_id = ingest.post(source)
    assert (status, body["status"], body["eventId"]) == (202, "accepted", event_id)
    assert ingest.enqueued() == 1


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("source", [OUTSIDE_V4, OUTSIDE_V6, f"::ffff:{OUTSIDE_V4}", "203.0.114.1"])
def test_a_delivery_from_elsewhere_is_403_before_any_aws_call_with_one_log_line(
    deploy: Callable[..., Ingest],
    aws_calls: AwsCalls,
    json_logs: JsonLogs,
    capsys: pytest.CaptureFixture[str],
    door: str,
    source: str,
) -> None:
    ingest = deploy(door, ALLOWLIST)
    (status, body), _ = ingest.post(source, headers={"X-Request-Id": "sender-1"})
    assert refused(status, body)
    assert aws_calls.calls == []  # no key load or refresh, no claim, no send: a refusal costs no AWS call
    (line,) = json_logs.records()
    # `source_ip`: to tell NowToPrint's new addresses from noise.
    expected = {"level": "INFO", "message": "delivery rejected", "status": 403, "reason": "source_not_allowed"}
    assert {key: line.get(key) for key in expected} == expected and line["source_ip"] == source
    for absent in ("order.created", "sha256=", "x-webhook-signature", "sender-1"):  # no body, no header
        assert absent not in json_logs.text.lower()
    metrics = [json.loads(out) for out in capsys.readouterr().out.splitlines() if '"_aws"' in out]
    assert [(m["reason"], m["Rejected"]) for m in metrics if "Rejected" in m] == [("source_not_allowed", [1.0])]
    assert ingest.enqueued() == 0


@pytest.mark.parametrize("door", DOORS)
def test_an_allowed_address_still_needs_the_signature(deploy: Callable[..., Ingest], door: str) -> None:
    """Defence in depth, not instead of the signature."""
    ingest = deploy(door, ALLOWLIST)
    (status, body), _ = ingest.post(INSIDE_V4, secret="not-the-signing-secret")
    assert (status, body["error"]) == (401, "invalid_signature")
    (status, body), _ = ingest.post(OUTSIDE_V4, secret="not-the-signing-secret")
    assert refused(status, body)  # checked first: an outsider never learns how its signature fared


def test_behind_a_function_url_it_comes_before_the_path_and_the_method(deploy: Callable[..., Ingest]) -> None:
    """A function URL passes every request on; an outsider gets 403 whatever it asks for."""
    ingest = deploy("FunctionUrl", ALLOWLIST)
    for source, expected in ((OUTSIDE_V4, 403), (INSIDE_V4, 405)):
        event = ingest.door.event(b"", method="GET", path="/webhooks", source_ip=source)
        assert ingest.invoke(event)[0] == expected
    for source, expected in ((OUTSIDE_V6, 403), (INSIDE_V6, 404)):
        event = ingest.door.event(b"{}", path="/admin", source_ip=source)
        assert ingest.invoke(event)[0] == expected


# --- the address is the front door's, never a header -------------------------------------------------


@pytest.mark.parametrize("door", DOORS)
def test_a_spoofed_forwarded_for_is_ignored(deploy: Callable[..., Ingest], aws_calls: AwsCalls, door: str) -> None:
    ingest = deploy(door, ALLOWLIST)
    claiming_inside = {name: INSIDE_V4 for name in SPOOFING_HEADERS} | {"Forwarded": f"for={INSIDE_V4}"}
    (status, body), _ = ingest.post(OUTSIDE_V4, headers=claiming_inside)
    assert refused(status, body)
    (status, body), _ = ingest.post(OUTSIDE_V6, headers={"X-Forwarded-For": f"{INSIDE_V6}, {INSIDE_V4}"})
    assert refused(status, body)
    assert aws_calls.calls == []
    claiming_outside = {name: OUTSIDE_V4 for name in SPOOFING_HEADERS}
    (status, body), _ = ingest.post(INSIDE_V4, headers=claiming_outside)
    assert status == 202


def test_an_event_without_the_front_doors_address_is_refused(deploy: Callable[..., Ingest]) -> None:
    """With an allowlist on, no address is no pass (a hand-made event, a front door that sends none)."""
    ingest = deploy("HttpApi", ALLOWLIST)
    event = signed_event(envelope(), front_door=ingest.door, headers={"X-Forwarded-For": INSIDE_V4})
    del event["requestContext"]["http"]["sourceIp"]
    assert refused(*ingest.invoke(event))


# --- off by default; a malformed range stops the cold start -------------------------------------------


@pytest.mark.parametrize("door", DOORS)
def test_the_default_empty_allowlist_is_off(deploy: Callable[..., Ingest], door: str) -> None:
    assert TEMPLATE.parameter_defaults()["SourceAllowlist"] == ""
    ingest = deploy(door, "")
    for source in (DEFAULT_SOURCE_IP, OUTSIDE_V4, OUTSIDE_V6, "::ffff:10.0.0.1"):
        (status, _), _ = ingest.post(source)
        assert status == 202


@pytest.mark.parametrize("allowlist", ["203.0.113.7/24", "203.0.113.0/24,2001:db8::/129", "203.0.113.0/24,,300.1.1.1"])
def test_a_malformed_range_fails_the_cold_start_naming_it(deploy: Callable[..., Ingest], allowlist: str) -> None:
    with pytest.raises(SettingsError, match=r"SOURCE_ALLOWLIST: '[^']+' is not a CIDR range"):
        deploy("HttpApi", allowlist)


def test_the_parameter_admits_every_list_of_ranges_and_nothing_else() -> None:
    """The deploy-time check is coarse (the characters of addresses and ranges); the cold start's is exact."""
    pattern = re.compile(TEMPLATE.doc["Parameters"]["SourceAllowlist"]["AllowedPattern"])
    for value in ("", ALLOWLIST, "203.0.113.0/24,198.51.100.7", "::ffff:203.0.113.0/120"):
        assert pattern.fullmatch(value), value
    for value in ("203.0.113.0/24;198.51.100.0/24", "*", "any", "10.0.0.0/8 or so"):
        assert not pattern.fullmatch(value), value
    spec = TEMPLATE.function("IngestFunction")
    assert spec.environment["SOURCE_ALLOWLIST"] == {"Ref": "SourceAllowlist"}
