"""Partner handlers registered for a while (a test, the cost model, the soak), then as they were.

The product's registry (`ntp_webhooks.subscriptions`) has no way to unregister a handler, on purpose:
a deployed consumer registers its handlers once, at import. Tools and tests that add their own
recorders put the registry back as it was with this.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator

from ntp_webhooks.subscriptions import Subscriptions, subscriptions


@contextlib.contextmanager
def temporary(*, without_examples: bool = False, registry: Subscriptions = subscriptions) -> Iterator[Subscriptions]:
    """What is registered inside is gone afterwards. `without_examples`: the handlers registered so far
    (business_logic's examples) are off inside too."""
    saved = copy.deepcopy(vars(registry))
    if without_examples:
        vars(registry).update(copy.deepcopy(vars(Subscriptions())))
    try:
        yield registry
    finally:
        vars(registry).clear()
        vars(registry).update(saved)
