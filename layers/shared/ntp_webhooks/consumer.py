"""One SQS batch -> typed events -> archive -> projection -> the partner's handlers, each step once per
event ID. A record that `ntp replay` sent runs only the handlers it names, once per replay.

A batch takes three steps, so that the calls made once per batch are shared by its records:
1. `Consumer.begin`: each record is parsed and its event claimed (`HandlerRuns.claim`), then the
   events not archived yet are archived with one call (`Archive.put_all`);
2. `Batch.handle`, Powertools' record handler: each record's projection and handlers; a record that
   raises is reported to SQS as failed (ReportBatchItemFailures) and redelivered;
3. `Batch.finish`: one completion write for every claimed record (`HandlerRuns.finish_all`), then each
   record's summary line, which says what runs again.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from ntp_webhooks import archive as archive_step
from ntp_webhooks.archive import Archive, ArchiveRefused
from ntp_webhooks.aws_clients import Deadline, deadline
from ntp_webhooks.envelope import EnvelopeError, describe
from ntp_webhooks.errors import aws_error
from ntp_webhooks.events import parse_event
from ntp_webhooks.family_queues import MessageAttributes
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


class NotStarted(RuntimeError):
    """Too little of the invocation is left to record this record's steps: it is not started, and SQS
    redelivers it."""


@dataclass(slots=True)
class Claimed:
    """A record whose event (or replay) this invocation holds the claim of."""

    record: SQSRecord
    event: EventBase
    attributes: MessageAttributes
    key: str  # the `handled#` record's: the event ID, or `<event id>#replay:<replay id>`
    done: frozenset[str]  # the steps done before, as the claim returned them
    trace: str | None
    succeeded: list[str] = field(default_factory=list)
    failed: list[HandlerFailure] = field(default_factory=list)
    projection: str = "already recorded"
    error: BaseException | None = None  # what failed the record (it is redelivered)
    not_subscribed: list[str] = field(default_factory=list)  # a replay's named handlers that are not
    duration_ms: float = 0.0

    @property
    def steps(self) -> frozenset[str]:
        return self.done | frozenset(self.succeeded)


#: Back-off between attempts to write the completion record once side effects are done (seconds).
FINISH_BACKOFF = (0.1, 0.2, 0.4, 0.8, 1.6)
#: A claim's lease lasts this much past the invocation's end: a completion write that DynamoDB applies
#: after the client gave up on it still lands inside it. Costs nothing: SQS redelivers a message only
#: after its visibility timeout (240 s), and a copy that finds the claim held is redelivered then too.
LEASE_MARGIN_SECONDS = 10.0
#: The batch's completion records are written once, at its end, unless its records take longer: then
#: those done so far are written after each record once this long has passed since the last write, and
#: before the invocation would time out (a handler that hangs), so that a crash or a timeout does not
#: run the handlers of the records before it again.
FLUSH_EVERY_SECONDS = 5.0
#: How long before the last moment a completion write can start the watchdog writes.
WATCHDOG_MARGIN_SECONDS = 0.25


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

    def begin(self, records: list[SQSRecord]) -> Batch:
        """Parse and claim each record's event, then archive those not archived yet, in one call."""
        batch = Batch(self)
        for record in records:
            batch.add(record, self._prepare(record))
        self._archive_all([claimed for claimed in batch.claimed if claimed.attributes.replay is None])
        return batch

    def _prepare(self, record: SQSRecord) -> Claimed | BaseException:
        """The record's event, claimed; or what fails the record (logged and counted here, with the
        record's log keys: the happy path sets none, they cost CPU on every record)."""
        try:
            event = self._parse(record)
            attributes = MessageAttributes.of_record(record)
        except Exception as exc:  # a bug, or not an event: this record fails, not the batch
            with _record_context(record):
                _log_processing_error(exc)
            return exc
        replay = attributes.replay
        key = event.id if replay is None else f"{event.id}#replay:{replay.replay_id}"
        try:
            done = self._claim(key)
        except Exception as exc:
            with logger.append_context_keys(**_message_keys(record), event_id=event.id, event_type=event.event):
                _log_processing_error(exc)
            return exc
        return Claimed(record, event, attributes, key, done, trace_id(record.attributes.aws_trace_header or ""))

    def _archive_all(self, claimed: list[Claimed]) -> None:
        """The archive step of every event not archived yet, with one call. A record whose archive
        write fails fails before anything else runs: the record is not done until its bytes are kept,
        and the state item points at the hour its archive object lands under."""
        pending = [c for c in claimed if archive_step.archived_hour(c.done) is None]
        if not pending:
            return
        records = [
            c.attributes.archive_record(
                event_id=c.event.id, event_type=c.event.event, family=self._family, body=c.event.body
            )
            for c in pending
        ]
        for c, outcome in zip(pending, self._archive.put_all(records), strict=True):
            if isinstance(outcome, str):
                c.succeeded.append(archive_step.step_name(outcome))
                continue
            c.error = outcome
            with _event_context(c):
                _log_processing_error(outcome)

    def _parse(self, record: SQSRecord) -> EventBase:
        try:
            return parse_event(record.body)
        except (EnvelopeError, ValidationError) as exc:
            # The ingest's own words for what is wrong (never the offending value).
            reason = exc.reason if isinstance(exc, EnvelopeError) else describe(exc)
            raise InvalidEventBody(reason) from None

    def _claim(self, key: str) -> frozenset[str]:
        """Take the claim of `key` (an event ID, or a replay of one); returns the steps done."""
        remaining = self._budget.remaining_seconds()
        lease = DEFAULT_LEASE_SECONDS if remaining is None else remaining + LEASE_MARGIN_SECONDS
        token = uuid.uuid4().hex
        try:
            return self._runs.claim(key, token, lease)
        except ClaimHeld as held:
            raise RecordInFlight(str(held)) from None
        except (BotoCoreError, ClientError):
            # The claim may have taken effect with its answer lost: release it (best effort; else it
            # expires with its lease, before SQS redelivers the record).
            with contextlib.suppress(BotoCoreError, ClientError):
                self._runs.release(key, token)
            raise

    def process(self, claimed: Claimed) -> int:
        """The event's projection and handlers (a replay's named handlers only). Returns how many
        handlers ran; raises when the record must be retried."""
        started = time.perf_counter()
        try:
            replay = claimed.attributes.replay
            if replay is not None:
                names = replay.handlers
                pending = [h for h in self._subscriptions.handlers_for(claimed.event) if h.name in names]
                claimed.not_subscribed = sorted(names - {h.name for h in pending})
            else:
                if PROJECTION_STEP not in claimed.done:
                    archived = archive_step.archived_hour(claimed.steps)
                    claimed.projection = self._projection.apply(claimed.event, archived).value
                    claimed.succeeded.append(PROJECTION_STEP)
                pending = list(self._subscriptions.handlers_for(claimed.event))
            self._run(claimed.event, [h for h in pending if h.name not in claimed.done], claimed)
        except Exception as exc:
            claimed.error = exc
            _log_processing_error(exc)
            raise
        finally:
            claimed.duration_ms = round((time.perf_counter() - started) * 1000, 1)
        if claimed.failed:
            claimed.error = HandlersFailed("; ".join(map(str, claimed.failed)))
            raise claimed.error
        return len(_ran(claimed.succeeded))

    def _run(self, event: EventBase, handlers: list[Handler], claimed: Claimed) -> None:
        """Run each handler; the names that succeeded and the failures go on `claimed`. The failures
        are logged once the completion record is written or not: that decides what runs again."""
        for handler in handlers:
            try:
                handler(event)
            except Exception as exc:
                claimed.failed.append(HandlerFailure(handler.name, exc))
                count("RecordFailed", reason="handler_failed")
            else:
                claimed.succeeded.append(handler.name)

    def write_completions(self, claimed: list[Claimed]) -> tuple[set[str], dict[str, str]]:
        """Write the completion record of each of `claimed` (its steps, and its claim released),
        retrying with back-off while the invocation has time: once side effects are done, losing this
        write is what would run handlers twice. Returns the keys not written (their claims expire with
        their leases) and the error that kept them."""
        left = {c.key: c.steps for c in claimed}
        error: dict[str, str] = {}
        for backoff in (*FINISH_BACKOFF, None):
            try:
                left = {key: left[key] for key in self._runs.finish_all(left)}
            except (BotoCoreError, ClientError) as exc:
                error = aws_error(exc)
            else:
                error = {"error_code": "UnprocessedItems", "error_message": "DynamoDB left them unprocessed"}
            if not left or backoff is None or not self._budget.allows(backoff + self._budget.attempt_seconds):
                break
            logger.warning("completion records not written yet; retrying", extra={**error, "records": sorted(left)})
            self._sleep(backoff)
        return set(left), ({} if not left else error)

    def has_time_to_record(self, record_seconds: float) -> bool:
        """Whether a record that takes `record_seconds` (the longest of its batch so far), started now,
        can still have its completion written in this invocation."""
        return self._budget.allows(record_seconds + self._budget.attempt_seconds)

    def watchdog_delay(self) -> float | None:
        """Seconds from now to when the watchdog writes (None: no deadline): shortly before the last
        moment a completion write can start, and early enough for a second attempt where the
        invocation is long enough for that."""
        remaining = self._budget.remaining_seconds()
        if remaining is None:
            return None
        last = remaining - self._budget.reserve_seconds - self._budget.attempt_seconds - WATCHDOG_MARGIN_SECONDS
        with_retry = last - FINISH_BACKOFF[0] - self._budget.attempt_seconds
        return with_retry if with_retry > last / 2 else last

    @property
    def budget(self) -> Deadline:
        return self._budget


class Batch:
    """The records of one SQS batch, once `Consumer.begin` claimed and archived them. Their completion
    records are written together at the end (`finish`), or earlier: every FLUSH_EVERY_SECONDS, and by
    a watchdog shortly before the invocation would time out, which also closes the batch: the records
    not started then are not started, their steps so far recorded and their claims released."""

    def __init__(self, consumer: Consumer) -> None:
        self._consumer = consumer
        self._prepared: defaultdict[str, list[Claimed | BaseException]] = defaultdict(list)
        self.claimed: list[Claimed] = []
        self._lock = threading.Lock()  # the watchdog's thread and the handler's share what follows
        self._finished: list[Claimed] = []  # to write
        self._queued: set[int] = set()  # id() of the records ever put in `_finished`
        self._started: set[int] = set()
        self._running: Claimed | None = None
        self._closed = False
        self._longest = 0.0  # the longest record of this batch so far (seconds)
        self._unwritten: dict[str, dict[str, str]] = {}  # key -> the error that kept its record
        self._written: set[str] = set()
        self._last_write = time.monotonic()
        self._watchdog: threading.Timer | None = None

    def add(self, record: SQSRecord, prepared: Claimed | BaseException) -> None:
        self._prepared[record.message_id].append(prepared)  # a list: SQS may deliver a message twice
        if isinstance(prepared, Claimed):
            self.claimed.append(prepared)

    def started(self) -> None:
        """After `begin`: the records it failed (their claims released now, not at the end), and the
        watchdog."""
        failed = [c for c in self.claimed if c.error is not None]
        if failed:
            with self._lock:
                self._queue(failed)
            self._write()
        seconds = self._consumer.watchdog_delay()
        if seconds is not None and seconds > 0:
            invocation_context = self._consumer.budget.current()
            self._watchdog = threading.Timer(seconds, self._close, args=(invocation_context,))
            self._watchdog.daemon = True
            self._watchdog.start()

    def handle(self, record: SQSRecord) -> int:
        """Powertools' record handler: returns how many handlers ran; raises when the record must be
        retried (BatchProcessor then reports only this record; to the DLQ after maxReceiveCount)."""
        prepared = self._prepared[record.message_id].pop(0)
        if not isinstance(prepared, Claimed):
            raise prepared
        with _event_context(prepared):
            with self._lock:
                if prepared.error is None and (self._closed or not self._consumer.has_time_to_record(self._longest)):
                    prepared.error = NotStarted("too little time left to record its steps; it is retried")
                    self._queue([prepared])
                if prepared.error is not None:  # its archive write failed (logged then), or it is not started
                    if isinstance(prepared.error, NotStarted):
                        _log_processing_error(prepared.error)
                    raise prepared.error
                self._started.add(id(prepared))
                self._running = prepared
            started = time.monotonic()
            try:
                return self._consumer.process(prepared)
            finally:
                with self._lock:
                    self._running = None
                    self._longest = max(self._longest, time.monotonic() - started)
                    self._queue([prepared])
                if time.monotonic() - self._last_write >= FLUSH_EVERY_SECONDS:
                    self._write()

    def finish(self) -> None:
        """The completion records not written yet, then each claimed record's summary line."""
        if self._watchdog is not None:
            self._watchdog.cancel()
        if not self.claimed:
            return
        with self._lock:  # everything not written yet, those an earlier write could not write too
            self._finished = [c for c in self.claimed if c.key not in self._written]
            self._queued |= {id(c) for c in self._finished}
        self._write()
        released = [c.key for c in self.claimed if c.key in self._unwritten and not _did_work(c)]
        if released:  # nothing of theirs to run again but the claim: it expires with its lease
            logger.warning("claims not released; they expire with their leases", extra={"records": released})
        for claimed in self.claimed:
            error = self._unwritten.get(claimed.key)
            if error is not None and _did_work(claimed):
                _log_unrecorded(claimed, error)
            _log_outcome(claimed, recorded=error is None)

    def _queue(self, records: list[Claimed]) -> None:
        """Put records to write (the lock held), each once."""
        for c in records:
            if id(c) not in self._queued:
                self._queued.add(id(c))
                self._finished.append(c)

    def _write(self) -> None:
        """Write the completion records of the records queued so far."""
        with self._lock:
            pending, self._finished = self._finished, []
            self._last_write = time.monotonic()
            if not pending:
                return
            left, error = self._consumer.write_completions(pending)
            for c in pending:
                if c.key in left:
                    self._unwritten[c.key] = error
                else:
                    self._unwritten.pop(c.key, None)
                    self._written.add(c.key)

    def _close(self, invocation_context: Any) -> None:
        """The watchdog, in its own thread, shortly before the invocation would time out: the batch is
        closed, and the records done so far and those not started are written."""
        with self._consumer.budget.applying(invocation_context):
            with self._lock:
                self._closed = True
                waiting = [c for c in self.claimed if id(c) not in self._started and id(c) not in self._queued]
                for c in waiting:
                    c.error = NotStarted("the invocation was about to time out; it is retried")
                self._queue(waiting)
                running = self._running
            if running is not None:
                logger.warning(
                    "the invocation nears its timeout while a record runs: the others are recorded, this "
                    "one runs again unless it finishes in time",
                    extra={"running": running.key, "not_started": [c.key for c in waiting]},
                )
            self._write()


def _did_work(claimed: Claimed) -> bool:
    """Whether the record's projection or a handler ran (not only its archive step)."""
    return PROJECTION_STEP in claimed.succeeded or bool(_ran(claimed.succeeded))


def _message_keys(record: SQSRecord) -> dict[str, str | None]:
    # ApproximateReceiveCount: always set by SQS; tolerate hand-made events
    return {"message_id": record.message_id, "receive_count": record.attributes.get("ApproximateReceiveCount")}


def _log_keys(claimed: Claimed) -> dict[str, str | None]:
    """A claimed record's log keys, for a line logged outside its context (`_event_context`)."""
    return {**_message_keys(claimed.record), "event_id": claimed.event.id, "event_type": claimed.event.event}


def _event_context(claimed: Claimed) -> contextlib.AbstractContextManager[None]:
    """The log keys of a claimed record's lines (its message's and its event's), your handlers' too."""
    return logger.append_context_keys(**_log_keys(claimed))


def _record_context(record: SQSRecord) -> contextlib.AbstractContextManager[None]:
    """The log keys of a record's lines before its event is known."""
    return logger.append_context_keys(**_message_keys(record))


def _ran(steps: list[str]) -> list[str]:
    """The partner handlers among the steps (not the archive or the projection)."""
    return [name for name in steps if not name.startswith("#")]


def _log_processing_error(exc: BaseException) -> None:
    """The one line and metric of a record that fails before or outside its handlers."""
    if isinstance(exc, InvalidEventBody):
        count("RecordFailed", reason="invalid_event")
        logger.error("record is not a NowToPrint event", extra={"reason": str(exc)})
        return
    if isinstance(exc, RecordInFlight):
        logger.info("another copy of this event is being processed; this one will be redelivered later")
        return
    if isinstance(exc, HandlersFailed):
        return  # logged once the completion record's fate is known (`_log_failures`)
    count("RecordFailed", reason="processing_error")
    logger.error(
        "record failed before any handler ran; it will be retried",
        extra={**aws_error(exc), "error_type": type(exc).__name__},
        exc_info=not isinstance(exc, BotoCoreError | ClientError | ArchiveRefused | NotStarted),  # a bug: its traceback
    )


def _log_unrecorded(claimed: Claimed, error: dict[str, str]) -> None:
    count("CompletionNotRecorded")
    with _event_context(claimed):
        logger.error(
            "handlers ran but their completion record could not be written: they run again "
            + (
                "when this record is redelivered"
                if claimed.error is not None
                else "if a copy of this message is delivered again (the record itself is not retried for it)"
            ),
            extra={
                **error,
                "handlers_ran": _ran(claimed.succeeded),
                "projection_applied": PROJECTION_STEP in claimed.succeeded,
                "archived": archive_step.archived_hour(claimed.succeeded) is not None,
            },
        )


def _log_outcome(claimed: Claimed, *, recorded: bool) -> None:
    """A failed record's handler failures (what runs again), or a processed record's summary line."""
    if claimed.failed:
        with _event_context(claimed):
            _log_failures(claimed.failed, claimed.succeeded, recorded=recorded)
    if claimed.error is not None:
        return
    replay = claimed.attributes.replay
    if replay is None:
        logger.info(
            "event processed",
            extra={
                **_log_keys(claimed),
                "projection": claimed.projection,
                "handlers_run": _ran(claimed.succeeded),
                "recorded": recorded,
                "duration_ms": claimed.duration_ms,
                "trace_id": claimed.trace,
            },
        )
        return
    logger.info(
        "event replayed",
        extra={
            **_log_keys(claimed),
            "handlers_run": claimed.succeeded,
            "not_subscribed": claimed.not_subscribed,
            "replay_id": replay.replay_id,
            "duration_ms": claimed.duration_ms,
        },
    )


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
    settings: ConsumerSettings,
    subscriptions: Subscriptions,
    *,
    budget: Deadline = deadline,
    sleep: Callable[[float], None] = time.sleep,
) -> Consumer:
    """Wire the consumer to real AWS clients, whose every call has `budget`, and to `subscriptions`;
    `sleep` waits out the back-off between completion write attempts."""
    from ntp_webhooks.aws_clients import client

    dynamodb = client("dynamodb", budget)
    return Consumer(
        Projection(dynamodb, settings.state_table_name, settings.state_history_length),
        HandlerRuns(dynamodb, settings.state_table_name, settings.handled_retention_days * 86400),
        subscriptions,
        Archive(client("firehose", budget), settings.archive_stream_name),
        family=settings.event_family,
        sleep=sleep,
        budget=budget,
    )
