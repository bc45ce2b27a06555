"""One SQS record -> typed event -> projection -> the partner's handlers, each step once per event ID."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pydantic import ValidationError

from ntp_webhooks.envelope import EnvelopeError
from ntp_webhooks.events import parse_event
from ntp_webhooks.handler_runs import PROJECTION_STEP, HandlerRuns
from ntp_webhooks.observability import count, logger
from ntp_webhooks.projection import Projection
from ntp_webhooks.subscriptions import Subscriptions

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from ntp_webhooks.events import EventBase
    from ntp_webhooks.settings import ConsumerSettings


class InvalidEventBody(ValueError):
    """The record is not a valid event. The message names fields, never the body's values."""


class HandlersFailed(RuntimeError):
    """At least one partner handler raised; the others that succeeded are recorded and not re-run."""


class Consumer:
    def __init__(self, projection: Projection, runs: HandlerRuns, subscriptions: Subscriptions) -> None:
        self._projection = projection
        self._runs = runs
        self._subscriptions = subscriptions

    def handle(self, record: SQSRecord) -> int:
        """Returns how many handlers ran. Raises when the record must be retried: BatchProcessor then
        reports only this record, and SQS redelivers it (to the DLQ after maxReceiveCount)."""
        receive_count = record.attributes.get("ApproximateReceiveCount")  # always set by SQS; tolerate hand-made events
        with logger.append_context_keys(message_id=record.message_id, receive_count=receive_count):
            event = self._parse(record)
            with logger.append_context_keys(event_id=event.id, event_type=event.event):
                try:
                    return self._process(event)
                except HandlersFailed:
                    raise
                except Exception:
                    count("RecordFailed", reason="processing_error")
                    logger.exception("record failed before its handlers finished; it will be retried")
                    raise

    def _parse(self, record: SQSRecord) -> EventBase:
        try:
            return parse_event(record.body)
        except EnvelopeError as exc:
            count("RecordFailed", reason="invalid_event")
            logger.error("record is not a NowToPrint event", extra={"reason": exc.reason})
            raise InvalidEventBody(exc.reason) from None
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False, include_context=False)[0]
            where = ".".join(str(part) for part in first["loc"]) or "body"
            reason = f"{exc.error_count()} error(s), first at {where}: {first['msg']}"
            count("RecordFailed", reason="invalid_event")
            logger.error("record is not a NowToPrint event", extra={"reason": reason})
            raise InvalidEventBody(reason) from None

    def _process(self, event: EventBase) -> int:
        started = time.perf_counter()
        done = self._runs.completed(event.id)
        succeeded: list[str] = []
        projection = "already recorded"
        if PROJECTION_STEP not in done:
            projection = self._projection.apply(event).value
            succeeded.append(PROJECTION_STEP)
        pending = [h for h in self._subscriptions.handlers_for(event) if h.name not in done]
        failed: list[str] = []
        for handler in pending:
            try:
                handler(event)
            except Exception as exc:
                failed.append(f"{handler.name} ({type(exc).__name__}: {exc})")
                count("RecordFailed", reason="handler_failed")
                logger.exception("partner handler failed; it alone will run again", extra={"handler": handler.name})
            else:
                succeeded.append(handler.name)
        self._runs.record(event.id, succeeded)
        if failed:
            raise HandlersFailed("; ".join(failed))
        ran = len(pending)
        logger.info(
            "event processed",
            extra={
                "projection": projection,
                "handlers_run": ran,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return ran


def build_consumer(settings: ConsumerSettings, subscriptions: Subscriptions) -> Consumer:
    from ntp_webhooks.aws_clients import client

    dynamodb = client("dynamodb")
    return Consumer(
        Projection(dynamodb, settings.state_table_name, settings.state_history_length),
        HandlerRuns(dynamodb, settings.state_table_name, settings.dedup_retention_days * 86400),
        subscriptions,
    )
