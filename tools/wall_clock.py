"""Waits that move the wall clock forward instead of sleeping, for the tools' simulated senders: leases
and SQS visibility (moto) read the wall clock, so they run out at once. Monotonic clocks (a Lambda
context's remaining time, the keyring's refresh clock) are not moved.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def waits_move_the_clock() -> Iterator[Callable[[float], None]]:
    """`wait(seconds)` for the duration: the wall clock runs on from now, and jumps by each wait."""
    import time_machine  # a dev dependency: the tools run from .venv

    with time_machine.travel(time.time(), tick=True) as traveller:
        yield traveller.shift
