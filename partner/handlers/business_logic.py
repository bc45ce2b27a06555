"""Add your business logic here: this module is the consumers' one entry point into your code
(partner/README.md). Test it with `make test-partner` (partner/tests).

Register a function for an event name (`order.confirmed`), a family (`order`) or everything (`*`).
It receives the typed event (see `ntp_webhooks.events`). The built-in projection has already stored
the event by the time your function runs.
- Each function runs to success once per event ID, identified by its name (`module.function`, or
  `@on(..., name="...")`): redeliveries and redrives run only the functions that have not succeeded.
- If your function raises, it is logged with its traceback, and its SQS record is delivered again
  (up to five times, then the family's dead-letter queue); your other functions that succeeded do not
  run again, unless their completion record could not be written (the log line says what runs again).
- A crash between your side effect and its completion record (written per batch, at least every 5 s)
  runs it again: key side effects on `event.id` (docs/handlers.md, 'What "once" means').
"""

from __future__ import annotations

from ntp_webhooks.events import OrderConfirmed, QuoteReceived, WorkflowSignal
from ntp_webhooks.observability import logger
from ntp_webhooks.subscriptions import on


@on("quote.received")
def notify_sales(event: QuoteReceived) -> None:
    """Example: tell sales a quote request arrived (replace the log line with your CRM call)."""
    logger.info("quote received: notify sales", extra={"rfq_id": event.data.rfqId, "quote_id": event.data.quoteId})


@on("order.confirmed")
def start_production(event: OrderConfirmed) -> None:
    """Example: release a confirmed order to production (replace with your MIS/ERP call)."""
    logger.info("order confirmed: start production", extra={"order_id": event.data.orderId})


@on("workflow")
def record_signal(event: WorkflowSignal) -> None:
    """Example: react to a workflow signal, whose names NowToPrint does not publish."""
    logger.info("workflow signal", extra={"signal": event.event})
