"""The consumers' event source mappings: a poller per consumer function, and a console line per record."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

#: (logical ID, event) -> (the response, message ID -> why that record failed)
Invoke = Callable[[str, dict[str, Any]], tuple[Any, dict[str, str]]]


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
    logical_id: str, invoke: Invoke, say: Callable[[str], None]
) -> Callable[[dict[str, Any], Any], Any]:
    """The handler a poller calls: the function, then one console line per record with its outcome."""

    def handle(event: dict[str, Any], _context: Any) -> Any:
        response, errors = invoke(logical_id, event)
        failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
        for record in event["Records"]:
            try:
                parsed = json.loads(record["body"])
                what = f"{parsed.get('event')} {parsed.get('id')}"
            except (ValueError, AttributeError):
                what = "unparseable body"
            receive = record["attributes"].get("ApproximateReceiveCount", "?")
            outcome = "processed"
            if record["messageId"] in failed:
                why = errors.get(record["messageId"], "")
                outcome = f"FAILED (receive {receive}, DLQ after 5){': ' + why if why else ''}"
            say(f"{logical_id}: {what} {outcome}")
        return response

    return handle
