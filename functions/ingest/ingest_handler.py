"""IngestFunction: API Gateway HTTP API (payload v2) -> verified, deduplicated event on its family queue.

Thin on purpose: observability wiring here, the pipeline in `ntp_webhooks.ingest` (SharedLayer).
No Powertools event-handler resolver: API Gateway routes only POST /webhooks here, and the resolver
package would add tens of milliseconds to every cold start for a single route.
"""

from __future__ import annotations

# isort: off
from ntp_webhooks import init_phase  # first: pauses garbage collection while the rest loads
# isort: on

from functools import cache
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from ntp_webhooks.ingest import Ingest, build_ingest
from ntp_webhooks.observability import inject_context, metrics
from ntp_webhooks.settings import load_ingest_settings

# Read at init so a misconfigured deployment fails its cold start loudly, not a request later.
SETTINGS = load_ingest_settings()


@cache
def _ingest() -> Ingest:
    # Once per execution environment: clients, key cache and dedup config.
    return build_ingest(SETTINGS)


# On Lambda, built in init with the current signing key loaded, so the first request waits for neither.
init_phase.prepare(lambda: _ingest().prepare())


@metrics.log_metrics
@inject_context(correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _ingest()(event, context)


init_phase.finished()
