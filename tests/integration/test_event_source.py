"""The emulated SQS event source mapping takes every setting from template.yaml (issue 26): the
response types, the batch size and window, the queue's visibility timeout and redrive policy, the
function's timeout. So deleting `FunctionResponseTypes: [ReportBatchItemFailures]` from the template
turns this module red, as it would silently drop every failed record of a partly failed batch on AWS.
Copies of the template, changed in one line, show each setting changing what the emulation does."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from devtools.event_source import EventSourceMapping, PollResult, QueuePoller, event_source_mapping, records_left
from devtools.pipeline import reused_client
from devtools.provision import Provisioner, Stack
from devtools.sam_template import SamTemplate, TemplateError
from ntp.deliveries import encode, envelope
from tests.conftest import TEMPLATE, Clock, queue_poller, template_with

LoadConsumer = Callable[[str], ModuleType]
QUEUE, DLQ, CONSUMER = "OrderEventsQueue", "OrderEventsDeadLetterQueue", "OrderConsumerFunction"
RESPONSE_TYPES = "                FunctionResponseTypes: [ReportBatchItemFailures]\n"


def consumers(template: SamTemplate) -> list[str]:
    """The functions with an SQS event: `event_source_mappings` resolves every one's queue."""
    functions = template.of_type("AWS::Serverless::Function")
    return [f for f in functions if any(e["Type"] == "SQS" for e in template.function(f).events.values())]


def provisioned(template: SamTemplate, prefix: str = "local") -> Stack:
    """What the consumers reference in `template` (their queues and dead-letter queues, the table and
    the archive) on moto, and nothing else (no dedup table, secret, topics or key: a third less to
    provision); a `prefix` names them apart from the `stack` fixture's."""
    return Provisioner(
        template,
        reused_client,
        name_prefix=prefix,
        operations=False,
        functions=consumers(template),
        record_only=False,  # the table's point-in-time recovery, the bucket's tags: moto only records them
    ).provision()


@pytest.fixture
def stack(aws: None) -> Stack:
    """The module's tests use the consumers' resources only."""
    return provisioned(TEMPLATE)


def send(stack: Stack, *bodies: str) -> None:
    sqs = reused_client("sqs")  # one client for the bodies: creating one costs as much as a few sends
    for body in bodies:
        sqs.send_message(QueueUrl=stack.refs[QUEUE], MessageBody=body)


def depth(stack: Stack, queue: str = QUEUE) -> int:
    attributes = reused_client("sqs").get_queue_attributes(QueueUrl=stack.refs[queue], AttributeNames=["All"])
    values = attributes["Attributes"]
    return int(values["ApproximateNumberOfMessages"]) + int(values["ApproximateNumberOfMessagesNotVisible"])


def failing_one(body: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """A handler that reports the record with `body` failed, as the consumers' BatchProcessor does."""

    def handle(event: dict[str, Any], _context: Any) -> dict[str, Any]:
        failed = [r["messageId"] for r in event["Records"] if r["body"] == body]
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}

    return handle


# --- what template.yaml says, and the consumers under it -----------------------------------------------


def test_the_mapping_is_the_templates(stack: Stack) -> None:
    mapping = event_source_mapping(TEMPLATE, stack, CONSUMER)
    parameters = TEMPLATE.parameter_defaults()
    queue = TEMPLATE.resources[QUEUE]["Properties"]
    assert mapping == EventSourceMapping(
        function=CONSUMER,
        queue=QUEUE,
        queue_url=stack.refs[QUEUE],
        batch_size=int(parameters["ConsumerBatchSize"]),
        batching_window_seconds=int(parameters["ConsumerBatchingWindowSeconds"]),
        report_batch_item_failures=True,
        function_timeout=TEMPLATE.function(CONSUMER).timeout,
        visibility_timeout=int(queue["VisibilityTimeout"]),
        max_receive_count=int(queue["RedrivePolicy"]["maxReceiveCount"]),
        dead_letter_queue=DLQ,
    )


def test_a_partly_failed_batch_leaves_only_its_failed_record_on_the_queue(
    consumer_handlers: LoadConsumer, stack: Stack, clock: Clock
) -> None:
    """Red without ReportBatchItemFailures in template.yaml: the consumer's report is then ignored
    and the poison record deleted with its batch, never to reach the dead-letter queue."""
    poller = queue_poller(stack, "order", consumer_handlers("order").lambda_handler)
    good = [encode(envelope("order.created", data={"orderId": f"ord_partial_{i}"})).decode() for i in range(3)]
    send(stack, *good, "not an event")

    assert poller.poll_once().received == 4
    assert depth(stack) == 1  # the poison record only, invisible until the visibility timeout
    clock(poller.mapping.visibility_timeout)
    (message,) = reused_client("sqs").receive_message(QueueUrl=stack.refs[QUEUE])["Messages"]
    assert message["Body"] == "not an event"


# --- both semantics of FunctionResponseTypes ----------------------------------------------------------

IDS = ["m1", "m2", "m3"]


@pytest.mark.parametrize(
    ("response", "with_report", "without_report"),
    [
        ({"batchItemFailures": [{"itemIdentifier": "m2"}]}, {"m2"}, set()),
        ({"batchItemFailures": []}, set(), set()),
        ({"batchItemFailures": None}, set(), set()),
        ({}, set(), set()),
        (None, set(), set()),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, set(IDS), set()),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, set(IDS), set()),
        ({"batchItemFailures": [{"messageId": "m2"}]}, set(IDS), set()),
        ({"batchItemFailures": [{"itemIdentifier": "not-in-the-batch"}]}, set(IDS), set()),
        ({"batchItemFailures": "m2"}, set(IDS), set()),
        ("done", set(IDS), set()),
    ],
    ids=[
        "one-reported",
        "empty-list",
        "null-list",
        "empty-response",
        "null-response",
        "empty-identifier",
        "null-identifier",
        "bad-key",
        "unknown-identifier",
        "not-a-list",
        "not-an-object",
    ],
)
def test_what_lambda_leaves_on_the_queue_after_a_normal_return(
    response: Any, with_report: set[str], without_report: set[str]
) -> None:
    """AWS docs, "Implementing partial batch responses": with ReportBatchItemFailures only the reported
    records stay, and a malformed report keeps the whole batch; without it a normal return deletes all."""
    mapping = EventSourceMapping(CONSUMER, QUEUE, "url", 10, 0, True, function_timeout=30, visibility_timeout=240)
    assert records_left(mapping, IDS, response) == with_report
    assert records_left(dataclasses.replace(mapping, report_batch_item_failures=False), IDS, response) == without_report


@pytest.mark.parametrize("report", [True, False], ids=["ReportBatchItemFailures", "no-response-types"])
def test_a_reported_failure_stays_only_with_report_batch_item_failures(aws: None, stack: Stack, report: bool) -> None:
    mapping = dataclasses.replace(event_source_mapping(TEMPLATE, stack, CONSUMER), report_batch_item_failures=report)
    send(stack, "a", "b", "c")
    poller = QueuePoller(reused_client("sqs"), mapping, failing_one("b"), wait_seconds=0)
    assert poller.poll_once().failed == (1 if report else 0)
    assert depth(stack) == (1 if report else 0)  # without: "b" is deleted with its batch, lost


@pytest.mark.parametrize("report", [True, False], ids=["ReportBatchItemFailures", "no-response-types"])
def test_an_invocation_error_or_timeout_leaves_the_whole_batch_either_way(
    aws: None, stack: Stack, report: bool
) -> None:
    mapping = dataclasses.replace(event_source_mapping(TEMPLATE, stack, CONSUMER), report_batch_item_failures=report)
    send(stack, "a", "b")

    def crash(event: dict[str, Any], context: Any) -> None:
        raise RuntimeError("the function crashed")

    assert QueuePoller(reused_client("sqs"), mapping, crash, wait_seconds=0).poll_once().failed == 2
    assert depth(stack) == 2
    reused_client("sqs").purge_queue(QueueUrl=stack.refs[QUEUE])
    send(stack, "c", "d")
    # An invocation that outruns the function's Timeout (here 0 s): Lambda stops it, whatever it returns.
    late = QueuePoller(reused_client("sqs"), mapping, failing_one("none"), wait_seconds=0, timeout_seconds=0)
    assert late.poll_once().failed == 2
    assert depth(stack) == 2


def test_the_consumers_context_has_the_templates_timeout(aws: None, stack: Stack) -> None:
    seen: list[int] = []
    poller = queue_poller(stack, "order", lambda event, context: seen.append(context.get_remaining_time_in_millis()))
    send(stack, "a")
    poller.poll_once()
    timeout_ms = TEMPLATE.function(CONSUMER).timeout * 1000
    assert timeout_ms - 5_000 < seen[0] <= timeout_ms


def test_without_response_types_in_the_template_the_consumers_report_is_ignored(
    tmp_path: Path, stack: Stack, consumer_handlers: LoadConsumer
) -> None:
    """What deleting the line from template.yaml does on AWS: the poison record is deleted, lost."""
    without = template_with(tmp_path, RESPONSE_TYPES, "")
    poller = queue_poller(stack, "order", consumer_handlers("order").lambda_handler, template=without)
    assert not poller.mapping.report_batch_item_failures
    send(stack, encode(envelope("order.created", data={"orderId": "ord_lost"})).decode(), "not an event")
    assert poller.poll_once() == PollResult(received=2, failed=0)
    assert depth(stack) == 0 and depth(stack, DLQ) == 0


# --- the queue's settings: visibility timeout and redrive -------------------------------------------------


def test_a_failed_record_comes_back_after_the_queues_visibility_timeout(
    aws: None, tmp_path: Path, stack: Stack, clock: Clock
) -> None:
    """The template's 240 s; a copy with 60 s brings it back four times sooner."""
    shorter = template_with(tmp_path, "          VisibilityTimeout: 240\n", "          VisibilityTimeout: 60\n")
    for template, visibility in ((TEMPLATE, 240), (shorter, 60)):
        stack = provisioned(template, "shorter") if template is shorter else stack
        poller = queue_poller(stack, "order", failing_one("x"), template=template)
        assert poller.mapping.visibility_timeout == visibility
        send(stack, "x")
        assert poller.poll_once().failed == 1
        clock(visibility - 1)
        assert poller.poll_once().received == 0
        clock(1)
        assert poller.poll_once().received == 1
        reused_client("sqs").purge_queue(QueueUrl=stack.refs[QUEUE])


@pytest.mark.parametrize("max_receives", [5, 2])
def test_a_failing_record_goes_to_the_dead_letter_queue_after_max_receive_count(
    aws: None, tmp_path: Path, clock: Clock, max_receives: int
) -> None:
    """5 in template.yaml; a copy with 2 moves the record after two receives."""
    template = template_with(tmp_path, "maxReceiveCount: 5}", f"maxReceiveCount: {max_receives}}}")
    stack = provisioned(template, "redrive")
    poller = queue_poller(stack, "order", failing_one("poison"), template=template)
    send(stack, "poison")
    receives = 0
    for _ in range(10):
        if depth(stack, DLQ):
            break
        receives += poller.poll_once().received
        clock(poller.mapping.visibility_timeout)
    assert receives == max_receives == poller.mapping.max_receive_count


# --- batch size and batching window -----------------------------------------------------------------


def batch_sizes(sizes: list[int], event: dict[str, Any], _context: Any) -> None:
    sizes.append(len(event["Records"]))


def test_batches_are_the_templates_batch_size(aws: None, tmp_path: Path) -> None:
    """ConsumerBatchSize's default, 10; a copy with 3 makes batches of 3."""
    default = TEMPLATE.doc["Parameters"]["ConsumerBatchSize"]["Default"]
    smaller = template_with(
        tmp_path, f"    Default: {default}\n    MinValue: 1\n    MaxValue: 10\n", "    Default: 3\n"
    )
    for template, expected in ((TEMPLATE, [10, 2]), (smaller, [3, 3, 3, 3])):
        stack = provisioned(template, f"batch{expected[0]}")
        sizes: list[int] = []
        poller = queue_poller(stack, "order", functools.partial(batch_sizes, sizes), template)
        send(stack, *(json.dumps({"n": n}) for n in range(12)))
        assert poller.drain() == 12
        assert sizes == expected


def test_a_batching_window_gathers_a_batch_past_one_receive(aws: None, stack: Stack) -> None:
    """Above 10 records a batch needs a window (Lambda's rule), and gathers with several receives."""
    mapping = event_source_mapping(TEMPLATE, stack, CONSUMER)
    sizes: list[int] = []
    send(stack, *(json.dumps({"n": n}) for n in range(30)))
    windowed = dataclasses.replace(mapping, batch_size=25, batching_window_seconds=10)
    QueuePoller(reused_client("sqs"), windowed, functools.partial(batch_sizes, sizes), wait_seconds=0).drain()
    assert sizes == [25, 5]


WINDOW = "                MaximumBatchingWindowInSeconds: !Ref ConsumerBatchingWindowSeconds\n"


@pytest.mark.parametrize(
    ("changes", "refused"),
    [
        ([("VisibilityTimeout: 240\n", "VisibilityTimeout: 20\n")], "below the Timeout"),
        ([("BatchSize: !Ref ConsumerBatchSize", "BatchSize: 11"), (WINDOW, "")], "needs MaximumBatchingWindow"),
        ([("[ReportBatchItemFailures]", "[ReportBatchItemFailures, Other]")], "FunctionResponseTypes"),
    ],
    ids=["visibility-below-timeout", "batch-above-10-without-window", "unknown-response-type"],
)
def test_what_lambda_refuses_to_create_the_emulation_refuses_too(
    aws: None, tmp_path: Path, stack: Stack, changes: list[tuple[str, str]], refused: str
) -> None:
    template = template_with(tmp_path, *changes[0], *changes[1:])
    with pytest.raises(TemplateError, match=refused):
        event_source_mapping(template, stack, CONSUMER)
