"""End to end in one process: signed API Gateway event -> ingest -> SQS (moto) -> consumer -> projection."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import boto3

from devtools.deliveries import envelope, signed_event
from devtools.event_source import QueuePoller
from devtools.lambda_events import LambdaContext
from devtools.provision import Stack
from ntp_webhooks.projection import read_item


def test_signed_delivery_ends_up_in_the_projection(
    ingest_handler: ModuleType, consumer_handlers: Callable[[str], ModuleType], stack: Stack
) -> None:
    order = "ord_e2e_1"
    lifecycle = [
        envelope(name, data={"orderId": order}) for name in ("order.created", "order.confirmed", "order.shipped")
    ]
    quote = envelope("quote.received", data={"rfqId": "rfq_e2e", "quoteId": "quote_e2e"})
    signal = envelope("workflow.preflight_completed", data={"jobId": "job_e2e"})
    # Shipped first, then everything, then a duplicate: order and repeats must not matter.
    for payload in [lifecycle[2], *lifecycle, quote, signal, lifecycle[1]]:
        response = ingest_handler.lambda_handler(signed_event(payload), LambdaContext())
        assert response["statusCode"] in (200, 202)

    sqs = boto3.client("sqs")
    for family in ("order", "quote", "workflow"):
        handler = consumer_handlers(family)
        poller = QueuePoller(sqs, stack.refs[f"{family.title()}EventsQueue"], handler.lambda_handler, wait_seconds=0)
        assert poller.drain() > 0

    ddb, table = boto3.client("dynamodb"), stack.refs["StateTable"]
    item = read_item(ddb, table, "order", order)
    assert item is not None
    assert item["status"] == "shipped"
    assert [h["id"] for h in item["history"]] == [p["id"] for p in lifecycle]
    quote_item = read_item(ddb, table, "quote", "quote_e2e")
    assert quote_item is not None and quote_item["rfqId"] == "rfq_e2e"
    assert read_item(ddb, table, "workflow", signal["id"]) is not None
    for queue in ("OrderEventsQueue", "QuoteEventsQueue", "WorkflowEventsQueue"):
        attributes = sqs.get_queue_attributes(QueueUrl=stack.refs[queue], AttributeNames=["All"])["Attributes"]
        assert attributes["ApproximateNumberOfMessages"] == "0"
        assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
