"""`MessageAttributes`: the one mapping of an event's SQS message attributes, both ways."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from ntp_webhooks.archive import ArchiveRecord
from ntp_webhooks.family_queues import ATTR_EVENT_ID, FamilyQueues, MessageAttributes, Replay

#: The wire format the deployed stacks, their queues and the archive hold: changing it breaks them.
WIRE_NAMES = {
    "event_type": "eventType",
    "event_id": "eventId",
    "api_request_id": "apiRequestId",
    "key_stage": "keyStage",
    "key_version": "keyVersion",
    "sender_request_id": "senderRequestId",
    "received_at": "receivedAt",
}
FULL = MessageAttributes(
    event_type="order.created",
    event_id="evt_1",
    api_request_id="apigw-1",
    key_stage="AWSCURRENT",
    key_version="v-1",
    sender_request_id="req-1",
    received_at="2025-01-02T03:04:05+00:00",
)


def lambda_record(attributes: dict[str, Any]) -> SQSRecord:
    """An SQS record of a Lambda event with these SendMessage attributes (camelCase, as Lambda gives them)."""
    return SQSRecord(
        {
            "messageId": "m-1",
            "body": "{}",
            "messageAttributes": {
                name: {"stringValue": value["StringValue"], "dataType": value["DataType"]}
                for name, value in attributes.items()
            },
        }
    )


def test_each_field_is_its_string_attribute_as_the_ingest_has_always_sent_it() -> None:
    assert {f.name: f.metadata["sqs"] for f in fields(MessageAttributes) if "sqs" in f.metadata} == WIRE_NAMES
    assert FULL.to_sqs() == {
        WIRE_NAMES[name]: {"DataType": "String", "StringValue": getattr(FULL, name)} for name in WIRE_NAMES
    }
    assert list(FULL.to_sqs()) == list(WIRE_NAMES.values())  # the ingest's order
    assert ATTR_EVENT_ID == "eventId"


def test_empty_values_are_not_sent_and_read_back_empty() -> None:
    partial = MessageAttributes(event_type="order.created", event_id="evt_1")
    assert partial.values() == {"eventType": "order.created", "eventId": "evt_1"}
    assert MessageAttributes.of_record(lambda_record(partial.to_sqs())) == partial
    assert MessageAttributes.of_record(SQSRecord({"messageId": "m", "body": "{}", "messageAttributes": {}})) == (
        MessageAttributes()
    )


@pytest.mark.parametrize("replay", [None, Replay(frozenset({"erp", "crm"}), "r" * 32)])
def test_a_lambda_record_reads_back_what_was_sent(replay: Replay | None) -> None:
    attributes = MessageAttributes(**{name: getattr(FULL, name) for name in WIRE_NAMES}, replay=replay)
    sent = attributes.to_sqs()
    if replay is not None:
        assert sent["replayHandlers"]["StringValue"] == "crm,erp" and sent["replayId"]["StringValue"] == "r" * 32
    assert MessageAttributes.of_record(lambda_record(sent)) == attributes


def test_the_archive_record_and_a_replay_carry_the_same_values() -> None:
    record = FULL.archive_record(event_id="evt_1", event_type="order.created", family="order", body='{"a":1}')
    assert record == ArchiveRecord(
        event_id="evt_1",
        event_type="order.created",
        family="order",
        received_at=FULL.received_at,
        sender_request_id=FULL.sender_request_id,
        api_request_id=FULL.api_request_id,
        key_stage=FULL.key_stage,
        key_version=FULL.key_version,
        body='{"a":1}',
    )
    replay = Replay(frozenset({"erp"}), "id-1")
    assert MessageAttributes.of_archived(record, replay) == MessageAttributes(
        **{name: getattr(FULL, name) for name in WIRE_NAMES}, replay=replay
    )


def test_family_queues_send_the_attributes_as_sqs_takes_them() -> None:
    sent: dict[str, Any] = {}

    class Client:
        def send_message(self, **request: Any) -> dict[str, str]:
            sent.update(request)
            return {"MessageId": "m-1"}

    queues = FamilyQueues(Client(), {"order": "https://queue/order"})  # type: ignore[arg-type]
    assert queues.send("order", "{}", FULL) == "m-1"
    assert sent == {"QueueUrl": "https://queue/order", "MessageBody": "{}", "MessageAttributes": FULL.to_sqs()}
