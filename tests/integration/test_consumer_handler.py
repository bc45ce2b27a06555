"""Consumer functions called with SQS batch events, as the event source mapping builds them."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from devtools.event_source import EventSourceMapping, PollerStopped, PollResult, QueuePoller, lambda_sqs_record
from devtools.lambda_events import LambdaContext
from devtools.pipeline import reused_client
from devtools.provision import Stack
from ntp.deliveries import encode, envelope
from ntp.operations import read_state
from ntp_webhooks.events import OrderConfirmed, QuoteReceived
from ntp_webhooks.subscriptions import on
from tests.conftest import AwsCalls, Clock, JsonLogs, queue_poller

LoadConsumer = Callable[[str], ModuleType]


def sqs_batch(stack: Stack, queue: str, bodies: list[str]) -> dict[str, Any]:
    """Send `bodies` to the queue and receive them back as one Lambda SQS event."""
    sqs = reused_client("sqs")
    url = stack.refs[queue]
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    messages: list[Any] = []
    while len(messages) < len(bodies):
        messages += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    arn = stack.attributes[(queue, "Arn")]
    return {"Records": [lambda_sqs_record(m, arn, "us-east-1") for m in messages]}


def projected(stack: Stack, entity: str, entity_id: str) -> dict[str, Any] | None:
    return read_state(reused_client("dynamodb"), stack.refs["StateTable"], entity, entity_id)


def test_batch_with_one_poison_record_reports_only_that_record(
    consumer_handlers: LoadConsumer, stack: Stack, isolated_subscriptions: None
) -> None:
    handler = consumer_handlers("order")
    runs: dict[str, int] = {}

    @on("order")
    def count_runs(event: OrderConfirmed) -> None:
        runs[event.id] = runs.get(event.id, 0) + 1

    good = [envelope("order.confirmed", data={"orderId": f"ord_{i}"}) for i in range(9)]
    batch = sqs_batch(stack, "OrderEventsQueue", [json.dumps(p) for p in good] + ['{"id": "evt_poison"'])
    poison_id = next(r["messageId"] for r in batch["Records"] if "evt_poison" in r["body"])

    response = handler.lambda_handler(batch, LambdaContext())

    assert response == {"batchItemFailures": [{"itemIdentifier": poison_id}]}
    assert runs == {p["id"]: 1 for p in good}
    for payload in good:
        item = projected(stack, "order", payload["data"]["orderId"])
        assert item is not None and item["status"] == "confirmed" and item["lastEventId"] == payload["id"]


def test_registered_handler_receives_the_typed_model(
    consumer_handlers: LoadConsumer, stack: Stack, isolated_subscriptions: None
) -> None:
    handler = consumer_handlers("quote")
    received: list[Any] = []
    on("quote.received")(received.append)
    payload = envelope("quote.received", data={"rfqId": "rfq_1", "quoteId": "quote_1", "new": True})
    handler.lambda_handler(sqs_batch(stack, "QuoteEventsQueue", [json.dumps(payload)]), LambdaContext())
    (event,) = received
    assert isinstance(event, QuoteReceived)
    assert event.data.quoteId == "quote_1" and event.data.rfqId == "rfq_1"
    assert event.data.model_extra == {"new": True}


def test_a_failing_user_handler_fails_only_its_record(
    consumer_handlers: LoadConsumer, stack: Stack, isolated_subscriptions: None
) -> None:
    handler = consumer_handlers("order")

    @on("order.shipped")
    def carrier_down(event: Any) -> None:
        raise ConnectionError("carrier API unreachable")

    shipped = envelope("order.shipped", data={"orderId": "ord_s"})
    created = envelope("order.created", data={"orderId": "ord_c"})
    batch = sqs_batch(stack, "OrderEventsQueue", [json.dumps(shipped), json.dumps(created)])
    failed_id = next(r["messageId"] for r in batch["Records"] if shipped["id"] in r["body"])
    assert handler.lambda_handler(batch, LambdaContext()) == {"batchItemFailures": [{"itemIdentifier": failed_id}]}
    assert projected(stack, "order", "ord_c") is not None


def test_poison_message_reaches_the_dlq_after_max_receive_count(
    consumer_handlers: LoadConsumer, stack: Stack, clock: Clock
) -> None:
    handler = consumer_handlers("workflow")
    sqs = reused_client("sqs")
    sqs.send_message(QueueUrl=stack.refs["WorkflowEventsQueue"], MessageBody="this is not an event")
    good = envelope("workflow.preflight_completed")
    sqs.send_message(QueueUrl=stack.refs["WorkflowEventsQueue"], MessageBody=json.dumps(good))
    poller = queue_poller(stack, "workflow", handler.lambda_handler)

    polls = []
    for _ in range(7):
        polls.append(poller.poll_once())
        clock(poller.mapping.visibility_timeout)

    assert sum(p.failed for p in polls) == poller.mapping.max_receive_count == 5  # maxReceiveCount in the template
    dlq = sqs.receive_message(QueueUrl=stack.refs["WorkflowEventsDeadLetterQueue"], AttributeNames=["All"])
    (dead,) = dlq["Messages"]
    assert dead["Body"] == "this is not an event"
    assert projected(stack, "workflow", good["id"]) is not None
    main = sqs.get_queue_attributes(QueueUrl=stack.refs["WorkflowEventsQueue"], AttributeNames=["All"])["Attributes"]
    assert main["ApproximateNumberOfMessages"] == "0" and main["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_invalid_body_fails_with_one_error_line_that_does_not_log_the_body(
    consumer_handlers: LoadConsumer, stack: Stack, capsys: pytest.CaptureFixture[str], json_logs: JsonLogs
) -> None:
    handler = consumer_handlers("order")
    secret_looking = "card-4111111111111111"
    payload = envelope("order.created", data={"orderId": 5, "card": secret_looking}, timestamp="yesterday")
    batch = sqs_batch(stack, "OrderEventsQueue", [encode(payload).decode()])
    assert len(handler.lambda_handler(batch, LambdaContext())["batchItemFailures"]) == 1
    printed = capsys.readouterr().out  # EMF metrics
    assert '"RecordFailed"' in printed and '"reason": "invalid_event"' in printed.replace('":"', '": "')
    assert secret_looking not in printed + json_logs.text
    (error,) = [r for r in json_logs.records() if r["level"] == "ERROR"]
    assert error["message_id"] == batch["Records"][0]["messageId"]
    assert error["receive_count"] == "1"
    assert "timestamp" in error["reason"]


def test_a_stopping_stacks_poller_leaves_the_batch_and_makes_no_further_call(aws: None, aws_calls: AwsCalls) -> None:
    """A long poll that returns after the local stack began to stop: its messages are left as received
    (back after their visibility timeout) and nothing else is called, since moto may be gone."""
    sqs = reused_client("sqs")
    url = sqs.create_queue(QueueName="stopping", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x")

    def stopping(event: dict[str, Any], context: Any) -> None:
        raise PollerStopped("the stack is stopping")

    mapping = EventSourceMapping("consumer", "stopping", url, 10, 0, True, function_timeout=30, visibility_timeout=0)
    poller = QueuePoller(sqs, mapping, stopping, wait_seconds=0)
    aws_calls.reset()
    assert poller.poll_once() == PollResult(1, 1)
    assert aws_calls.names("sqs") == ["ReceiveMessage"]  # no DeleteMessage, no ChangeMessageVisibility
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "x"  # still on its queue
