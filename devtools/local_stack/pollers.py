"""The consumers' event source mappings: a poller per consumer function, and a console line per record."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

from devtools.event_source import EventSourceMapping, records_left, timed_out

#: (logical ID, event) -> (the response, message ID -> why that record failed, the invocation's log)
Invoke = Callable[[str, dict[str, Any]], tuple[Any, dict[str, str], str]]


def handlers_run(log: str) -> dict[str, tuple[str, list[str]]]:
    """message ID -> (processed or replayed, the partner handlers that ran), from the consumer's
    "event processed" and "event replayed" log lines (what an operator reads on AWS too)."""
    ran: dict[str, tuple[str, list[str]]] = {}
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        outcome = str(entry.get("message", "")).removeprefix("event ") if isinstance(entry, dict) else ""
        if outcome in ("processed", "replayed") and "message_id" in entry:
            ran[entry["message_id"]] = (outcome, list(entry.get("handlers_run", [])))
    return ran


def batch_errors(module: ModuleType) -> dict[str, str]:
    """message ID -> one-line summary of the exception that failed it, from the consumer's Powertools
    BatchProcessor (it keeps the last batch's failures until the next batch)."""
    processor = getattr(module, "processor", None)
    if processor is None:
        return {}
    return {
        record.message_id: f"{type(exc).__name__}: {exc}" if (exc := info[1]) else ""
        for record, info in zip(processor.fail_messages, processor.exceptions, strict=False)
    }


def consumer_invoker(
    mapping: EventSourceMapping, invoke: Invoke, say: Callable[[str], None], family: str
) -> Callable[[dict[str, Any], Any], Any]:
    """The handler a poller calls: the function, then one console line per record with what the
    mapping does with it (the poller's own rule, `records_left`): the handlers that ran; or why it
    failed and, on its last receive, that it goes to the dead-letter queue; or, without
    ReportBatchItemFailures, that a failed record was deleted with its batch."""

    def handle(event: dict[str, Any], context: Any) -> Any:
        response, errors, log = invoke(mapping.function, event)
        ran = handlers_run(log)
        ids = [record["messageId"] for record in event["Records"]]
        late = timed_out(context)
        left = set(ids) if late else records_left(mapping, ids, response)
        for record in event["Records"]:
            outcome = _outcome(record, mapping, family=family, ran=ran, errors=errors, left=left, late=late)
            say(f"{mapping.function}: {_what(record)} {outcome}")
        return response

    return handle


def _what(record: dict[str, Any]) -> str:
    try:
        parsed = json.loads(record["body"])
        return f"{parsed.get('event')} {parsed.get('id')}"
    except (ValueError, AttributeError):
        return "unparseable body"


def _outcome(
    record: dict[str, Any],
    mapping: EventSourceMapping,
    *,
    family: str,
    ran: dict[str, tuple[str, list[str]]],
    errors: dict[str, str],
    left: set[str],
    late: bool,
) -> str:
    message_id = record["messageId"]
    why = f"timed out (Timeout {mapping.function_timeout} s)" if late else errors.get(message_id, "")
    if message_id not in left:
        if message_id in errors:  # the function failed it, and the mapping deleted it all the same
            return f"FAILED: {why}\n  -> deleted all the same: the mapping has no ReportBatchItemFailures"
        done, names = ran.get(message_id, ("processed", None))
        return done + (f"; handlers run: {', '.join(names) or 'none'}" if names is not None else "")
    receive = record["attributes"].get("ApproximateReceiveCount", "?")
    limit = mapping.max_receive_count
    outcome = f"FAILED (receive {receive} of {limit or 'unlimited'}){': ' + why if why else ''}"
    if limit is not None and receive.isdigit() and int(receive) >= limit:
        outcome += (
            f"\n  -> last receive: SQS moves it to the dead-letter queue {mapping.dead_letter_queue}; "
            f"after the fix, `ntp redrive {family} --local` sends it back"
        )
    return outcome
