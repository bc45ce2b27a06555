"""Sends accepted events to their family's SQS queue."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

#: SQS message attribute names: who sent what, readable by an operator (a DLQ, a redrive) without the
#: body. The consumers archive them with the body.
ATTR_EVENT_TYPE = "eventType"
ATTR_EVENT_ID = "eventId"
ATTR_API_REQUEST_ID = "apiRequestId"
ATTR_KEY_STAGE = "keyStage"
ATTR_KEY_VERSION = "keyVersion"
ATTR_RECEIVED_AT = "receivedAt"
ATTR_SENDER_REQUEST_ID = "senderRequestId"
#: Set by `ntp replay` only: run these handlers (comma-separated) once more, as replay `replayId`.
ATTR_REPLAY_HANDLERS = "replayHandlers"
ATTR_REPLAY_ID = "replayId"


class FamilyQueues:
    def __init__(self, client: SQSClient, urls: Mapping[str, str]) -> None:
        self._client = client
        self._urls = dict(urls)

    def send(self, family: str, body: str, attributes: Mapping[str, str]) -> str:
        """Put `body` (the exact raw webhook body) on `family`'s queue; returns the message ID."""
        message_attributes: dict[str, MessageAttributeValueTypeDef] = {
            name: {"DataType": "String", "StringValue": value} for name, value in attributes.items() if value
        }
        response = self._client.send_message(
            QueueUrl=self._urls[family], MessageBody=body, MessageAttributes=message_attributes
        )
        return response["MessageId"]
