"""Sends accepted events to their family's SQS queue, with their message attributes: one typed
mapping (`MessageAttributes`) that the ingest writes, the consumers read and `ntp replay` writes again."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

    from ntp_webhooks.archive import ArchiveRecord

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


def _attribute(name: str) -> str:
    return field(default="", metadata={"sqs": name})


@dataclass(frozen=True, slots=True)
class Replay:
    """What `ntp replay` asks of the consumer: run `handlers` once more, as replay `replay_id`."""

    handlers: frozenset[str]
    replay_id: str


@dataclass(frozen=True, slots=True)
class MessageAttributes:
    """The message attributes of an event on its family queue, each field one String attribute (its
    name in the field's metadata) and the `ArchiveRecord` field of the same name. An empty value is
    not sent (SQS refuses one) and reads back as ""."""

    event_type: str = _attribute(ATTR_EVENT_TYPE)
    event_id: str = _attribute(ATTR_EVENT_ID)
    api_request_id: str = _attribute(ATTR_API_REQUEST_ID)
    key_stage: str = _attribute(ATTR_KEY_STAGE)
    key_version: str = _attribute(ATTR_KEY_VERSION)
    sender_request_id: str = _attribute(ATTR_SENDER_REQUEST_ID)
    received_at: str = _attribute(ATTR_RECEIVED_AT)
    replay: Replay | None = None

    def values(self) -> dict[str, str]:
        """Attribute name -> value, the empty ones left out."""
        values = {name: getattr(self, attribute) for attribute, name in _NAMES}
        if self.replay is not None:
            values[ATTR_REPLAY_HANDLERS] = ",".join(sorted(self.replay.handlers))
            values[ATTR_REPLAY_ID] = self.replay.replay_id
        return {name: value for name, value in values.items() if value}

    def to_sqs(self) -> dict[str, MessageAttributeValueTypeDef]:
        """As SendMessage takes them."""
        return {name: {"DataType": "String", "StringValue": value} for name, value in self.values().items()}

    @classmethod
    def from_values(cls, values: Mapping[str, str]) -> MessageAttributes:
        """From attribute name -> value; names of no field are ignored."""
        handlers = values.get(ATTR_REPLAY_HANDLERS)
        replay = None if handlers is None else Replay(frozenset(handlers.split(",")), values.get(ATTR_REPLAY_ID, ""))
        return cls(**{attribute: values.get(name, "") for attribute, name in _NAMES}, replay=replay)

    @classmethod
    def of_record(cls, record: SQSRecord) -> MessageAttributes:
        """From an SQS record of a Lambda event (what the ingest, or `ntp replay`, set)."""
        return cls.from_values(
            {
                name: value.string_value
                for name, value in (record.message_attributes or {}).items()
                if value is not None and value.string_value is not None
            }
        )

    @classmethod
    def of_archived(cls, record: ArchiveRecord, replay: Replay | None = None) -> MessageAttributes:
        """As the ingest set them for an archived event (`ntp replay` sends it again so, with `replay`)."""
        return cls(**{attribute: getattr(record, attribute) for attribute, _ in _NAMES}, replay=replay)

    def archive_record(self, *, event_id: str, event_type: str, family: str, body: str) -> ArchiveRecord:
        """The event's archive record: its ID and type from its body, who sent it and which key verified
        it from here (a message sent without attributes, as a redrive tool may, archives "")."""
        from ntp_webhooks.archive import ArchiveRecord  # the consumers' import only, not the ingest's

        carried = {attribute: getattr(self, attribute) for attribute, _ in _NAMES}
        return ArchiveRecord(**carried | {"event_id": event_id, "event_type": event_type}, family=family, body=body)


#: (field, SQS attribute name) of each String attribute, in the order the ingest sends them.
_NAMES = tuple((f.name, f.metadata["sqs"]) for f in fields(MessageAttributes) if "sqs" in f.metadata)


class FamilyQueues:
    def __init__(self, client: SQSClient, urls: Mapping[str, str]) -> None:
        self._client = client
        self._urls = dict(urls)

    def send(self, family: str, body: str, attributes: MessageAttributes) -> str:
        """Put `body` (the exact raw webhook body) on `family`'s queue; returns the message ID."""
        response = self._client.send_message(
            QueueUrl=self._urls[family], MessageBody=body, MessageAttributes=attributes.to_sqs()
        )
        return response["MessageId"]
