"""An SQS event source mapping, emulated: poll a queue, invoke a handler with the Lambda SQS event,
honour partial batch responses.

Lambda's event source mappings need Lambda itself, which needs Docker. This does what they do:
- long polling, with the mapping's batch size;
- succeeded records are deleted;
- records reported in `batchItemFailures` (or the whole batch, if the handler raises) stay on the
  queue. They become visible again after `retry_delay` seconds; on AWS that is the queue's
  visibility timeout. moto's redrive then moves them to the DLQ after `maxReceiveCount` receives.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devtools.lambda_events import LambdaContext, acting_as


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


class QueuePoller:
    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handler: Callable[[dict[str, Any], Any], dict[str, Any] | None],
        *,
        batch_size: int = 10,
        wait_seconds: int = 1,
        retry_delay: int = 0,
        function_name: str = "consumer",
        timeout_seconds: float = 30.0,
    ) -> None:
        self._sqs = sqs
        self._url = queue_url
        self._handler = handler
        self._batch_size = batch_size
        self._wait = wait_seconds
        self._retry_delay = retry_delay
        self._function_name = function_name
        self._timeout = timeout_seconds
        # The mapping reads the queue, receives and deletes with the function's role, as Lambda's does.
        with acting_as(function_name):
            attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
        self._arn = attributes["QueueArn"]
        self._region = self._arn.split(":")[3]

    def poll_once(self) -> PollResult:
        with acting_as(self._function_name):
            messages = self._sqs.receive_message(
                QueueUrl=self._url,
                MaxNumberOfMessages=self._batch_size,
                WaitTimeSeconds=self._wait,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
        if not messages:
            return PollResult(0, 0)
        event = {"Records": [lambda_sqs_record(m, self._arn, self._region) for m in messages]}
        context = LambdaContext(function_name=self._function_name, timeout_seconds=self._timeout)
        try:
            with acting_as(self._function_name):
                response = self._handler(event, context) or {}
            failed_ids = {failure["itemIdentifier"] for failure in response.get("batchItemFailures", [])}
        except PollerStopped:
            return PollResult(len(messages), len(messages))
        except Exception:
            failed_ids = {m["MessageId"] for m in messages}  # an invocation error returns the whole batch
        for message in messages:
            if message["MessageId"] in failed_ids:
                # Emulation only (Lambda leaves a failed record until its visibility timeout): no role.
                self._sqs.change_message_visibility(
                    QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=self._retry_delay
                )
            else:
                with acting_as(self._function_name):
                    self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
        return PollResult(len(messages), len(failed_ids))

    def drain(self, max_polls: int = 100) -> int:
        """Poll until a poll receives nothing (bounded); returns how many messages were received."""
        total = 0
        for _ in range(max_polls):
            result = self.poll_once()
            if result.received == 0:
                break
            total += result.received
        return total
