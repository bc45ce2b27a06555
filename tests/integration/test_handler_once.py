"""Each partner handler runs to success once per event ID: redeliveries, second copies, partial failures
and redrives re-run only what has not succeeded yet. The consumer function is driven through SQS (moto)
by the emulated event source mapping, as on AWS."""

from __future__ import annotations

import functools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from types import ModuleType
from typing import Any

import boto3
import pytest

from devtools.event_source import QueuePoller
from devtools.lambda_events import LambdaContext
from devtools.pipeline import reused_client
from devtools.provision import Provisioner, Stack
from devtools.sam_template import SamTemplate
from ntp import operations
from ntp.deliveries import encode, envelope
from ntp_webhooks.aws_clients import deadline
from ntp_webhooks.consumer import build_consumer
from ntp_webhooks.events import EventBase, parse_event
from ntp_webhooks.handler_runs import KEY_PREFIX, PROJECTION_STEP, TTL_ATTRIBUTE
from ntp_webhooks.routing import template_name
from ntp_webhooks.subscriptions import on
from tests.conftest import TEMPLATE, AwsCalls, Clock, JsonLogs, archived, queue_poller

LoadConsumer = Callable[[str], ModuleType]
QUEUE, DLQ = "OrderEventsQueue", "OrderEventsDeadLetterQueue"


@pytest.fixture
def stack(aws: None, template: SamTemplate) -> Stack:
    """Each test's own stack, of what the consumer functions reference (their queues, the state table,
    the archive stream and bucket; the mapping emulation reads every consumer's queue): only the order
    consumer runs here. The ingest's secret and table, the topics and their key were a third of the
    provisioning calls and clients."""
    consumers = [f"{template_name(family)}ConsumerFunction" for family in template.families]
    return Provisioner(template, reused_client, operations=False, functions=consumers, record_only=False).provision()


class Invocation(LambdaContext):
    """A Lambda context whose clock can jump: `skip(seconds)` spends that much of its remaining time at
    once, as a back-off or a hanging handler would, without waiting it out."""

    skipped = 0.0

    def skip(self, seconds: float) -> None:
        self.skipped += seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, super().get_remaining_time_in_millis() - int(self.skipped * 1000))


def back_off(seconds: float) -> None:
    """The consumer's back-off between completion write attempts (0.1 to 1.6 s each): an `Invocation`'s
    time spent at once instead of slept; under another context no time (theirs are long enough for
    every attempt)."""
    context = deadline.current()
    if isinstance(context, Invocation):
        context.skip(seconds)


@pytest.fixture
def consumer_handlers(consumer_handlers: LoadConsumer) -> LoadConsumer:
    """The conftest's loader, each module's consumer built with `back_off` as its sleep: the module's
    builder bound as `Pipeline` binds it (the module is this test's own: nothing else sees the change)."""

    def load(family: str) -> ModuleType:
        module = consumer_handlers(family)
        function: Any = module
        function.build_consumer = functools.partial(build_consumer, sleep=back_off)
        return module

    return load


class Handlers:
    """Three partner handlers for order events; `failing` names the ones that raise."""

    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()
        self.received: list[EventBase] = []
        self.failing: set[str] = set()
        for name in ("erp", "crm", "mail"):
            on("order", name=name)(self._handler(name))

    def _handler(self, name: str) -> Callable[[EventBase], None]:
        def handle(event: EventBase) -> None:
            self.runs[name] += 1
            self.received.append(event)
            if name in self.failing:
                raise ConnectionError(f"{name} unreachable")

        return handle


@pytest.fixture
def handlers(isolated_subscriptions: None) -> Handlers:
    return Handlers()


@pytest.fixture
def poller(consumer_handlers: LoadConsumer, stack: Stack) -> QueuePoller:
    handler = consumer_handlers("order")
    return queue_poller(stack, "order", handler.lambda_handler)


def send(stack: Stack, body: bytes, queue: str = QUEUE) -> None:
    reused_client("sqs").send_message(QueueUrl=stack.refs[queue], MessageBody=body.decode())


def completion(stack: Stack, event_id: str) -> dict[str, Any]:
    item: dict[str, Any] = reused_client("dynamodb").get_item(
        TableName=stack.refs["StateTable"], Key={"pk": {"S": KEY_PREFIX + event_id}}
    )["Item"]
    return item


def test_a_new_event_runs_each_handler_once_with_the_event_as_sent(
    handlers: Handlers, poller: QueuePoller, stack: Stack
) -> None:
    body = encode(envelope("order.created", data={"orderId": "ord_budget"}))
    send(stack, body)
    assert poller.poll_once().failed == 0
    assert handlers.runs == {"erp": 1, "crm": 1, "mail": 1}
    assert all(event == parse_event(body) for event in handlers.received)  # its calls: tests/integration/test_cost.py


def archive_step(item: dict[str, Any]) -> str:
    """The archive step of a completion record: `#archive:<the hour its object lands under>`."""
    (step,) = [name for name in item["done"]["SS"] if name.startswith("#archive:")]
    return str(step)


def test_completion_outlives_every_message_that_can_be_redriven(
    handlers: Handlers, poller: QueuePoller, stack: Stack, template: Any
) -> None:
    """Finding 6: a redrive on day 8 of a 14-day DLQ must not run handlers that succeeded."""
    payload = envelope("order.created", data={"orderId": "ord_ttl"})
    send(stack, encode(payload))
    before = time.time()
    poller.poll_once()
    item = completion(stack, payload["id"])
    assert set(item["done"]["SS"]) == {archive_step(item), PROJECTION_STEP, "erp", "crm", "mail"}
    assert "claimToken" not in item and "claimUntil" not in item  # released
    longest = max(
        int(template.resources[q]["Properties"].get("MessageRetentionPeriod", 345600))
        for q in ("OrderEventsQueue", "OrderEventsDeadLetterQueue")
    )
    assert int(item[TTL_ATTRIBUTE]["N"]) >= int(before) + longest


def test_a_redelivery_runs_nothing_again(
    handlers: Handlers, consumer_handlers: LoadConsumer, stack: Stack, aws_calls: AwsCalls
) -> None:
    handler = consumer_handlers("order")
    from tests.integration.test_consumer_handler import sqs_batch

    batch = sqs_batch(stack, QUEUE, [encode(envelope("order.created", data={"orderId": "ord_redelivery"})).decode()])
    assert handler.lambda_handler(batch, LambdaContext()) == {"batchItemFailures": []}
    aws_calls.reset()
    # The same record again, as SQS redelivers a message whose deletion was lost.
    assert handler.lambda_handler(batch, LambdaContext()) == {"batchItemFailures": []}
    assert handlers.runs == {"erp": 1, "crm": 1, "mail": 1}
    # Nothing to do: the claim says so, and the batch's completion write releases it.
    assert [op for service, op in aws_calls.calls if service == "dynamodb"] == ["UpdateItem", "BatchWriteItem"]


def test_a_second_copy_of_the_message_runs_nothing_again(handlers: Handlers, poller: QueuePoller, stack: Stack) -> None:
    body = encode(envelope("order.confirmed", data={"orderId": "ord_copy"}))
    send(stack, body)
    send(stack, body)  # what ingest enqueues when a SendMessage is retried after a lost response
    assert poller.drain() == 2
    assert handlers.runs == {"erp": 1, "crm": 1, "mail": 1}


def test_one_failing_handler_among_three_is_the_only_one_to_run_again(
    handlers: Handlers, poller: QueuePoller, stack: Stack, json_logs: JsonLogs, clock: Clock
) -> None:
    handlers.failing = {"crm"}
    payload = envelope("order.shipped", data={"orderId": "ord_partial"})
    send(stack, encode(payload))
    assert poller.poll_once().failed == 1
    assert handlers.runs == {"erp": 1, "crm": 1, "mail": 1}

    handlers.failing.clear()  # the CRM is back
    assert poller.poll_once().received == 0  # not before the queue's visibility timeout
    clock(poller.mapping.visibility_timeout)
    assert poller.poll_once().failed == 0
    assert handlers.runs == {"erp": 1, "crm": 2, "mail": 1}

    (error,) = [r for r in json_logs.records() if r["level"] == "ERROR"]
    assert error["handler"] == "crm"
    assert error["event_id"] == payload["id"] and error["event_type"] == "order.shipped"
    assert error["receive_count"] == "1" and error["message_id"]
    assert "ConnectionError: crm unreachable" in error["exception"] and "Traceback" in error["exception"]


def test_after_a_redrive_only_the_handler_that_failed_runs(
    handlers: Handlers, poller: QueuePoller, stack: Stack, clock: Clock
) -> None:
    handlers.failing = {"mail"}
    send(stack, encode(envelope("order.created", data={"orderId": "ord_redrive"})))
    for _ in range(6):  # maxReceiveCount 5, then the redrive policy moves it on the next receive
        poller.poll_once()
        clock(poller.mapping.visibility_timeout)
    sqs = reused_client("sqs")
    assert len(sqs.receive_message(QueueUrl=stack.refs[DLQ], VisibilityTimeout=0).get("Messages", [])) == 1
    assert handlers.runs == {"erp": 1, "crm": 1, "mail": 5}

    handlers.failing.clear()  # the partner fixes the mail handler, then redrives
    operations.redrive(sqs, stack.refs[DLQ])
    assert poller.drain() == 1
    assert handlers.runs == {"erp": 1, "crm": 1, "mail": 6}


def test_a_handler_keeps_its_identity_across_a_cold_start(
    handlers: Handlers, consumer_handlers: LoadConsumer, stack: Stack
) -> None:
    """A new execution environment (a redeploy) imports the code afresh: names, not objects, count."""
    body = encode(envelope("order.created", data={"orderId": "ord_cold"}))
    send(stack, body)
    first = consumer_handlers("order")
    queue_poller(stack, "order", first.lambda_handler).poll_once()
    send(stack, body)
    second = consumer_handlers("order")  # a fresh import of the function module
    assert second is not first
    queue_poller(stack, "order", second.lambda_handler).poll_once()
    assert handlers.runs == {"erp": 1, "crm": 1, "mail": 1}


def _refuse_completions(times: int) -> tuple[Callable[..., None], list[int]]:
    """A provide-client-params hook on BatchWriteItem that refuses the next `times` completion writes."""
    from botocore.exceptions import ClientError

    refused: list[int] = []

    def refuse(params: dict[str, Any], **_: Any) -> None:
        (requests,) = params["RequestItems"].values()
        keys = [request["PutRequest"]["Item"]["pk"]["S"] for request in requests]
        if all(key.startswith(KEY_PREFIX) for key in keys) and len(refused) < times:
            refused.append(1)
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "injected"}}, "BatchWriteItem")

    return refuse, refused


def test_a_failing_completion_write_is_retried_within_the_invocation(
    handlers: Handlers, poller: QueuePoller, stack: Stack, json_logs: JsonLogs
) -> None:
    """Finding 12: both SDK attempts of the completion write fail, after the handlers succeeded. The
    consumer retries it with back-off while the invocation has time, so nothing runs twice."""
    refuse, refused = _refuse_completions(3)
    boto3.DEFAULT_SESSION.events.register("provide-client-params.dynamodb.BatchWriteItem", refuse)  # type: ignore[union-attr]
    try:
        payload = envelope("order.created", data={"orderId": "ord_crash"})
        send(stack, encode(payload))
        assert poller.poll_once().failed == 0
        assert poller.poll_once().received == 0
    finally:
        boto3.DEFAULT_SESSION.events.unregister("provide-client-params.dynamodb.BatchWriteItem", refuse)  # type: ignore[union-attr]
    assert len(refused) == 3
    assert handlers.runs == {"erp": 1, "crm": 1, "mail": 1}
    item = completion(stack, payload["id"])
    assert set(item["done"]["SS"]) == {archive_step(item), PROJECTION_STEP, "erp", "crm", "mail"}
    assert not [r for r in json_logs.records() if r["level"] == "ERROR"]


def test_a_completion_write_that_never_succeeds_is_logged_truthfully(
    handlers: Handlers, consumer_handlers: LoadConsumer, stack: Stack, json_logs: JsonLogs
) -> None:
    """When the invocation runs out of time for it: the ERROR line names the handlers that ran and
    says when they would run again; the record is not failed for it (its work is done)."""
    from tests.integration.test_consumer_handler import sqs_batch

    handler = consumer_handlers("order")
    refuse, refused = _refuse_completions(1000)
    payload = envelope("order.created", data={"orderId": "ord_never"})
    batch = sqs_batch(stack, QUEUE, [encode(payload).decode()])
    boto3.DEFAULT_SESSION.events.register("provide-client-params.dynamodb.BatchWriteItem", refuse)  # type: ignore[union-attr]
    try:
        # 4.5 s: time for the handlers and two back-offs, not for the sixth attempt.
        assert handler.lambda_handler(batch, Invocation(timeout_seconds=4.5)) == {"batchItemFailures": []}
    finally:
        boto3.DEFAULT_SESSION.events.unregister("provide-client-params.dynamodb.BatchWriteItem", refuse)  # type: ignore[union-attr]
    assert handlers.runs == {"erp": 1, "crm": 1, "mail": 1}
    assert 1 < len(refused) < 6
    (error,) = [r for r in json_logs.records() if r["level"] == "ERROR"]
    assert sorted(error["handlers_ran"]) == ["crm", "erp", "mail"]
    assert error["error_code"] == "ThrottlingException" and error["event_id"] == payload["id"]
    assert "run again if a copy of this message is delivered again" in error["message"]


def test_an_unwritten_completion_with_a_failed_handler_says_the_record_is_redelivered(
    handlers: Handlers, consumer_handlers: LoadConsumer, stack: Stack, json_logs: JsonLogs
) -> None:
    from tests.integration.test_consumer_handler import sqs_batch

    handlers.failing = {"crm"}
    handler = consumer_handlers("order")
    refuse, _ = _refuse_completions(1000)
    batch = sqs_batch(stack, QUEUE, [encode(envelope("order.created", data={"orderId": "ord_both"})).decode()])
    boto3.DEFAULT_SESSION.events.register("provide-client-params.dynamodb.BatchWriteItem", refuse)  # type: ignore[union-attr]
    try:
        response = handler.lambda_handler(batch, Invocation(timeout_seconds=4.5))
    finally:
        boto3.DEFAULT_SESSION.events.unregister("provide-client-params.dynamodb.BatchWriteItem", refuse)  # type: ignore[union-attr]
    assert len(response["batchItemFailures"]) == 1
    (unrecorded,) = [r for r in json_logs.records() if "completion record could not be written" in r["message"]]
    assert unrecorded["message"].endswith("when this record is redelivered")
    assert sorted(unrecorded["handlers_ran"]) == ["erp", "mail"]
    # Issue 27, item 6: so the failed handler does not run again alone; its ERROR line says what does.
    (failed,) = [r for r in json_logs.records() if r.get("handler") == "crm"]
    assert "alone" not in failed["message"]
    assert "the completion record was not written: the steps that succeeded run again too" in failed["message"]
    assert sorted(failed["runs_again"]) == ["archive", "crm", "erp", "mail", "projection"]
    assert "ConnectionError: crm unreachable" in failed["exception"] and "Traceback" in failed["exception"]


def test_failed_handlers_with_their_completion_written_say_only_they_run_again(
    handlers: Handlers, poller: QueuePoller, stack: Stack, json_logs: JsonLogs
) -> None:
    handlers.failing = {"crm", "mail"}
    send(stack, encode(envelope("order.created", data={"orderId": "ord_alone"})))
    assert poller.poll_once().failed == 1
    errors = [r for r in json_logs.records() if r["level"] == "ERROR"]
    assert sorted(r["handler"] for r in errors) == ["crm", "mail"]
    for error in errors:
        assert error["message"] == "partner handler failed; only the handlers that failed run again"
        assert sorted(error["runs_again"]) == ["crm", "mail"]


def test_completions_dynamodb_leaves_unprocessed_are_written_again(
    handlers: Handlers, consumer_handlers: LoadConsumer, stack: Stack, json_logs: JsonLogs
) -> None:
    """BatchWriteItem may answer with UnprocessedItems (throttling): those completion records are
    written again within the invocation, so no handler of theirs runs a second time."""
    from tests.integration.test_consumer_handler import sqs_batch

    payloads = [envelope("order.created", data={"orderId": f"ord_unprocessed_{n}"}) for n in range(3)]
    batch = sqs_batch(stack, QUEUE, [encode(p).decode() for p in payloads])
    left: list[dict[str, Any]] = []

    def leave_the_last(params: dict[str, Any], **_: Any) -> None:  # once: DynamoDB does not write it
        (requests,) = params["RequestItems"].values()
        if not left and len(requests) == len(payloads):
            left.append(requests.pop())

    def answer_it_unprocessed(parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if left and "answered" not in left[0]:
            left[0]["answered"] = True
            parsed["UnprocessedItems"] = {stack.refs["StateTable"]: [{"PutRequest": left[0]["PutRequest"]}]}

    events = boto3.DEFAULT_SESSION.events  # type: ignore[union-attr]
    events.register("provide-client-params.dynamodb.BatchWriteItem", leave_the_last)
    events.register("after-call.dynamodb.BatchWriteItem", answer_it_unprocessed)
    try:
        handler = consumer_handlers("order")
        assert handler.lambda_handler(batch, LambdaContext()) == {"batchItemFailures": []}
    finally:
        events.unregister("provide-client-params.dynamodb.BatchWriteItem", leave_the_last)
        events.unregister("after-call.dynamodb.BatchWriteItem", answer_it_unprocessed)
    assert left and left[0]["answered"]
    for payload in payloads:
        assert set(completion(stack, payload["id"])["done"]["SS"]) >= {PROJECTION_STEP, "erp", "crm", "mail"}
    assert handlers.runs == {"erp": 3, "crm": 3, "mail": 3}
    warnings = [r for r in json_logs.records() if r["level"] == "WARNING"]
    assert [r["message"] for r in warnings] == ["completion records not written yet; retrying"]
    assert len(warnings[0]["records"]) == 1 and warnings[0]["records"][0] in {p["id"] for p in payloads}
    assert not [r for r in json_logs.records() if r["level"] == "ERROR"]


def test_one_message_twice_in_a_batch_runs_its_handlers_once(
    handlers: Handlers, consumer_handlers: LoadConsumer, stack: Stack
) -> None:
    """SQS may deliver a message twice, even within one batch: the second copy loses the claim and
    fails alone; redelivered later, it runs nothing."""
    from tests.integration.test_consumer_handler import sqs_batch

    payload = envelope("order.created", data={"orderId": "ord_twice_in_a_batch"})
    batch = sqs_batch(stack, QUEUE, [encode(payload).decode()])
    twice = {"Records": [batch["Records"][0], {**batch["Records"][0], "receiptHandle": "another"}]}
    handler = consumer_handlers("order")
    response = handler.lambda_handler(twice, LambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": batch["Records"][0]["messageId"]}]}
    assert handlers.runs == {"erp": 1, "crm": 1, "mail": 1}
    assert handler.lambda_handler(batch, LambdaContext()) == {"batchItemFailures": []}
    assert handlers.runs == {"erp": 1, "crm": 1, "mail": 1}


def test_a_handler_that_hangs_to_the_timeout_runs_only_its_own_record_again(
    handlers: Handlers, consumer_handlers: LoadConsumer, stack: Stack, json_logs: JsonLogs
) -> None:
    """The batch's completion records are written at its end, or, when a handler hangs, by a watchdog
    before the invocation would time out: the records before it are recorded, the ones after it are
    not started (their archive step recorded, their claims released), and when SQS gives the batch
    back after the timeout, only the hanging record's handlers run again."""
    import time_machine

    from tests.integration.test_consumer_handler import sqs_batch

    payloads = [envelope("order.created", data={"orderId": f"ord_hang_{n}"}) for n in range(4)]
    batch = sqs_batch(stack, QUEUE, [encode(p).decode() for p in payloads])
    order = [json.loads(record["body"])["id"] for record in batch["Records"]]  # as SQS returned them
    hangs = [order[2]]
    timeout = 4.5  # the watchdog writes at 0.75 s: less the reserve (0.5 s), an attempt (3 s) and 0.25 s
    context = Invocation(timeout_seconds=timeout)

    @on("order", name="slow")
    def slow(event: EventBase) -> None:
        if event.id in hangs:
            hangs.remove(event.id)
            # Past the deadline: Lambda would stop the invocation here. Once the watchdog (a Timer
            # thread) has fired and written, the invocation's clock jumps there instead of sleeping 4.7 s.
            for watchdog in [t for t in threading.enumerate() if isinstance(t, threading.Timer)]:
                watchdog.join(timeout)
            context.skip(timeout + 0.2)

    handler = consumer_handlers("order")
    warm = sqs_batch(stack, QUEUE, [encode(envelope("order.created", data={"orderId": "ord_warm"})).decode()])
    handler.lambda_handler(warm, LambdaContext())  # a warm environment: its clients made
    handlers.runs.clear()
    response = handler.lambda_handler(batch, context)
    assert response["batchItemFailures"] == [{"itemIdentifier": batch["Records"][3]["messageId"]}]
    for event_id in order[:2]:
        assert set(completion(stack, event_id)["done"]["SS"]) >= {"erp", "crm", "mail", "slow"}
    assert "done" not in completion(stack, order[2])  # its claim expires with its lease
    not_started = completion(stack, order[3])
    assert [step.split(":")[0] for step in not_started["done"]["SS"]] == ["#archive"]
    assert "claimToken" not in not_started  # released: its redelivery need not wait for the lease
    assert handlers.runs == {"erp": 3, "crm": 3, "mail": 3}
    (warning,) = [r for r in json_logs.records() if r["message"].startswith("the invocation nears its timeout")]
    assert (warning["running"], warning["not_started"]) == (order[2], [order[3]])
    (failed,) = [r for r in json_logs.records() if r.get("error_type") == "NotStarted"]
    assert failed["event_id"] == order[3] and failed["level"] == "ERROR" and "exception" not in failed

    visibility = int(TEMPLATE.resources[QUEUE]["Properties"]["VisibilityTimeout"])
    with time_machine.travel(time.time() + visibility):  # the batch comes back after the queue's visibility timeout
        assert handler.lambda_handler(batch, LambdaContext()) == {"batchItemFailures": []}
    assert handlers.runs == {"erp": 5, "crm": 5, "mail": 5}
    for event_id in order[2:]:
        assert set(completion(stack, event_id)["done"]["SS"]) >= {"erp", "crm", "mail", "slow"}
    assert len(archived(stack)[order[3]]) == 1  # its archive step was recorded: not archived again
