"""Quote, order and workflow consumer functions: SQS batch -> typed events -> archive -> projection -> your logic.

One handler for the three functions; EVENT_FAMILY (from template.yaml) says which queue feeds it.
Powertools BatchProcessor reports failed records only (ReportBatchItemFailures), so one bad record
never makes SQS redeliver the rest of its batch.
"""

from __future__ import annotations

# isort: off
from ntp_webhooks import init_phase  # first: pauses garbage collection while the rest loads
# isort: on

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes import SQSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from ntp_webhooks.aws_clients import deadline
from ntp_webhooks.consumer import Consumer, build_consumer
from ntp_webhooks.observability import inject_context, logger, metrics
from ntp_webhooks.settings import load_consumer_settings
from ntp_webhooks.subscriptions import load_partner_handlers

SETTINGS = load_consumer_settings()
# The partner's handlers (partner/handlers/business_logic.py, in the PartnerLayer), registered with @on(...).
SUBSCRIPTIONS = load_partner_handlers()
# A batch whose records all fail is reported record by record too, not as an invocation error.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@cache
def _consumer() -> Consumer:
    return build_consumer(SETTINGS, SUBSCRIPTIONS)


@metrics.log_metrics
@inject_context()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    logger.append_keys(family=SETTINGS.event_family)
    # AWS calls that could not finish in time are not started; a claim's lease is the time left.
    with deadline.applying(context):
        # The claims and one archive call for the batch, each record's projection and handlers, then
        # one completion write for the batch (ntp_webhooks.consumer).
        batch = _consumer().begin(list(SQSEvent(event).records))
        try:
            batch.started()
            return process_partial_response(
                event=event, record_handler=batch.handle, processor=processor, context=context
            )
        finally:
            batch.finish()


init_phase.finished()
