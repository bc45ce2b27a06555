"""Cold start: no garbage collection while a handler's module graph loads.

Everything allocated during init lives as long as the execution environment, so a collection during
the imports only rescans it. Measured at about 10% of the ingest function's cold import
(docs/performance.md). Import this first; call `finished()` once the handler module is loaded.
"""

from __future__ import annotations

import gc

gc.disable()

# Loaded before Powertools and pydantic-core: the same module graph then imports ~10% faster
# (urllib3's module set-up is several times slower when it comes later; see docs/performance.md).
import boto3  # noqa: E402, F401


def finished() -> None:
    """Move init's objects to the permanent generation (later collections skip them) and resume GC."""
    gc.freeze()
    gc.enable()
