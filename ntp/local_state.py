"""Where running local stacks (`make run`) tell the `ntp` CLI how to reach them: one JSON file per stack,
named by its HTTP port, under .aws-sam/local-stacks/ (or $NTP_LOCAL_STATE_DIR).

A stack writes its file when it is up and deletes it when it stops. A file left by a crash is stale:
its process is gone or its port is closed, and readers delete it.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

#: Relative: the checkout `make run` and ntp run in (its root).
DEFAULT_DIR = Path(".aws-sam") / "local-stacks"


class NoLocalStack(Exception):
    """A one-line reason why no single running local stack could be chosen."""


def state_dir() -> Path:
    return Path(os.environ.get("NTP_LOCAL_STATE_DIR", DEFAULT_DIR))


def path_for(port: int, directory: Path | None = None) -> Path:
    return (directory or state_dir()) / f"{port}.json"


def write(port: int, state: dict[str, Any], directory: Path | None = None) -> Path:
    path = path_for(port, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**state, "pid": os.getpid(), "port": port}, indent=2))
    return path


def _alive(state: dict[str, Any]) -> bool:
    try:
        os.kill(int(state["pid"]), 0)
    except (ProcessLookupError, KeyError, ValueError):
        return False
    except PermissionError:
        pass  # another user's process: it exists
    url = urlsplit(state.get("webhook_url", ""))
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((url.hostname or "127.0.0.1", url.port or 80)) == 0


def running(directory: Path | None = None) -> list[dict[str, Any]]:
    """The states of the stacks that are up; stale files are deleted on the way."""
    found = []
    for path in sorted((directory or state_dir()).glob("*.json")):
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if _alive(state):
            found.append(state)
        else:
            path.unlink(missing_ok=True)
    return found


def pick(port: int | None = None, directory: Path | None = None) -> dict[str, Any]:
    stacks = running(directory)
    if port is not None:
        for state in stacks:
            if state["port"] == port:
                return state
        ports = ", ".join(str(s["port"]) for s in stacks) or "none"
        raise NoLocalStack(f"no local stack on port {port} (running: {ports})")
    if not stacks:
        raise NoLocalStack("no local stack is running: start it with `make run`")
    if len(stacks) > 1:
        ports = ", ".join(str(s["port"]) for s in stacks)
        raise NoLocalStack(f"several local stacks are running (ports {ports}): pass --port")
    return stacks[0]
