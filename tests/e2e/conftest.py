"""Local stacks for the e2e tests: one per module (`local`), or one per test (`fresh`)."""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO, cast

import pytest

from devtools.local_stack.functions import TimestampedLog
from devtools.local_stack.stack import DevStack
from tests.e2e.local_stacks import quick_stack


@pytest.fixture(scope="module", autouse=True)
def _module_calls_within_roles(role_calls: Any) -> Any:
    """Every e2e module records the functions' calls from before its stacks start (tests/conftest.py)."""
    return role_calls


@pytest.fixture(autouse=True)
def _calls_within_roles(calls_within_roles: None) -> None:
    """Each e2e test fails if a function made a call its role in template.yaml does not allow."""


@pytest.fixture(scope="module")
def function_log() -> io.StringIO:
    """What `make run` writes to .aws-sam/local-stack-<port>.log."""
    return io.StringIO()


@pytest.fixture(scope="module")
def local(
    tmp_path_factory: pytest.TempPathFactory, function_log: io.StringIO
) -> Iterator[tuple[DevStack, io.StringIO, Path]]:
    threads_before = set(threading.enumerate())
    state_dir = tmp_path_factory.mktemp("local-stacks")
    console = io.StringIO()
    # All of `make run`'s resources, operations ones included: the module's stack is the one `make run` starts.
    stack = quick_stack(console, state_dir, log=cast(TextIO, TimestampedLog(function_log)), operations=True)
    stack.start()
    ports = [int(stack.webhook_url.rsplit(":", 1)[1].split("/")[0]), int(stack.endpoint_url.rsplit(":", 1)[1])]
    try:
        assert stack.state_file is not None and stack.state_file.parent == state_dir
        yield stack, console, state_dir
    finally:
        stack.stop()
    for thread in set(threading.enumerate()) - threads_before:
        # A server's request thread may still be writing its last response after the stop: a
        # loaded machine (CI's) makes that visible; a thread still alive after 5 s is a leak.
        thread.join(timeout=5)
    leaked = [t.name for t in set(threading.enumerate()) - threads_before if t.is_alive()]
    assert leaked == [], leaked
    for port in ports:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open"
    assert list(state_dir.iterdir()) == []


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[DevStack, io.StringIO, Path]]:
    """A stack of its own, for tests that rotate its key: the module's stack keeps its key."""
    console, state_dir = io.StringIO(), tmp_path / "stacks"
    stack = quick_stack(console, state_dir, name="fresh")
    try:
        stack.start()
        yield stack, console, state_dir
    finally:
        stack.stop(wait_for_pollers=False)  # their last long poll ends on its own
