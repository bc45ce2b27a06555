"""The edge scenarios of docs/reliability.md, run through the functions as SAM invokes them, on moto.
Each returns its measured figures (tests/integration/test_fault_table.py asserts them) and the
sentence the page prints. The pipeline's handlers and ingest keyring clock are its own
(`edge_pipeline`): the scenarios advance that clock, and hung calls a Lambda context's clock.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError, ReadTimeoutError

from devtools.event_source import lambda_sqs_record
from devtools.function_output import captured
from devtools.lambda_events import LambdaContext, acting_as, acting_function, signed_event
from devtools.pipeline import Pipeline, hooked
from devtools.rotation_service import RotationService
from devtools.sam_template import SamTemplate
from ntp.deliveries import encode, envelope

SLOW_HANDLER_SECONDS, SECOND_COPY_AFTER = 1.0, 0.4
JUNK_EVERY, JUNK_FOR, ROTATION_AT = 0.05, 10.0, 3.0


@dataclass(frozen=True)
class Edge:
    scenario: str
    outcome: str
    figures: dict[str, Any]


class FakeClock:
    """The keyring's monotonic clock, moved by the scenario (or the fault table's sender)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SteppedContext(LambdaContext):
    """A Lambda context on a fake clock, which hung calls advance."""

    clock: float = 0.0

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - self.clock) * 1000))


def edge_pipeline(template: SamTemplate, clock: FakeClock | None = None) -> Pipeline:
    """A pipeline with handlers of its own (none yet) and its ingest keyring on `clock` (the caller
    holds `mock_aws`)."""
    from ntp_webhooks.subscriptions import Subscriptions

    return Pipeline(template, subscriptions=Subscriptions(), keyring_clock=clock or FakeClock())


def _clock(pipeline: Pipeline) -> FakeClock:
    clock = pipeline.keyring_clock
    assert isinstance(clock, FakeClock), "an edge scenario needs `edge_pipeline`'s keyring clock"
    return clock


def _key(pipeline: Pipeline, stage: str = "AWSCURRENT") -> str:
    value: str = boto3.client("secretsmanager").get_secret_value(
        SecretId=pipeline.stack.refs["WebhookSigningSecret"], VersionStage=stage
    )["SecretString"]
    return value


def _deliver(pipeline: Pipeline, secret: str, context: LambdaContext | None = None) -> dict[str, Any]:
    event = signed_event(encode(envelope("order.created")), secret)
    if context is None:
        return pipeline.deliver(event)
    with acting_as("IngestFunction"):
        response: dict[str, Any] = pipeline.ingest.lambda_handler(event, context)
    return response


def concurrent_copies(pipeline: Pipeline) -> Edge:
    """Finding 7: a 1 s handler; the same record in a second environment 0.4 s later; then redelivered."""
    subscriptions = pipeline.subscriptions
    assert subscriptions is not None, "an edge scenario needs `edge_pipeline`'s own handlers"
    runs: list[str] = []
    in_handler = threading.Event()

    def slow(event: Any) -> None:
        runs.append(event.id)
        in_handler.set()
        time.sleep(SLOW_HANDLER_SECONDS)

    subscriptions.on("order.confirmed", name="edge.slow")(slow)
    first_env, second_env = pipeline.consumers["order"], pipeline.load("OrderConsumerFunction")
    sqs, url = boto3.client("sqs"), pipeline.stack.refs["OrderEventsQueue"]
    body = encode(envelope("order.confirmed", data={"orderId": "ord_edge_concurrent"})).decode()
    sqs.send_message(QueueUrl=url, MessageBody=body)
    received: Any = sqs.receive_message(QueueUrl=url, AttributeNames=["All"], VisibilityTimeout=60)
    (message,) = received["Messages"]
    arn = pipeline.stack.attributes[("OrderEventsQueue", "Arn")]
    event = {"Records": [lambda_sqs_record(message, arn, "us-east-1")]}
    results: dict[str, Any] = {}

    def first() -> None:
        with acting_as("OrderConsumerFunction"):
            results["first"] = first_env.lambda_handler(event, LambdaContext(timeout_seconds=30))

    worker = threading.Thread(target=first)
    worker.start()
    in_handler.wait(10)
    time.sleep(SECOND_COPY_AFTER)
    with acting_as("OrderConsumerFunction"):
        second = second_env.lambda_handler(event, LambdaContext(timeout_seconds=30))
        worker.join()
        redelivered = second_env.lambda_handler(event, LambdaContext(timeout_seconds=30))
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    figures = {
        "handler_runs": len(runs),
        "first_failed": len(results["first"]["batchItemFailures"]),
        "second_failed": len(second["batchItemFailures"]),
        "redelivered_failed": len(redelivered["batchItemFailures"]),
    }
    ran = {0: "never", 1: "once"}.get(figures["handler_runs"], f"{figures['handler_runs']} times")
    outcome = (
        f"the handler ran {ran}; the second copy's record "
        f"{'failed (the claim was held) and' if figures['second_failed'] else 'succeeded and'} was redelivered: "
        f"{'it failed again' if figures['redelivered_failed'] else 'nothing ran, the record succeeded'}"
    )
    scenario = (
        f"one record in two execution environments at once (a {SLOW_HANDLER_SECONDS:.0f} s handler, "
        f"the copy {SECOND_COPY_AFTER} s later)"
    )
    return Edge(scenario, outcome, figures)


def stale_keyring(pipeline: Pipeline, max_stale: float = 600.0, max_age: float = 300.0) -> Edge:
    """Finding 2: AWSPREVIOUS leaks and is revoked while Secrets Manager throttles every call."""
    secrets, arn = boto3.client("secretsmanager"), pipeline.stack.refs["WebhookSigningSecret"]
    failing = threading.Event()

    def throttle(**_: Any) -> None:
        if failing.is_set():
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "Secrets")

    leaked = _key(pipeline)
    new_key = f"edge-rotated-{time.monotonic_ns()}"
    clock = _clock(pipeline)
    with hooked("before-call.secrets-manager.*", throttle), captured() as output:
        pipeline.cold_start()
        secrets.put_secret_value(SecretId=arn, SecretString=new_key)  # the leaked key is now AWSPREVIOUS
        statuses = {"previous key, in its grace": _deliver(pipeline, leaked)["statusCode"]}
        stages = secrets.describe_secret(SecretId=arn)["VersionIdsToStages"]
        previous = next(version for version, labels in stages.items() if "AWSPREVIOUS" in labels)
        secrets.update_secret_version_stage(SecretId=arn, VersionStage="AWSPREVIOUS", RemoveFromVersionId=previous)
        failing.set()
        clock.now += max_age + 1
        statuses["past max_age, refresh failing"] = _deliver(pipeline, leaked)["statusCode"]
        clock.now += max_stale - max_age
        stale = _deliver(pipeline, leaked)
        statuses["past KeyMaxStaleSeconds"] = stale["statusCode"]
        failing.clear()
        clock.now += 2
        statuses["refreshed: the revoked key"] = _deliver(pipeline, leaked)["statusCode"]
        statuses["refreshed: the new key"] = _deliver(pipeline, new_key)["statusCode"]
    lines = output.getvalue().splitlines()
    figures = {
        "statuses": statuses,
        "retry_after": stale["headers"].get("Retry-After"),
        "error_lines": sum('"signing key refresh failed"' in line and '"ERROR"' in line for line in lines),
        "refresh_failed_metrics": sum("KeyRefreshFailed" in line and '"_aws"' in line for line in lines),
    }
    outcome = (
        f"the leaked key: {statuses['previous key, in its grace']} in its grace, "
        f"{statuses['past max_age, refresh failing']} from the cached keys while the refresh fails "
        f"({figures['error_lines']} ERROR lines, {figures['refresh_failed_metrics']} KeyRefreshFailed metrics); "
        f"past {max_stale:.0f} s: {statuses['past KeyMaxStaleSeconds']} with "
        f"Retry-After {figures['retry_after']}; refreshed: the revoked key {statuses['refreshed: the revoked key']}, "
        f"the new one {statuses['refreshed: the new key']}"
    )
    scenario = (
        f"the key refresh fails for longer than KeyMaxStaleSeconds ({max_stale:.0f} s), a leaked AWSPREVIOUS key "
        "revoked meanwhile"
    )
    return Edge(scenario, outcome, figures)


def junk_during_rotation(pipeline: Pipeline) -> Edge:
    """Finding 3: junk every 50 ms (keyring clock) for 10 s; the rotation function adds a key at 3 s."""
    arn = pipeline.stack.refs["WebhookSigningSecret"]
    calls: list[str] = []

    def count(event_name: str, **_: Any) -> None:
        if acting_function() == "IngestFunction":  # the ingest's calls, not the rotation function's
            calls.append(event_name.rsplit(".", 1)[1])

    rotation_module = pipeline.load("RotationFunction")

    def rotate(event: dict[str, Any]) -> Any:
        with acting_as("RotationFunction"):
            return rotation_module.lambda_handler(event, LambdaContext(function_name="RotationFunction"))

    rotation = RotationService(arn, rotate)
    current, pending_key, added_at = _key(pipeline), "", 0.0
    statuses: list[int] = []
    accepted_at: float | None = None
    clock = _clock(pipeline)
    with hooked("before-call.secrets-manager.*", count), captured():
        pipeline.cold_start()
        start = clock.now
        while clock.now - start < JUNK_FOR:
            statuses.append(_deliver(pipeline, "junk-" + current)["statusCode"])
            if not pending_key and clock.now - start >= ROTATION_AT:
                rotation.step("createSecret", rotation.start())
                pending_key, added_at = _key(pipeline, "AWSPENDING"), clock.now
            if pending_key and accepted_at is None and _deliver(pipeline, pending_key)["statusCode"] == 202:
                accepted_at = clock.now
            clock.now += JUNK_EVERY
    describes, junk_statuses = calls.count("DescribeSecret"), sorted(set(statuses))
    figures = {
        "junk": len(statuses),
        "junk_statuses": junk_statuses,
        "new_key_accepted_after_s": None if accepted_at is None else round(accepted_at - added_at, 2),
        "describe_secret_calls": describes,
        "describe_secret_per_second": round(describes / JUNK_FOR, 2),
    }
    outcome = (
        f"{figures['junk']} bad signatures, each {'/'.join(map(str, junk_statuses))}; the new key "
        f"accepted {figures['new_key_accepted_after_s']} s after it was added; the ingest made {describes} "
        f"DescribeSecret calls in {JUNK_FOR:.0f} s ({figures['describe_secret_per_second']} a second)"
    )
    scenario = (
        f"bad signatures every {JUNK_EVERY * 1000:.0f} ms for {JUNK_FOR:.0f} s while the rotation function adds a "
        f"key (at {ROTATION_AT:.0f} s)"
    )
    return Edge(scenario, outcome, figures)


def hung_calls(pipeline: Pipeline) -> Edge:
    """Finding 11: every SendMessage and claim-release attempt hangs for the SDK's connect + read
    timeouts (3 s), SDK retries included, against the ingest's 10 s timeout."""
    from ntp_webhooks.aws_clients import ATTEMPT_SECONDS

    context = SteppedContext(function_name="IngestFunction", timeout_seconds=pipeline.ingest_timeout)
    attempts: list[str] = []

    def hang(event_name: str, **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[1]
        if operation in ("SendMessage", "DeleteItem"):
            attempts.append(operation)
            context.clock += ATTEMPT_SECONDS
            raise ReadTimeoutError(endpoint_url="https://aws")

    with hooked("before-send.*.*", hang), captured() as output:
        pipeline.cold_start()
        response = _deliver(pipeline, _key(pipeline), context)
    errors = [json.loads(line) for line in output.getvalue().splitlines() if line.startswith('{"level":"ERROR"')]
    figures = {
        "status": response["statusCode"],
        "retry_after": response["headers"].get("Retry-After"),
        "error": json.loads(response["body"]).get("error"),
        "answered_at_s": context.clock,
        "timeout_s": context.timeout_seconds,
        "reserve_s": pipeline.budget.reserve_seconds,
        "send_attempts": attempts.count("SendMessage"),
        "release_attempts": attempts.count("DeleteItem"),
        "error_codes": [e.get("error_code") for e in errors],
    }
    outcome = (
        f"JSON {figures['status']} ({figures['error']}) with Retry-After {figures['retry_after']}, answered at "
        f"{figures['answered_at_s']:.0f} s of {figures['timeout_s']:.0f} s; {figures['send_attempts']} SendMessage "
        f"and {figures['release_attempts']} release attempts started, the next one not (it could not finish before "
        f"the {figures['reserve_s']} s reserve)"
    )
    scenario = f"every SendMessage and claim-release attempt hangs ({ATTEMPT_SECONDS} s each, SDK retries included)"
    return Edge(scenario, outcome, figures)


def run_all(pipeline: Pipeline) -> list[Edge]:
    """Every scenario on one `edge_pipeline` (the caller holds `mock_aws`)."""
    return [concurrent_copies(pipeline), stale_keyring(pipeline), junk_during_rotation(pipeline), hung_calls(pipeline)]
