"""Where the functions' output goes while they run in this process (local stack, bench, fault table):
`routed(log)` sends their Powertools log lines and EMF metrics to `log` during an invocation, for the
invoking thread only, so that a CLI or a test printing meanwhile keeps its own output.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TextIO, cast


class _Tee:
    """Writes through to the log and keeps a copy of one invocation's log lines."""

    def __init__(self, log: TextIO, copy: io.StringIO) -> None:
        self._log = log
        self.copy = copy

    def write(self, text: str) -> int:
        self.copy.write(text)
        return self._log.write(text)

    def flush(self) -> None:
        self._log.flush()


class _ThreadRouted:
    """A stream shared by every thread (sys.stdout, a logging handler's stream) while functions run: a
    thread inside an invocation writes to its target, every other thread where the stream went before
    (contextlib.redirect_stdout and handler.setStream are process-wide)."""

    def __init__(self, fallback: TextIO) -> None:
        self.fallback = fallback
        self.targets: dict[int, TextIO] = {}

    def current(self) -> TextIO:
        return self.targets.get(threading.get_ident(), self.fallback)

    def write(self, text: str) -> int:
        return self.current().write(text)

    def flush(self) -> None:
        self.current().flush()


_ROUTING = threading.Lock()


@contextlib.contextmanager
def _this_thread(get: Callable[[], TextIO], put: Callable[[TextIO], object], target: TextIO) -> Iterator[None]:
    """`target` for what this thread writes to the stream that `get` returns (and `put` replaces)."""
    with _ROUTING:
        stream = get()
        router = stream if isinstance(stream, _ThreadRouted) else _ThreadRouted(stream)
        put(cast(TextIO, router))
        router.targets[threading.get_ident()] = target
    try:
        yield
    finally:
        with _ROUTING:
            router.targets.pop(threading.get_ident(), None)
            if not router.targets and get() is cast(TextIO, router):
                put(router.fallback)


def _where(stream: TextIO) -> TextIO:
    """Where this thread's writes to `stream` go now."""
    return stream.current() if isinstance(stream, _ThreadRouted) else stream


@contextlib.contextmanager
def routed(log: TextIO | None, copy: io.StringIO | None = None) -> Iterator[None]:
    """During one invocation, for the invoking thread only, the function's Powertools log lines (their
    handlers hold the stream of the moment they were created) and EMF metrics (printed) go to `log`, the
    log lines also to `copy`, if given. Without a log (tests), output stays where it goes."""
    from ntp_webhooks.observability import logger  # the functions' own copy, once they are imported

    handlers = [h for h in logging.getLogger(logger.name).handlers if isinstance(h, logging.StreamHandler)]
    with contextlib.ExitStack() as routes:
        for handler in handlers if log is not None or copy is not None else []:
            target = log if log is not None else _where(handler.stream)
            routes.enter_context(
                _this_thread(
                    functools.partial(getattr, handler, "stream"),
                    handler.setStream,
                    target if copy is None else cast(TextIO, _Tee(target, copy)),
                )
            )
        if log is not None:
            routes.enter_context(_this_thread(functools.partial(getattr, sys, "stdout"), _set_stdout, log))
        yield


def _set_stdout(stream: TextIO) -> None:
    sys.stdout = stream


@contextlib.contextmanager
def captured() -> Iterator[io.StringIO]:
    """Everything the functions print inside, kept instead of printed."""
    buffer = io.StringIO()
    with routed(buffer):
        yield buffer
