"""Where the functions' output goes while they run in this process: one helper for the local stack,
the cost model, the bench and the fault table.

A function prints two things: Powertools log lines (through the logger's stream handlers, which
hold the stream of the moment they were created) and EMF metrics (printed to sys.stdout).
`routed(log)` sends both to `log` during an invocation, for the invoking thread only, so that a CLI
or a test printing meanwhile keeps its own output.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import threading
from collections.abc import Iterator
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


class _ThreadRoutedStdout:
    """sys.stdout while functions run: a thread inside an invocation writes to that invocation's log,
    every other thread where stdout went before (contextlib.redirect_stdout is process-wide: a CLI
    or a test printing meanwhile would land in the function log)."""

    def __init__(self, fallback: TextIO) -> None:
        self.fallback = fallback
        self.targets: dict[int, TextIO] = {}

    def write(self, text: str) -> int:
        return self.targets.get(threading.get_ident(), self.fallback).write(text)

    def flush(self) -> None:
        self.targets.get(threading.get_ident(), self.fallback).flush()


_ROUTING = threading.Lock()


@contextlib.contextmanager
def _stdout_of_this_thread(log: TextIO) -> Iterator[None]:
    with _ROUTING:
        router = sys.stdout if isinstance(sys.stdout, _ThreadRoutedStdout) else _ThreadRoutedStdout(sys.stdout)
        sys.stdout = cast(TextIO, router)
        router.targets[threading.get_ident()] = log
    try:
        yield
    finally:
        with _ROUTING:
            router.targets.pop(threading.get_ident(), None)
            if not router.targets and sys.stdout is cast(TextIO, router):
                sys.stdout = router.fallback


@contextlib.contextmanager
def routed(log: TextIO | None, copy: io.StringIO | None = None) -> Iterator[None]:
    """During one invocation, the function's Powertools log lines (their handlers hold the stream of
    the moment they were created) and EMF metrics (printed) go to `log`, so the console stays
    readable; the log lines are also copied to `copy`, if given. Without a log (tests), output stays
    where it goes, and only the log lines are copied."""
    from ntp_webhooks.observability import logger  # the functions' own copy, once they are imported

    handlers = [h for h in logging.getLogger(logger.name).handlers if isinstance(h, logging.StreamHandler)]

    def into(handler: logging.StreamHandler[TextIO]) -> TextIO:
        target = log if log is not None else handler.stream
        return target if copy is None else cast(TextIO, _Tee(target, copy))

    saved = [(h, h.setStream(into(h))) for h in handlers]
    try:
        if log is None:
            yield
        else:
            with _stdout_of_this_thread(log):
                yield
    finally:
        for handler, stream in saved:
            handler.setStream(stream)


@contextlib.contextmanager
def captured() -> Iterator[io.StringIO]:
    """Everything the functions print inside, kept instead of printed."""
    buffer = io.StringIO()
    with routed(buffer):
        yield buffer
