"""The consumers' event source mappings: a poller per consumer function, and a console line per record."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

#: (logical ID, event) -> (the response, message ID -> why that record failed, the invocation's log)
Invoke = Callable[[str, dict[str, Any]], tuple[Any, dict[str, str], str]]


@dataclass(frozen=True)
class DeadLetter:
    """Where a family queue's record goes after its last receive, and the command that brings it back."""

    max_receives: int
    queue: str
    family: str


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
    logical_id: str, invoke: Invoke, say: Callable[[str], None], dead_letter: DeadLetter
) -> Callable[[dict[str, Any], Any], Any]:
    """The handler a poller calls: the function, then one console line per record with its outcome:
    the handlers that ran, or why it failed and whether it now goes to the dead-letter queue."""

    def handle(event: dict[str, Any], _context: Any) -> Any:
        response, errors, log = invoke(logical_id, event)
        ran = handlers_run(log)
        failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
        for record in event["Records"]:
            try:
                parsed = json.loads(record["body"])
                what = f"{parsed.get('event')} {parsed.get('id')}"
            except (ValueError, AttributeError):
                what = "unparseable body"
            receive = record["attributes"].get("ApproximateReceiveCount", "?")
            done, names = ran.get(record["messageId"], ("processed", None))
            outcome = done + (f"; handlers run: {', '.join(names) or 'none'}" if names is not None else "")
            if record["messageId"] in failed:
                why = errors.get(record["messageId"], "")
                outcome = f"FAILED (receive {receive} of {dead_letter.max_receives}){': ' + why if why else ''}"
                if receive.isdigit() and int(receive) >= dead_letter.max_receives:
                    outcome += (
                        f"\n  -> last receive: SQS moves it to the dead-letter queue {dead_letter.queue}; "
                        f"after the fix, `ntp redrive {dead_letter.family} --local` sends it back"
                    )
            say(f"{logical_id}: {what} {outcome}")
        return response

    return handle
