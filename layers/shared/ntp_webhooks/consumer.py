"""One SQS record -> typed event -> archive -> projection -> the partner's handlers, each step once per
event ID. A record that `ntp replay` sent runs only the handlers it names, once per replay."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from ntp_webhooks import archive as archive_step
from ntp_webhooks.archive import Archive
from ntp_webhooks.aws_clients import Deadline, deadline
from ntp_webhooks.envelope import EnvelopeError, describe
from ntp_webhooks.errors import aws_error
from ntp_webhooks.events import parse_event
from ntp_webhooks.family_queues import MessageAttributes, Replay
from ntp_webhooks.handler_runs import PROJECTION_STEP, ClaimHeld, HandlerRuns
from ntp_webhooks.observability import count, logger, trace_id
from ntp_webhooks.projection import Projection
from ntp_webhooks.subscriptions import Handler, Subscriptions

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from ntp_webhooks.events import EventBase
    from ntp_webhooks.settings import ConsumerSettings


#: A claim's lease when no invocation deadline is known (hand-made calls): the consumers' timeout.
DEFAULT_LEASE_SECONDS = 30.0


class InvalidEventBody(ValueError):
    """The record is not a valid event. The message names fields, never the body's values."""


class HandlersFailed(RuntimeError):
    """At least one partner handler raised; the others that succeeded are not re-run if their
    completion record is written (the failure's log line says what runs again)."""


@dataclass(frozen=True, slots=True)
class HandlerFailure:
    """A partner handler that raised, logged once the completion record's fate is known."""

    name: str
    error: Exception

    def __str__(self) -> str:
        return f"{self.name} ({type(self.error).__name__}: {self.error})"


class RecordInFlight(RuntimeError):
    """Another copy of this message holds the event's claim; SQS redelivers this one later."""


#: Back-off between attempts to write the completion record once side effects are done (seconds).
FINISH_BACKOFF = (0.1, 0.2, 0.4, 0.8, 1.6)


class Consumer:
    """`budget`: its AWS calls' time budget in each invocation (the clients' own, `build_consumer`);
    a claim's lease is the invocation's time left."""

    def __init__(
        self,
        projection: Projection,
        runs: HandlerRuns,
        subscriptions: Subscriptions,
        archive: Archive,
        *,
        family: str,
        sleep: Callable[[float], None] = time.sleep,
        budget: Deadline = deadline,
    ) -> None:
        self._budget = budget
        self._projection = projection
        self._runs = runs
        self._subscriptions = subscriptions
        self._archive = archive
        self._family = family
        self._sleep = sleep

    def handle(self, record: SQSRecord) -> int:
        """Returns how many handlers ran. Raises when the record must be retried: BatchProcessor then
        reports only this record, and SQS redelivers it (to the DLQ after maxReceiveCount)."""
        receive_count = record.attributes.get("ApproximateReceiveCount")  # always set by SQS; tolerate hand-made events
        with logger.append_context_keys(message_id=record.message_id, receive_count=receive_count):
            event = self._parse(record)
            attributes = MessageAttributes.of_record(record)
            with logger.append_context_keys(event_id=event.id, event_type=event.event):
                try:
                    if attributes.replay is not None:
                        return self._replay(event, attributes.replay)
                    return self._process(event, attributes, trace_id(record.attributes.aws_trace_header or ""))
                except (HandlersFailed, RecordInFlight):
                    raise
                except Exception as exc:
                    count("RecordFailed", reason="processing_error")
                    logger.error(
                        "record failed before any handler ran; it will be retried",
                        extra={**aws_error(exc), "error_type": type(exc).__name__},
                        exc_info=not isinstance(exc, BotoCoreError | ClientError),  # a bug: its traceback
                    )
                    raise

    def _parse(self, record: SQSRecord) -> EventBase:
        try:
            return parse_event(record.body)
        except (EnvelopeError, ValidationError) as exc:
            # The ingest's own words for what is wrong (never the offending value).
            reason = exc.reason if isinstance(exc, EnvelopeError) else describe(exc)
            count("RecordFailed", reason="invalid_event")
            logger.error("record is not a NowToPrint event", extra={"reason": reason})
            raise InvalidEventBody(reason) from None

    def _claim(self, key: str) -> frozenset[str]:
        """Take the claim of `key` (an event ID, or a replay of one); returns the steps done."""
        remaining = self._budget.remaining_seconds()
        lease = DEFAULT_LEASE_SECONDS if remaining is None else remaining
        token = uuid.uuid4().hex
        try:
            return self._runs.claim(key, token, lease)
        except ClaimHeld as held:
            logger.info("another copy of this event is being processed; this one will be redelivered later")
            raise RecordInFlight(str(held)) from None
        except (BotoCoreError, ClientError):
            # The claim may have taken effect with its answer lost: release it (best effort; else it
            # expires with its lease, before SQS redelivers the record).
            with contextlib.suppress(BotoCoreError, ClientError):
                self._runs.release(key, token)
            raise

    def _process(self, event: EventBase, attributes: MessageAttributes, trace: str | None = None) -> int:
        started = time.perf_counter()
        done = self._claim(event.id)
        succeeded: list[str] = []
        failed: list[HandlerFailure] = []
        projection = "already recorded"
        try:
            # The archive first: the record is not done until its bytes are kept, and the state item
            # points at the hour its archive object lands under.
            archived = archive_step.archived_hour(done)
            if archived is None:
                record = attributes.archive_record(
                    event_id=event.id, event_type=event.event, family=self._family, body=event.body
                )
                archived = self._archive.put(record)
                succeeded.append(archive_step.step_name(archived))
            if PROJECTION_STEP not in done:
                projection = self._projection.apply(event, archived).value
                succeeded.append(PROJECTION_STEP)
            pending = [h for h in self._subscriptions.handlers_for(event) if h.name not in done]
            self._run(event, pending, succeeded, failed)
        except BaseException:
            recorded = self._finish(event.id, succeeded, record_retried=True)  # record what succeeded, release
            _log_failures(failed, succeeded, recorded=recorded)
            raise
        recorded = self._finish(event.id, succeeded, record_retried=bool(failed))
        _log_failures(failed, succeeded, recorded=recorded)
        ran = [name for name in succeeded if not name.startswith("#")]
        if failed:
            raise HandlersFailed("; ".join(map(str, failed)))
        logger.info(
            "event processed",
            extra={
                "projection": projection,
                "handlers_run": ran,
                "recorded": recorded,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "trace_id": trace,
            },
        )
        return len(ran)

    def _replay(self, event: EventBase, replay: Replay) -> int:
        """Run the named handlers once more for this replay: not the projection, not the archive, no
        other handler. The event's own `handled#` record is left as it is; the replay has its own
        (`<event id>#replay:<replay id>`), so SQS delivering the replay twice runs them once."""
        started = time.perf_counter()
        names = replay.handlers
        key = f"{event.id}#replay:{replay.replay_id}"
        done = self._claim(key)
        subscribed = [h for h in self._subscriptions.handlers_for(event) if h.name in names]
        succeeded: list[str] = []
        failed: list[HandlerFailure] = []
        try:
            self._run(event, [h for h in subscribed if h.name not in done], succeeded, failed)
        except BaseException:
            _log_failures(failed, succeeded, recorded=self._finish(key, succeeded, record_retried=True))
            raise
        _log_failures(failed, succeeded, recorded=self._finish(key, succeeded, record_retried=bool(failed)))
        if failed:
            raise HandlersFailed("; ".join(map(str, failed)))
        logger.info(
            "event replayed",
            extra={
                "handlers_run": succeeded,
                "not_subscribed": sorted(names - {h.name for h in subscribed}),
                "replay_id": replay.replay_id,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return len(succeeded)

    def _run(
        self, event: EventBase, handlers: list[Handler], succeeded: list[str], failed: list[HandlerFailure]
    ) -> None:
        """Run each handler; append the names that succeeded, and the failures. The failures are
        logged by `_log_failures` once the completion record is written or not: that decides what
        runs again."""
        for handler in handlers:
            try:
                handler(event)
            except Exception as exc:
                failed.append(HandlerFailure(handler.name, exc))
                count("RecordFailed", reason="handler_failed")
            else:
                succeeded.append(handler.name)

    def _finish(self, event_id: str, succeeded: list[str], *, record_retried: bool) -> bool:
        """Write the completion record, retrying with back-off while the invocation has time: once
        side effects are done, losing this write is what would run handlers twice. Returns whether
        it was written; if not, the claim expires with its lease."""
        error: dict[str, str] = {}
        for backoff in (*FINISH_BACKOFF, None):
            try:
                self._runs.finish(event_id, succeeded)
                return True
            except (BotoCoreError, ClientError) as exc:
                error = aws_error(exc)
                if backoff is None or not self._budget.allows(backoff + self._budget.attempt_seconds):
                    break
                logger.warning("completion record not written yet; retrying", extra=error)
                self._sleep(backoff)
        ran = [name for name in succeeded if not name.startswith("#")]
        if not succeeded:
            logger.warning("claim not released; it expires with its lease", extra=error)
            return False
        count("CompletionNotRecorded")
        logger.error(
            "handlers ran but their completion record could not be written: they run again "
            + (
                "when this record is redelivered"
                if record_retried
                else "if a copy of this message is delivered again (the record itself is not retried for it)"
            ),
            extra={
                **error,
                "handlers_ran": ran,
                "projection_applied": PROJECTION_STEP in succeeded,
                "archived": archive_step.archived_hour(succeeded) is not None,
            },
        )
        return False


def _step_label(step: str) -> str:
    """A step as the logs name it: a handler's name, `archive` or `projection`."""
    if step == PROJECTION_STEP:
        return "projection"
    return "archive" if archive_step.archived_hour([step]) is not None else step


def _log_failures(failed: list[HandlerFailure], succeeded: list[str], *, recorded: bool) -> None:
    """One ERROR line per failed handler, with its traceback, saying what runs on the next delivery:
    the failed handlers, and, if the completion record was not written, the steps that succeeded."""
    again = [failure.name for failure in failed]
    if not recorded:
        again += [_step_label(step) for step in succeeded]
    message = (
        "partner handler failed; only the handlers that failed run again"
        if len(again) == len(failed)
        else "partner handler failed, and the completion record was not written: "
        "the steps that succeeded run again too (runs_again lists them)"
    )
    for failure in failed:
        logger.error(message, exc_info=failure.error, extra={"handler": failure.name, "runs_again": again})


def build_consumer(
    settings: ConsumerSettings, subscriptions: Subscriptions, *, budget: Deadline = deadline
) -> Consumer:
    """Wire the consumer to real AWS clients, whose every call has `budget`, and to `subscriptions`."""
    from ntp_webhooks.aws_clients import client

    dynamodb = client("dynamodb", budget)
    return Consumer(
        Projection(dynamodb, settings.state_table_name, settings.state_history_length),
        HandlerRuns(dynamodb, settings.state_table_name, settings.handled_retention_days * 86400),
        subscriptions,
        Archive(client("firehose", budget), settings.archive_stream_name),
        family=settings.event_family,
        budget=budget,
    )
