"""IngestFunction's handler, called with API Gateway v2 events, against moto provisioned from the template."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from moto import mock_aws

from devtools.lambda_events import LambdaContext, signed_event
from devtools.pipeline import reused_client
from devtools.provision import Provisioner, Stack
from devtools.sam_template import SamTemplate
from ntp.deliveries import LOCAL_DEV_SECRET, encode, envelope
from ntp_webhooks import dedup
from ntp_webhooks.routing import template_name
from tests.conftest import FAMILIES, AwsCalls, Faults, JsonLogs, _warm_session, empty_queues, load_function_module

QUEUES = tuple(f"{template_name(family)}EventsQueue" for family in FAMILIES)


@pytest.fixture(scope="module")
def module_stack(template: SamTemplate) -> Iterator[Stack]:
    """What the ingest function references, and nothing else (half the provisioning time), once for
    the module: provisioning was most of the module's AWS calls (nine a test)."""
    with mock_aws():  # each test's `aws` nests in it, so moto keeps the stack until the module ends
        boto3.DEFAULT_SESSION = _warm_session()
        yield Provisioner(
            template,
            reused_client,
            secret_values={"WebhookSigningSecret": LOCAL_DEV_SECRET},
            operations=False,
            functions=["IngestFunction"],
            record_only=False,  # the dedup table's point-in-time recovery: moto only records it
        ).provision()


@pytest.fixture
def stack(aws: None, module_stack: Stack) -> Iterator[Stack]:
    """The module's stack as a fresh one would be for each test. Safe to share: every test delivers
    events of its own (`envelope()` draws a new ID, and the dedup records are keyed by the ID alone),
    no test changes the secret, a queue or the table's settings, and the queues, the only place a test
    counts what is there, are emptied after each test (in-flight messages too)."""
    yield module_stack
    empty_queues(module_stack)


def client(service: str) -> Any:
    """The test's own client (reading queues and the dedup table): one per service, not one per read."""
    return reused_client(service)


def invoke(handler: ModuleType, event: dict[str, Any], context: LambdaContext | None = None) -> dict[str, Any]:
    response: dict[str, Any] = handler.lambda_handler(event, context or LambdaContext(timeout_seconds=10))
    return response


def body_of(response: dict[str, Any]) -> dict[str, Any]:
    assert response["headers"]["Content-Type"] == "application/json"
    parsed: dict[str, Any] = json.loads(response["body"])
    return parsed


def messages(stack: Stack, queue: str) -> list[dict[str, Any]]:
    """Drain a queue and return its messages with attributes."""
    sqs = client("sqs")
    found: list[Any] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=stack.refs[queue], MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=600
        ).get("Messages", [])
        if not batch:
            return found
        found += batch


def dedup_item(stack: Stack, event_id: str) -> dict[str, Any] | None:
    """The event's dedup record. Its key is a constant namespace and a hash of the event ID alone
    (Powertools hashes the JSON of the `id` it extracts): nothing about the deployment."""
    key = f"{dedup.KEY_PREFIX}#{hashlib.md5(json.dumps(event_id).encode()).hexdigest()}"
    item: dict[str, Any] | None = (
        client("dynamodb").get_item(TableName=stack.refs["DedupTable"], Key={"id": {"S": key}}).get("Item")
    )
    return item


def sqs_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "injected"}}, "SendMessage")


# --- accepted, routed, recorded -------------------------------------------------------------------


# One event per family's queue, and a name of no family (the catch-all's): which name goes to which
# family is tests/unit/test_routing.py's; here, that the ingest sends each family to its own queue.
@pytest.mark.parametrize(
    ("event_name", "queue"),
    [
        ("quote.received", "QuoteEventsQueue"),
        ("order.confirmed", "OrderEventsQueue"),
        ("workflow.preflight_completed", "WorkflowEventsQueue"),
        ("estimate.approved", "WorkflowEventsQueue"),
    ],
)
def test_accepted_event_reaches_its_family_queue(
    ingest_handler: ModuleType, stack: Stack, event_name: str, queue: str
) -> None:
    payload = envelope(event_name)
    raw = json.dumps(payload, indent=2).encode()  # the exact bytes, whitespace and all
    event = signed_event(raw, headers={"X-Request-Id": "sender-req-1"}, request_id="apigw-req-1")
    response = invoke(ingest_handler, event)

    assert response["statusCode"] == 202
    assert body_of(response) == {"status": "accepted", "eventId": payload["id"], "family": queue[:-11].lower()}
    (message,) = messages(stack, queue)
    assert message["Body"].encode() == raw
    attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
    assert attributes["eventType"] == event_name
    assert attributes["eventId"] == payload["id"]
    assert attributes["apiRequestId"] == "apigw-req-1"
    assert attributes["keyStage"] == "AWSCURRENT"
    assert attributes["senderRequestId"] == "sender-req-1"
    assert abs(datetime.fromisoformat(attributes["receivedAt"]) - datetime.now(UTC)) < timedelta(minutes=1)
    others = set(QUEUES) - {queue}
    assert all(messages(stack, other) == [] for other in others)


def test_base64_body_is_verified_and_enqueued_as_sent(ingest_handler: ModuleType, stack: Stack) -> None:
    raw = encode(envelope("order.created", data={"orderId": "ord_1", "note": "caf\u00e9"}))
    response = invoke(ingest_handler, signed_event(raw, base64_encoded=True))
    assert response["statusCode"] == 202
    (message,) = messages(stack, "OrderEventsQueue")
    assert message["Body"].encode() == raw


def test_dedup_record_is_keyed_by_event_id_and_expires(ingest_handler: ModuleType, stack: Stack) -> None:
    payload = envelope("order.created")
    assert invoke(ingest_handler, signed_event(payload))["statusCode"] == 202
    item = dedup_item(stack, payload["id"])
    assert item is not None
    # Receiver pitfall 7: the key is a constant namespace plus the event ID, nothing about the deployment.
    assert item["id"]["S"].startswith(dedup.KEY_PREFIX + "#")
    assert "IngestFunction" not in item["id"]["S"] and "lambda_handler" not in item["id"]["S"]
    assert item["status"]["S"] == "COMPLETED"
    # Receiver pitfall 6: the TTL attribute is the one the table's TTL names, about DedupRetentionDays ahead.
    ttl = client("dynamodb").describe_time_to_live(TableName=stack.refs["DedupTable"])
    attribute = ttl["TimeToLiveDescription"]["AttributeName"]
    expires = datetime.fromtimestamp(int(item[attribute]["N"]), UTC)
    assert abs(expires - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=1)


def test_dedup_survives_a_redeploy(ingest_handler: ModuleType, stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Receiver pitfall 7: a replaced function (new physical name, new module) still sees the old records."""
    from tests.conftest import TEMPLATE, load_function_module

    payload = envelope("order.created")
    assert invoke(ingest_handler, signed_event(payload))["statusCode"] == 202
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "nowtoprint-webhooks-IngestFunction-REPLACED")
    redeployed = load_function_module(TEMPLATE, "IngestFunction")
    response = invoke(redeployed, signed_event(payload), LambdaContext(function_name="renamed"))
    assert response["statusCode"] == 200
    assert len(messages(stack, "OrderEventsQueue")) == 1


# --- duplicates and conflicts ---------------------------------------------------------------------


def test_duplicate_is_acknowledged_and_not_sent_again(ingest_handler: ModuleType, stack: Stack) -> None:
    payload = envelope("quote.received")
    assert invoke(ingest_handler, signed_event(payload))["statusCode"] == 202
    again = invoke(ingest_handler, signed_event(payload))
    assert again["statusCode"] == 200
    assert body_of(again) == {"status": "duplicate", "eventId": payload["id"]}
    assert len(messages(stack, "QuoteEventsQueue")) == 1


def test_same_content_serialized_differently_is_a_duplicate(ingest_handler: ModuleType, stack: Stack) -> None:
    payload = envelope("quote.received")
    assert invoke(ingest_handler, signed_event(encode(payload)))["statusCode"] == 202
    pretty = json.dumps(payload, indent=4, sort_keys=True).encode()
    assert invoke(ingest_handler, signed_event(pretty))["statusCode"] == 200
    assert len(messages(stack, "QuoteEventsQueue")) == 1


def test_same_id_different_body_is_a_conflict(ingest_handler: ModuleType, stack: Stack, json_logs: JsonLogs) -> None:
    payload = envelope("order.confirmed")
    assert invoke(ingest_handler, signed_event(payload))["statusCode"] == 202
    altered = {**payload, "data": {"orderId": "ord_other"}}
    response = invoke(ingest_handler, signed_event(altered))
    assert response["statusCode"] == 409
    assert body_of(response)["error"] == "id_conflict"
    assert any(log["level"] == "WARNING" and "different body" in log["message"] for log in json_logs.records())
    assert len(messages(stack, "OrderEventsQueue")) == 1


def test_duplicate_in_flight_gets_409_with_retry_after(
    ingest_handler: ModuleType, stack: Stack, faults: Faults
) -> None:
    payload = envelope("order.created")
    entered, release = threading.Event(), threading.Event()

    def slow_send() -> None:
        entered.set()
        assert release.wait(10)

    faults.before("sqs.SendMessage", slow_send)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(invoke, ingest_handler, signed_event(payload))
        assert entered.wait(10)
        second = invoke(ingest_handler, signed_event(payload))
        release.set()
        assert first.result()["statusCode"] == 202
    assert second["statusCode"] == 409
    assert body_of(second)["error"] == "in_flight"
    assert second["headers"]["Retry-After"] == "10"
    assert len(messages(stack, "OrderEventsQueue")) == 1


def test_concurrent_deliveries_of_one_event_enqueue_it_once(ingest_handler: ModuleType, stack: Stack) -> None:
    payload = envelope("order.shipped")
    raw = encode(payload)
    barrier = threading.Barrier(16)

    def deliver(_: int) -> int:
        event = signed_event(raw)
        barrier.wait()
        return int(invoke(ingest_handler, event)["statusCode"])

    invoke(ingest_handler, signed_event(envelope()))  # a warm environment, as concurrent deliveries find it
    messages(stack, "QuoteEventsQueue")
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(deliver, range(16)))
    assert statuses.count(202) == 1
    assert set(statuses) <= {202, 200, 409}
    assert len(messages(stack, "OrderEventsQueue")) == 1


# --- failures: nothing lost, nothing twice --------------------------------------------------------


def test_sqs_failure_releases_the_claim_and_the_retry_succeeds(
    ingest_handler: ModuleType, stack: Stack, faults: Faults
) -> None:
    payload = envelope("order.created")
    failures = faults.fail("sqs.SendMessage", sqs_error("InternalError"))
    first = invoke(ingest_handler, signed_event(payload))
    assert failures == [1]
    assert first["statusCode"] == 503
    assert first["headers"]["Retry-After"] == "10"
    assert dedup_item(stack, payload["id"]) is None  # receiver pitfall 5: claim released
    assert invoke(ingest_handler, signed_event(payload))["statusCode"] == 202
    assert len(messages(stack, "OrderEventsQueue")) == 1


def test_sqs_unreachable_is_503(ingest_handler: ModuleType, stack: Stack, faults: Faults) -> None:
    payload = envelope("order.created")
    faults.fail("sqs.SendMessage", EndpointConnectionError(endpoint_url="x"))
    assert invoke(ingest_handler, signed_event(payload))["statusCode"] == 503
    assert invoke(ingest_handler, signed_event(payload))["statusCode"] == 202
    assert len(messages(stack, "OrderEventsQueue")) == 1


def test_dynamodb_failure_on_claim_is_503_and_the_retry_finishes(
    ingest_handler: ModuleType, stack: Stack, faults: Faults
) -> None:
    payload = envelope("quote.received")
    faults.fail("dynamodb.PutItem", EndpointConnectionError(endpoint_url="x"))
    response = invoke(ingest_handler, signed_event(payload))
    assert response["statusCode"] == 503
    assert body_of(response)["error"] == "unavailable"
    assert messages(stack, "QuoteEventsQueue") == []
    assert invoke(ingest_handler, signed_event(payload))["statusCode"] == 202
    assert len(messages(stack, "QuoteEventsQueue")) == 1


def test_dynamodb_failure_after_the_send_is_still_accepted(
    ingest_handler: ModuleType, stack: Stack, faults: Faults
) -> None:
    """Sent but not marked done: 202 (a 503 would cause a second enqueue), and the claim keeps its lease."""
    payload = envelope("quote.received")
    faults.fail("dynamodb.UpdateItem", EndpointConnectionError(endpoint_url="x"))
    assert invoke(ingest_handler, signed_event(payload))["statusCode"] == 202
    item = dedup_item(stack, payload["id"])
    assert item is not None and item["status"]["S"] == "INPROGRESS"
    assert invoke(ingest_handler, signed_event(payload))["statusCode"] == 409
    assert len(messages(stack, "QuoteEventsQueue")) == 1


def test_crash_between_claim_and_send_leaves_a_short_lease(
    ingest_handler: ModuleType, stack: Stack, faults: Faults
) -> None:
    """A crash (timeout, OOM) cannot release the claim; the lease lets the sender's retry finish."""
    payload = envelope("order.created")
    faults.fail("sqs.SendMessage", sqs_error("InternalError"))
    faults.fail("dynamodb.DeleteItem", EndpointConnectionError(endpoint_url="x"))
    context = LambdaContext(timeout_seconds=10)
    assert invoke(ingest_handler, signed_event(payload), context)["statusCode"] == 503

    item = dedup_item(stack, payload["id"])
    assert item is not None and item["status"]["S"] == "INPROGRESS"
    lease_ends = datetime.fromtimestamp(int(item["in_progress_expiration"]["N"]) / 1000, UTC)
    assert timedelta(0) < lease_ends - datetime.now(UTC) <= timedelta(seconds=10)

    # During the lease the retry is told to come back; after it, the retry is accepted once.
    assert invoke(ingest_handler, signed_event(payload))["statusCode"] == 409
    client("dynamodb").update_item(
        TableName=stack.refs["DedupTable"],
        Key={"id": item["id"]},
        UpdateExpression="SET in_progress_expiration = :past",
        ExpressionAttributeValues={":past": {"N": str(int((datetime.now(UTC).timestamp() - 1) * 1000))}},
    )
    assert invoke(ingest_handler, signed_event(payload))["statusCode"] == 202
    assert len(messages(stack, "OrderEventsQueue")) == 1


def test_secrets_manager_unreachable_is_503(ingest_handler: ModuleType, stack: Stack, faults: Faults) -> None:
    faults.fail("secrets-manager.DescribeSecret", EndpointConnectionError(endpoint_url="x"))
    payload = envelope("quote.received")
    response = invoke(ingest_handler, signed_event(payload))
    assert response["statusCode"] == 503
    assert body_of(response)["error"] == "unavailable"
    assert response["headers"]["Retry-After"]
    time.sleep(1.05)  # a failed load is retried at most once a second (the sender waits Retry-After)
    assert invoke(ingest_handler, signed_event(payload))["statusCode"] == 202


def test_unexpected_error_is_json_without_a_trace(ingest_handler: ModuleType, faults: Faults) -> None:
    faults.fail("secrets-manager.DescribeSecret", RuntimeError("a bug, not an AWS error"))
    response = invoke(ingest_handler, signed_event(envelope()))
    assert response["statusCode"] == 500
    assert body_of(response) == {"error": "internal_error", "message": "unexpected error"}


# --- refused deliveries ---------------------------------------------------------------------------


def _refused(ingest_handler: ModuleType, stack: Stack, event: dict[str, Any], status: int) -> dict[str, Any]:
    response = invoke(ingest_handler, event)
    assert response["statusCode"] == status
    assert all(messages(stack, q) == [] for q in QUEUES)
    return body_of(response)


def test_tampered_body_is_401(ingest_handler: ModuleType, stack: Stack) -> None:
    raw = encode(envelope("order.created", data={"orderId": "ord_1"}))
    event = signed_event(raw)
    event["body"] = event["body"].replace("ord_1", "ord_2")
    assert _refused(ingest_handler, stack, event, 401) == {
        "error": "invalid_signature",
        "message": "signature missing or invalid",
    }


def test_reserialized_body_is_401(ingest_handler: ModuleType, stack: Stack) -> None:
    """Receiver pitfall 2: the signature covers the bytes sent, not the JSON they parse to."""
    raw = json.dumps(envelope("order.created"), indent=2).encode()
    event = signed_event(raw)
    event["body"] = json.dumps(json.loads(raw), separators=(",", ":"))
    _refused(ingest_handler, stack, event, 401)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda h: h.pop("x-webhook-signature"),
        lambda h: h.update({"x-webhook-signature": "sha256=abc"}),
        lambda h: h.update({"x-webhook-signature": h["x-webhook-signature"].replace("sha256=", "sha1=")}),
        lambda h: h.update({"x-webhook-signature": "sha256=" + "0" * 64}),
    ],
    ids=["missing", "short", "wrong-scheme", "wrong-digest"],
)
def test_every_bad_signature_gets_the_same_401(ingest_handler: ModuleType, stack: Stack, mangle: Any) -> None:
    event = signed_event(envelope())
    mangle(event["headers"])
    assert _refused(ingest_handler, stack, event, 401) == {
        "error": "invalid_signature",
        "message": "signature missing or invalid",
    }


def test_wrong_secret_is_401(ingest_handler: ModuleType, stack: Stack) -> None:
    _refused(ingest_handler, stack, signed_event(envelope(), secret="not-the-secret"), 401)


def test_signature_in_another_header_is_401(ingest_handler: ModuleType, stack: Stack) -> None:
    _refused(ingest_handler, stack, signed_event(envelope(), header="X-Hub-Signature-256"), 401)


def test_header_name_case_does_not_matter(ingest_handler: ModuleType) -> None:
    """The ingest looks its header up as tests/unit/test_signature.py's lookup does, in any case: one
    spelling that is neither the template's nor API Gateway's lower case shows it."""
    event = signed_event(envelope())
    event["headers"]["X-WEBHOOK-SIGNATURE"] = event["headers"].pop("x-webhook-signature")
    assert invoke(ingest_handler, event)["statusCode"] == 202


def test_oversize_body_is_413_before_anything_else(
    ingest_handler: ModuleType, stack: Stack, aws_calls: AwsCalls
) -> None:
    payload = envelope("order.created", data={"blob": "x" * 262144})
    body = _refused(ingest_handler, stack, signed_event(payload), 413)
    assert body["error"] == "payload_too_large"
    assert aws_calls.count("secrets-manager") == 0


@pytest.mark.parametrize(
    ("age", "reason"),
    [(timedelta(hours=72, minutes=1), "older than 72 hours"), (timedelta(minutes=-6), "future")],
)
def test_stale_or_future_timestamp_is_400(
    ingest_handler: ModuleType, stack: Stack, age: timedelta, reason: str
) -> None:
    payload = envelope("order.created", timestamp=datetime.now(UTC) - age)
    body = _refused(ingest_handler, stack, signed_event(payload), 400)
    assert body["error"] == "invalid_envelope"
    assert reason in body["message"]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [(b"{not json", "not valid JSON"), (b'{"id": "evt_1"}', "event"), (b"[]", "JSON object")],
)
def test_invalid_json_or_envelope_is_400_with_a_reason(
    ingest_handler: ModuleType, stack: Stack, raw: bytes, reason: str
) -> None:
    body = _refused(ingest_handler, stack, signed_event(raw), 400)
    assert reason in body["message"]


def test_every_accepted_path_went_through_verification(
    ingest_handler: ModuleType, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Receiver pitfall 1: if verification stops being called, or stops deciding, this fails."""
    from ntp_webhooks import signature

    verified: list[bytes] = []
    real_match = signature.matching_key

    def spy(body: bytes, digest: str, keys: Any) -> Any:
        verified.append(body)
        return real_match(body, digest, keys)

    monkeypatch.setattr(signature, "matching_key", spy)
    accepted: list[bytes] = []
    for event_name in ("quote.received", "order.created", "workflow.preflight_completed"):
        for base64_encoded in (False, True):
            raw = encode(envelope(event_name))
            response = invoke(ingest_handler, signed_event(raw, base64_encoded=base64_encoded))
            assert response["statusCode"] == 202
            accepted.append(raw)
    assert verified == accepted  # every accepted body was verified, once, as the exact bytes sent

    monkeypatch.setattr(signature, "matching_key", lambda *_: None)
    assert invoke(ingest_handler, signed_event(envelope()))["statusCode"] == 401


# --- observability --------------------------------------------------------------------------------


def test_logs_carry_ids_but_never_secrets_signatures_or_bodies(ingest_handler: ModuleType, json_logs: JsonLogs) -> None:
    marker = "customer-data-7f3a"
    payload = envelope("order.created", data={"orderId": "ord_1", "address": marker})
    event = signed_event(payload, headers={"X-Request-Id": "sender-42"}, request_id="apigw-42")
    digest = event["headers"]["x-webhook-signature"].removeprefix("sha256=")
    assert invoke(ingest_handler, event)["statusCode"] == 202
    bad = signed_event(payload, secret="wrong")
    assert invoke(ingest_handler, bad)["statusCode"] == 401
    for forbidden in (LOCAL_DEV_SECRET, digest, bad["headers"]["x-webhook-signature"][7:], marker):
        assert forbidden not in json_logs.text
    accepted = next(log for log in json_logs.records() if log["message"] == "delivery accepted")
    assert accepted["correlation_id"] == "apigw-42"
    assert accepted["event_id"] == payload["id"]
    assert accepted["event_type"] == "order.created"
    assert accepted["family"] == "order"
    assert accepted["sender_request_id"] == "sender-42"


def test_metrics_count_accepted_duplicate_and_rejections(
    ingest_handler: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = envelope("order.created")
    invoke(ingest_handler, signed_event(payload))
    invoke(ingest_handler, signed_event(payload))
    invoke(ingest_handler, signed_event(payload, secret="wrong"))
    emitted: dict[str, float] = {}
    for line in capsys.readouterr().out.splitlines():
        if '"_aws"' not in line:
            continue
        doc = json.loads(line)
        for definition in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            name = definition["Name"]
            label = f"{name}[{doc['reason']}]" if "reason" in doc else name
            values = doc[name] if isinstance(doc[name], list) else [doc[name]]
            emitted[label] = emitted.get(label, 0) + sum(values)
    # An accepted delivery with the current key writes no metric (SQS counts the messages sent).
    assert "Received" not in emitted and "Accepted" not in emitted
    assert emitted["Duplicate"] == 1
    assert emitted["Rejected[invalid_signature]"] == 1


# --- budgets that are counts, not timings ---------------------------------------------------------


def test_one_lean_info_line_per_delivery(
    ingest_handler: ModuleType, json_logs: JsonLogs, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = envelope("order.created")
    invoke(ingest_handler, signed_event(payload))  # cold: the keyring's first load may log more
    for event in (signed_event(envelope("order.created")), signed_event(payload), signed_event(payload, secret="x")):
        before = len(json_logs.records())
        invoke(ingest_handler, event)
        (line,) = json_logs.records()[before:]
        assert line["level"] == "INFO" and line["status"] in (200, 202, 401) and "duration_ms" in line
        for redundant in ("location", "function_arn", "function_name", "function_memory_size", "service"):
            assert redundant not in line
    capsys.readouterr()


def test_a_body_that_is_not_utf8_text_is_400_not_500(ingest_handler: ModuleType, stack: Stack) -> None:
    event = signed_event(envelope())
    event["body"] = event["body"][:-1] + "\ud800}"  # how API Gateway passes bytes that are not UTF-8
    assert _refused(ingest_handler, stack, event, 400)["error"] == "invalid_body"


_MARKER = "malformed-body-marker-91d2"


def _malformed(change: Callable[[dict[str, Any]], Any]) -> Any:
    """A signed delivery carrying _MARKER, changed as no front door would send it."""
    event = signed_event(envelope(data={"note": _MARKER}))
    return change(event) or event


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda e: e.update(requestContext=None), "requestContext"),
        (lambda e: e["requestContext"].update(http=None), "requestContext"),
        (lambda e: e["requestContext"].update(requestId=42), "requestContext"),
        (lambda e: e["headers"].update({"x-webhook-signature": [e["headers"]["x-webhook-signature"]]}), "headers"),
        (lambda e: e["headers"].update({"x-request-id": 7}), "headers"),
        (lambda e: e.update(headers=[("x-webhook-signature", "sha256=00")]), "headers"),
        (lambda e: e.update(body=json.loads(e["body"])), "body"),
        (lambda e: e.update(body=e["body"].encode()), "body"),
        (lambda e: e.update(isBase64Encoded="false"), "isBase64Encoded"),
        (lambda e: e.update(rawPath=["/webhooks"]), "rawPath"),
        (lambda e: [e], "the event is not an object"),
    ],
    ids=[
        "requestContext-null",
        "http-null",
        "requestId-number",
        "header-list",
        "header-number",
        "headers-list",
        "body-object",
        "body-bytes",
        "isBase64Encoded-string",
        "rawPath-list",
        "event-list",
    ],
)
def test_a_malformed_lambda_event_is_400_with_one_line_and_no_body(
    ingest_handler: ModuleType,
    stack: Stack,
    json_logs: JsonLogs,
    aws_calls: AwsCalls,
    change: Callable[[dict[str, Any]], Any],
    field: str,
) -> None:
    """Issue 27, item 5: an event no front door sends (a misconfigured integration, a test) is answered
    400 with the usual JSON error and one log line naming the field, without a traceback or the body."""
    body = _refused(ingest_handler, stack, _malformed(change), 400)
    assert body == {"error": "invalid_request", "message": f"not an API Gateway event: {field}"}
    (line,) = json_logs.records()
    assert (line["level"], line["message"], line["status"], line["reason"]) == (
        "INFO",
        "delivery rejected",
        400,
        "invalid_request",
    )
    assert "exception" not in line and _MARKER not in json_logs.text
    assert aws_calls.count("secrets-manager") == 0


@pytest.mark.parametrize(
    ("path", "method", "status"), [("/other", "POST", 404), ("/webhooks", "GET", 405), ("/", "POST", 404)]
)
def test_a_function_url_passes_every_request_on_so_only_post_webhooks_is_served(
    ingest_handler: ModuleType, stack: Stack, path: str, method: str, status: int
) -> None:
    event = signed_event(envelope())
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    assert _refused(ingest_handler, stack, event, status)["error"] in ("not_found", "method_not_allowed")


# --- init -------------------------------------------------------------------------------------------


def test_on_lambda_the_clients_and_current_key_are_ready_before_the_first_request(
    ingest_env: dict[str, str], aws_calls: AwsCalls, template: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")  # what Lambda sets for init
    handler = load_function_module(template, "IngestFunction")
    assert aws_calls.names("secrets-manager") == ["GetSecretValue"]  # one call: AWSCURRENT
    aws_calls.reset()
    assert invoke(handler, signed_event(envelope()))["statusCode"] == 202
    assert aws_calls.count("secrets-manager") == 0  # the calls of a new webhook: tests/integration/test_cost.py


def test_a_key_load_that_fails_in_init_does_not_fail_init_and_the_first_request_loads_the_keys(
    ingest_env: dict[str, str],
    aws_calls: AwsCalls,
    faults: Faults,
    template: Any,
    monkeypatch: pytest.MonkeyPatch,
    json_logs: JsonLogs,
) -> None:
    from botocore.exceptions import ClientError

    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
    failed = faults.fail("secrets-manager.GetSecretValue", ClientError({"Error": {"Code": "ThrottlingException"}}, "x"))
    handler = load_function_module(template, "IngestFunction")  # init does not fail
    assert failed == [1]
    (warning,) = [r for r in json_logs.records() if r["message"].startswith("init step failed")]
    assert warning["level"] == "WARNING" and warning["error_type"] == "ClientError"
    assert invoke(handler, signed_event(envelope()))["statusCode"] == 202
