"""Cold start: no garbage collection while a handler's module graph loads.

Everything allocated during init lives as long as the execution environment, so a collection during
the imports only rescans it. Measured at about 10% of the ingest function's cold import
(docs/performance.md). Import this first; call `finished()` once the handler module is loaded.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable

gc.disable()

# Loaded before Powertools and pydantic-core: the same module graph then imports ~10% faster
# (urllib3's module set-up is several times slower when it comes later; see docs/performance.md).
import boto3  # noqa: E402, F401


def finished() -> None:
    """Move init's objects to the permanent generation (later collections skip them) and resume GC."""
    gc.freeze()
    gc.enable()


def on_lambda() -> bool:
    """Whether this is a Lambda execution environment's init (Lambda sets this variable)."""
    return bool(os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"))


def prepare(step: Callable[[], None]) -> None:
    """Run `step` (clients, the first key load) during init, where the first request does not wait
    for it. Whatever fails here is done again by the first request, which reports it."""
    if not on_lambda():
        return
    try:
        step()
    except Exception as exc:  # the first request repeats the step and reports what fails
        from ntp_webhooks.observability import logger  # imported by the handler already

        logger.warning("init step failed; the first request does it again", extra={"error_type": type(exc).__name__})
