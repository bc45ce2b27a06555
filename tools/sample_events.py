"""Generates events/: signed API Gateway events, SQS batches, rotation steps, env.json, outcomes.json.

One source for every file (`make events`); tests/e2e/test_sample_events.py fails when the files are
out of date, and invokes each one as `sam local invoke` would, checking the outcome recorded in
events/outcomes.json.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devtools.event_source import lambda_sqs_record
from devtools.lambda_events import signed_event
from devtools.provision import ACCOUNT_ID, Stack
from devtools.sam_template import REPO_ROOT, SamTemplate
from ntp.deliveries import LOCAL_DEV_SECRET, SAMPLE_DATA, encode
from ntp_webhooks.rotation import STEPS
from ntp_webhooks.routing import template_name

EVENTS_DIR = REPO_ROOT / "events"
PREFIX = "local"  # the local stack's (and the tests') resource name prefix
REGION = "us-east-1"
#: Committed files cannot carry "now": their timestamp is fixed, so env.json widens the window.
TIMESTAMP = "2026-04-16T10:00:00.000Z"
WIDE_WINDOW = {"EVENT_MAX_AGE_HOURS": "876000", "DEDUP_RETENTION_DAYS": "36526"}
#: The local stack's moto server, as a container started by `sam local invoke` reaches it.
DOCKER_ENDPOINT = "http://host.docker.internal:4566"
ROTATION_TOKEN = "00000000-0000-4000-8000-000000000001"  # noqa: S105 - a version ID, not a secret
_NOW = datetime(2026, 4, 16, 10, 0, 1, tzinfo=UTC)


def offline_stack(template: SamTemplate) -> Stack:
    """The names and URLs the local stack (and moto in tests) gives each resource."""
    stack = Stack.of(template, region=REGION, name=PREFIX)
    for logical_id, resource in template.resources.items():
        name = f"{PREFIX}-{logical_id}"
        kind = resource["Type"]
        if kind == "AWS::SQS::Queue":
            stack.refs[logical_id] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{name}"
            stack.attributes[(logical_id, "Arn")] = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"
        elif kind == "AWS::SNS::Topic":
            stack.refs[logical_id] = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{name}"
        elif kind == "AWS::KinesisFirehose::DeliveryStream" and "DeliveryStreamName" in resource["Properties"]:
            stack.refs[logical_id] = stack.resolve(resource["Properties"]["DeliveryStreamName"])
        else:
            stack.refs[logical_id] = name  # tables by name; the secret by name (SecretId accepts it)
    return stack


def generate(template: SamTemplate | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(relative path -> JSON content, outcomes in invocation order)."""
    template = template or SamTemplate()
    files: dict[str, Any] = {}
    outcomes: list[dict[str, Any]] = []

    def outcome(path: str, content: Any, function: str, note: str, **result: Any) -> None:
        files[path] = content
        outcomes.append({"file": path, "function": function, **result, "note": note})

    def ingest(name: str, event: dict[str, Any], status: int, note: str) -> None:
        outcome(f"ingest/{name}.json", event, "IngestFunction", note, statusCode=status)

    def api_event(payload: dict[str, Any] | bytes, request_id: str, **kwargs: Any) -> dict[str, Any]:
        event = signed_event(payload, LOCAL_DEV_SECRET, request_id=request_id, **kwargs)
        event["requestContext"]["time"] = _NOW.strftime("%d/%b/%Y:%H:%M:%S +0000")
        event["requestContext"]["timeEpoch"] = int(_NOW.timestamp() * 1000)
        return event

    payloads = {
        name: {"id": f"evt_sample_{name.replace('.', '_')}", "event": name, "timestamp": TIMESTAMP, "data": data}
        for name, data in SAMPLE_DATA.items()
    }
    # A family of the partner's own has no documented type: one generic event of it, so that its
    # consumer gets a sample batch too.
    for family in template.families:
        if not any(name.split(".", 1)[0] == family for name in payloads):
            name = f"{family}.created"
            payloads[name] = {"id": f"evt_sample_{family}_created", "event": name, "timestamp": TIMESTAMP, "data": {}}
    for index, (name, payload) in enumerate(payloads.items()):
        ingest(name, api_event(payload, f"sample-request-{index}"), 202, "accepted and enqueued")
    ingest(
        "duplicate", api_event(payloads["order.created"], "sample-request-dup"), 200, "same event again: not re-sent"
    )
    bad = api_event(payloads["quote.updated"], "sample-request-bad")
    bad["headers"]["x-webhook-signature"] = "sha256=" + "0" * 64
    ingest("bad-signature", bad, 401, "wrong signature")
    oversize = {**payloads["order.shipped"], "id": "evt_sample_oversize", "data": {"blob": "x" * 262144}}
    ingest("oversize", api_event(oversize, "sample-request-big"), 413, "body over MaxBodyBytes")
    binary = {**payloads["order.confirmed"], "id": "evt_sample_base64"}
    ingest("base64-body", api_event(binary, "sample-request-b64", base64_encoded=True), 202, "isBase64Encoded body")

    for family in template.families:
        records = []
        for index, payload in enumerate(p for n, p in payloads.items() if n.split(".", 1)[0] == family):
            body = encode(payload).decode()
            message = {  # as SQS's ReceiveMessage returns it; Lambda's record is built from it
                "MessageId": f"00000000-0000-4000-8000-{family[:1]}{index:011d}",
                "ReceiptHandle": "sample-receipt-handle",
                "Body": body,
                "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(_NOW.timestamp() * 1000))},
                "MessageAttributes": {
                    "eventType": {"StringValue": payload["event"], "DataType": "String"},
                    "eventId": {"StringValue": payload["id"], "DataType": "String"},
                },
            }
            queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{PREFIX}-{template_name(family)}EventsQueue"
            records.append(lambda_sqs_record(message, queue_arn, REGION))
        function, path = f"{template_name(family)}ConsumerFunction", f"consumers/{family}-batch.json"
        outcome(path, {"Records": records}, function, "every record projected", response={"batchItemFailures": []})

    secret_id = f"{PREFIX}-WebhookSigningSecret"
    note = "after RotateSecret labelled the token AWSPENDING (ntp rotate --local does it)"
    for step in STEPS:
        event = {"Step": step, "SecretId": secret_id, "ClientRequestToken": ROTATION_TOKEN}
        outcome(f"rotation/{step}.json", event, "RotationFunction", note, response=None)

    stack = offline_stack(template)
    env = {}
    for logical_id in template.functions():
        variables = stack.function_environment(template, logical_id)
        if logical_id == "IngestFunction":
            variables.update(WIDE_WINDOW)
        env[logical_id] = {**variables, "AWS_ENDPOINT_URL": DOCKER_ENDPOINT}
    files["env.json"] = env
    files["outcomes.json"] = outcomes
    return files, outcomes


def render(content: Any) -> str:
    return json.dumps(content, indent=2, ensure_ascii=False) + "\n"


def write(directory: Path = EVENTS_DIR) -> list[Path]:
    files, _ = generate()
    written = []
    for relative, content in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(content))
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write():
        print(written_path.relative_to(REPO_ROOT))
