"""One SQS record -> typed event -> projection -> the partner's handlers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import ValidationError

from ntp_webhooks.events import parse_event
from ntp_webhooks.observability import count, logger
from ntp_webhooks.projection import Outcome, Projection
from ntp_webhooks.subscriptions import Subscriptions

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord


class InvalidEventBody(ValueError):
    """The record is not a valid event. The message names fields, never the body's values."""


class Consumer:
    def __init__(self, projection: Projection, subscriptions: Subscriptions) -> None:
        self._projection = projection
        self._subscriptions = subscriptions

    def handle(self, record: SQSRecord) -> Outcome:
        """Raises on a bad body or a failing handler: BatchProcessor reports only this record."""
        try:
            return self._handle(record)
        except Exception:
            count("RecordFailed")
            raise

    def _handle(self, record: SQSRecord) -> Outcome:
        try:
            event = parse_event(record.body)
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False, include_context=False)[0]
            where = ".".join(str(part) for part in first["loc"])
            raise InvalidEventBody(f"{exc.error_count()} error(s), first at {where}: {first['msg']}") from None
        with logger.append_context_keys(event_id=event.id, event_type=event.event, message_id=record.message_id):
            outcome = self._projection.apply(event)
            count(f"Projection{outcome.value.title()}")
            handlers = self._subscriptions.dispatch(event)
            logger.info("event processed", extra={"projection": outcome.value, "handlers": handlers})
        return outcome


def build_consumer(state_table_name: str, subscriptions: Subscriptions) -> Consumer:
    from ntp_webhooks.aws_clients import client

    return Consumer(Projection(client("dynamodb"), state_table_name), subscriptions)
