"""Partner handlers registered for a while (a test, the cost model, the soak), then as they were.

The product's registry (`ntp_webhooks.subscriptions`) has no way to unregister a handler, on purpose:
a deployed consumer registers its handlers once, at import. Tools and tests that add their own
recorders put the registry back as it was with this.
"""

from __future__ import annotations

import contextlib
import copy
import sys
from collections.abc import Iterator

from ntp_webhooks.subscriptions import Subscriptions, subscriptions


@contextlib.contextmanager
def temporary(*, without_examples: bool = False, registry: Subscriptions = subscriptions) -> Iterator[Subscriptions]:
    """What is registered inside is gone afterwards. `without_examples`: the handlers registered so far
    (business_logic's examples) are off inside too."""
    saved = copy.deepcopy(vars(registry))
    imported = set(sys.modules)
    if without_examples:
        vars(registry).update(copy.deepcopy(vars(Subscriptions())))
    try:
        yield registry
    finally:
        registering = {h.function.__module__ for handlers in registry._handlers.values() for h in handlers}
        vars(registry).clear()
        vars(registry).update(saved)
        # A module first imported inside (a consumer's `import business_logic`) registered its handlers in
        # what was just put back: forget it, so that the next import registers them for good.
        for name in registering - imported:
            sys.modules.pop(name, None)
