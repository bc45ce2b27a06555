"""boto3 clients with timeouts that fit inside a webhook request, and a deadline per invocation.

botocore's defaults (60 s connect/read, retried) would outlive the function timeout and turn an
AWS outage into a Lambda timeout (a bare 502/500 from the front door) instead of our JSON 503. Here
one attempt gives up after 1 s to connect + 2 s to read, and a call makes at most 2 attempts.

Timeouts per attempt are not enough: several hung calls in one request still add up (a claim, two
send attempts, two release attempts: about 15 s). So every attempt of every client made here first
checks the invocation's deadline (`with invocation(context)`, which the handlers open) against its
client's `Deadline`: an attempt that could not finish before the function's timeout, less
`reserve_seconds` to answer, is not started. It raises `DeadlineExceeded` (a `BotoCoreError`), which
the callers already turn into 503 + Retry-After or a retried record.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError

CONNECT_TIMEOUT_S = 1
READ_TIMEOUT_S = 2
ATTEMPTS = 2
REQUEST_CONFIG = Config(
    connect_timeout=CONNECT_TIMEOUT_S,
    read_timeout=READ_TIMEOUT_S,
    retries={"total_max_attempts": ATTEMPTS, "mode": "standard"},
    # The requests are this code's own, and AWS validates them as it receives them: botocore checking
    # each one against the service model first was about a third of each call's CPU (make bench).
    parameter_validation=False,
)
#: Longest one attempt can take before botocore gives up on it.
ATTEMPT_SECONDS = CONNECT_TIMEOUT_S + READ_TIMEOUT_S


class RemainingTime(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


class DeadlineExceeded(BotoCoreError):
    fmt = "not started: {operation} could not finish before the function times out ({remaining_s} s left)"


_invocation = threading.local()


@contextlib.contextmanager
def invocation(context: RemainingTime | None) -> Iterator[None]:
    """The current invocation, for the calls made inside (none before or after it). Per thread: Lambda
    runs one invocation at a time per environment; tests and the local stack run several in threads.
    Every `Deadline` judges the calls of the invocation of its thread."""
    saved = getattr(_invocation, "context", None)
    _invocation.context = context
    try:
        yield
    finally:
        _invocation.context = saved


@dataclass(frozen=True)
class Deadline:
    """A time budget for the AWS calls of the current invocation (`invocation`): an attempt is started
    only if it can finish `reserve_seconds` before the function times out. A model with instant faults
    and short timeouts gives the ingest and the consumers (their builders) a smaller one."""

    reserve_seconds: float = 0.5
    #: Longest one attempt may take.
    attempt_seconds: float = ATTEMPT_SECONDS

    def applying(self, context: RemainingTime | None) -> contextlib.AbstractContextManager[None]:
        """`invocation(context)`: the function's handler names its invocation once."""
        return invocation(context)

    def current(self) -> RemainingTime | None:
        """This thread's invocation: a thread that calls AWS for it applies it too (`applying`)."""
        context: RemainingTime | None = getattr(_invocation, "context", None)
        return context

    def remaining_seconds(self) -> float | None:
        context = self.current()
        return None if context is None else context.get_remaining_time_in_millis() / 1000

    def allows(self, seconds: float) -> bool:
        """Whether work of `seconds` can still finish, with the reserve left to answer."""
        remaining = self.remaining_seconds()
        return remaining is None or remaining - self.reserve_seconds >= seconds

    def check_attempt(self, event_name: str = "", **_: Any) -> None:
        """botocore `before-send` hook: runs before each attempt, retries included."""
        if not self.allows(self.attempt_seconds):
            remaining = self.remaining_seconds() or 0.0
            raise DeadlineExceeded(operation=event_name.rsplit(".", 1)[-1], remaining_s=round(remaining, 2))


#: The functions' budget.
deadline = Deadline()


def client(service: str, budget: Deadline = deadline) -> Any:
    """A client whose every attempt first checks `budget` against the current invocation."""
    made = boto3.client(service, config=REQUEST_CONFIG)  # type: ignore[call-overload]
    # First: before any other before-send handler (moto's stub, test faults) acts on the request.
    # botocore runs handlers of the least specific wildcard key (`*.*`) before the others.
    made.meta.events.register_first("before-send.*.*", budget.check_attempt)
    _user_agent_built_once(made)
    return made


def _user_agent_built_once(made: Any) -> None:
    """botocore builds the User-Agent header twice per call (a fifth of the consumer's CPU, make bench),
    and no option turns that off: build it once per client, when it is made. The per-call feature codes
    botocore would add (telemetry for AWS) are left out. A botocore without this attribute keeps its own
    way."""
    creator = getattr(made, "_user_agent_creator", None)
    if creator is not None and callable(getattr(creator, "to_string", None)):
        built = creator.to_string()
        creator.to_string = lambda: built
