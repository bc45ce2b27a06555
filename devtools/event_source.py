"""An SQS event source mapping, emulated (Lambda's own needs Docker): poll a queue, invoke a handler
with the Lambda SQS event, delete what Lambda deletes. Every setting is the template's
(`event_source_mappings`); what is emulated and how it differs from AWS: docs/local-stack.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devtools.lambda_events import LambdaContext, acting_as
from devtools.sam_template import SamTemplate, TemplateError

if TYPE_CHECKING:
    from devtools.provision import Stack


REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"
#: Lambda's limits for a standard queue: 10 records without a batching window, 10,000 with one.
MAX_BATCH_WITHOUT_WINDOW, MAX_BATCH, MAX_WINDOW_SECONDS = 10, 10_000, 300
#: What AWS uses where the template says nothing (Lambda's and SQS's documented defaults).
DEFAULT_BATCH_SIZE, DEFAULT_VISIBILITY_TIMEOUT = 10, 30


@dataclass(frozen=True)
class EventSourceMapping:
    """One SQS event source mapping and its queue, the template's values resolved."""

    function: str  # the consumer's logical ID: the mapping receives and deletes with its role
    queue: str  # the queue's logical ID
    queue_url: str
    batch_size: int  # BatchSize
    batching_window_seconds: int  # MaximumBatchingWindowInSeconds
    report_batch_item_failures: bool  # FunctionResponseTypes: [ReportBatchItemFailures]
    function_timeout: int  # the function's Timeout: an invocation that outruns it fails whole
    visibility_timeout: int  # the queue's VisibilityTimeout: a failed record comes back after it
    max_receive_count: int | None = None  # the queue's RedrivePolicy: receives before the DLQ
    dead_letter_queue: str | None = None  # its deadLetterTargetArn's logical ID


def event_source_mappings(template: SamTemplate, stack: Stack) -> dict[str, EventSourceMapping]:
    """Function logical ID -> its SQS mapping, for every function of the provisioned `stack` that has one."""
    found: dict[str, EventSourceMapping] = {}
    for logical_id, resource in template.of_type("AWS::Serverless::Function").items():
        if "Condition" in resource and not stack.condition(resource["Condition"]):
            continue
        events = [e for e in template.function(logical_id).events.values() if e["Type"] == "SQS"]
        if len(events) > 1:
            raise TemplateError(f"{logical_id}: more than one SQS event is not emulated")
        if events:
            found[logical_id] = _mapping(template, stack, logical_id, events[0]["Properties"])
    return found


def event_source_mapping(template: SamTemplate, stack: Stack, function: str) -> EventSourceMapping:
    """The SQS mapping of `function` (a logical ID)."""
    try:
        return event_source_mappings(template, stack)[function]
    except KeyError:
        raise TemplateError(f"{function} has no SQS event in {template.path.name}") from None


def _mapping(template: SamTemplate, stack: Stack, function: str, props: dict[str, Any]) -> EventSourceMapping:
    queue = _logical_id(props["Queue"])
    queue_props = template.resources[queue].get("Properties", {})
    batch_size = int(stack.resolve(props.get("BatchSize", DEFAULT_BATCH_SIZE)))
    window = int(stack.resolve(props.get("MaximumBatchingWindowInSeconds", 0)))
    response_types = stack.resolve(props.get("FunctionResponseTypes", []))
    timeout = template.function(function).timeout
    visibility = int(stack.resolve(queue_props.get("VisibilityTimeout", DEFAULT_VISIBILITY_TIMEOUT)))
    # What CreateEventSourceMapping refuses, refused here too rather than emulated.
    if not 1 <= batch_size <= MAX_BATCH:
        raise TemplateError(f"{function}: BatchSize {batch_size} is not 1-10,000")
    if batch_size > MAX_BATCH_WITHOUT_WINDOW and not window:
        raise TemplateError(f"{function}: BatchSize {batch_size} above 10 needs MaximumBatchingWindowInSeconds")
    if not 0 <= window <= MAX_WINDOW_SECONDS:
        raise TemplateError(f"{function}: MaximumBatchingWindowInSeconds {window} is not 0-300")
    if set(response_types) - {REPORT_BATCH_ITEM_FAILURES}:
        raise TemplateError(f"{function}: FunctionResponseTypes {response_types}: only {REPORT_BATCH_ITEM_FAILURES}")
    if visibility < timeout:
        raise TemplateError(f"{function}: {queue}'s VisibilityTimeout {visibility} s is below the Timeout {timeout} s")
    redrive = queue_props.get("RedrivePolicy")
    return EventSourceMapping(
        function=function,
        queue=queue,
        queue_url=stack.refs[queue],
        batch_size=batch_size,
        batching_window_seconds=window,
        report_batch_item_failures=REPORT_BATCH_ITEM_FAILURES in response_types,
        function_timeout=timeout,
        visibility_timeout=visibility,
        max_receive_count=int(stack.resolve(redrive["maxReceiveCount"])) if redrive else None,
        dead_letter_queue=_logical_id(redrive["deadLetterTargetArn"]) if redrive else None,
    )


def _logical_id(arn: Any) -> str:
    """`{"Fn::GetAtt": [QueueId, "Arn"]}` -> QueueId: the mapping and the redrive name queues of this template."""
    if isinstance(arn, dict) and "Fn::GetAtt" in arn:
        target = arn["Fn::GetAtt"]
        return str(target[0] if isinstance(target, list) else target.split(".", 1)[0])
    raise TemplateError(f"a queue given as {arn!r} is not emulated: give Fn::GetAtt [Queue, Arn]")


@dataclass(frozen=True)
class PollResult:
    received: int
    failed: int


class PollerStopped(RuntimeError):
    """Raised by a handler whose stack is stopping: the batch is left as received, untouched (its
    messages come back after their visibility timeout), and no further call is made."""


def lambda_sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One record of the event Lambda builds from a received SQS message."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value["DataType"],
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody")
        or hashlib.md5(message["Body"].encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def records_left(mapping: EventSourceMapping, message_ids: list[str], response: Any) -> set[str]:
    """The records Lambda leaves on the queue after an invocation that returned `response`.

    Without ReportBatchItemFailures the response is ignored and the batch deleted, even where it
    reports failures. With it, no report (None, {}, an empty or null list) is a success, and an
    item identifier that is missing, empty or not in the batch fails the whole batch (AWS docs,
    "Implementing partial batch responses")."""
    if not mapping.report_batch_item_failures or response is None:
        return set()
    if not isinstance(response, dict):
        return set(message_ids)
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return set(message_ids)
    reported = [failure.get("itemIdentifier") if isinstance(failure, dict) else None for failure in failures]
    if not all(identifier in message_ids for identifier in reported):  # None, "" or another batch's ID
        return set(message_ids)
    return {str(identifier) for identifier in reported}


def timed_out(context: LambdaContext) -> bool:
    """The invocation ran past the function's Timeout: Lambda would have stopped it, failing the batch."""
    return context.get_remaining_time_in_millis() == 0


class QueuePoller:
    def __init__(
        self,
        sqs: Any,
        mapping: EventSourceMapping,
        handler: Callable[[dict[str, Any], Any], dict[str, Any] | None],
        *,
        wait_seconds: int = 1,
        retry_delay: int | None = None,
        timeout_seconds: float | None = None,
    ) -> None:
        """`retry_delay`: seconds after which a failed record comes back, instead of the queue's
        VisibilityTimeout (the local stack's shortening; a `ChangeMessageVisibility` no role makes).
        `timeout_seconds`: a scaled-down function Timeout (the soak's), instead of the template's."""
        self.mapping = mapping
        self._sqs = sqs
        self._url = mapping.queue_url
        self._handler = handler
        self._wait = wait_seconds
        self._retry_delay = retry_delay
        self._function_name = mapping.function
        self._timeout = float(mapping.function_timeout if timeout_seconds is None else timeout_seconds)
        # The mapping reads the queue, receives and deletes with the function's role, as Lambda's does.
        with acting_as(self._function_name):
            attributes = sqs.get_queue_attributes(QueueUrl=self._url, AttributeNames=["QueueArn"])["Attributes"]
        self._arn = attributes["QueueArn"]
        self._region = self._arn.split(":")[3]

    def poll_once(self) -> PollResult:
        messages = self._receive()
        if not messages:
            return PollResult(0, 0)
        event = {"Records": [lambda_sqs_record(m, self._arn, self._region) for m in messages]}
        message_ids = [m["MessageId"] for m in messages]
        context = LambdaContext(function_name=self._function_name, timeout_seconds=self._timeout)
        try:
            with acting_as(self._function_name):
                response = self._handler(event, context)
            left = set(message_ids) if timed_out(context) else records_left(self.mapping, message_ids, response)
        except PollerStopped:
            return PollResult(len(messages), len(messages))
        except Exception:
            left = set(message_ids)  # an invocation error returns the whole batch
        for message in messages:
            if message["MessageId"] not in left:
                with acting_as(self._function_name):
                    self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
            elif self._retry_delay is not None:
                # Emulation only (Lambda leaves a failed record until its visibility timeout): no role.
                self._sqs.change_message_visibility(
                    QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=self._retry_delay
                )
        return PollResult(len(messages), len(left))

    def _receive(self) -> list[dict[str, Any]]:
        """One batch: a receive of up to 10 (SQS's most); with a batching window, more receives while
        the batch is not full and the queue gives more, as Lambda gathers records within the window."""
        messages: list[dict[str, Any]] = []
        while len(messages) < self.mapping.batch_size:
            with acting_as(self._function_name):
                received = self._sqs.receive_message(
                    QueueUrl=self._url,
                    MaxNumberOfMessages=min(10, self.mapping.batch_size - len(messages)),
                    WaitTimeSeconds=0 if messages else self._wait,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            messages += received
            if not received or not self.mapping.batching_window_seconds:
                break
        return messages

    def drain(self, max_polls: int = 100) -> int:
        """Poll until a poll receives nothing (bounded); returns how many messages were received."""
        total = 0
        for _ in range(max_polls):
            result = self.poll_once()
            if result.received == 0:
                break
            total += result.received
        return total
