"""Helpers of the local-stack tests: requests over HTTP, the `ntp` CLI in process, README blocks run as written."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import pytest

from devtools.local_stack.stack import DevStack
from devtools.sam_template import REPO_ROOT
from ntp import cli
from ntp.deliveries import LOCAL_DEV_SECRET
from ntp_webhooks.signature import sign


def quick_stack(console: TextIO, state_dir: Path, name: str = "", **options: Any) -> DevStack:
    """A local stack as the tests run it: free ports, failed records retried at once, 1 s long polls,
    and (moto's backends being per process) resource names of its own unless `name` is empty.
    Without the operations resources (alarms, dashboard, log groups: ~26 of its ~48 provisioning calls)
    unless `operations=True`: no function calls them and no test of these stacks reads them; the module
    stack (`local`) and `make run` in its own process (tests/release/test_local_stack_process.py) provision them all."""
    prefix = f"{name}{uuid.uuid4().hex[:8]}" if name else "local"
    options.setdefault("operations", False)
    return DevStack(
        port=0,
        moto_port=0,
        retry_delay=0,
        wait_seconds=1,
        console=console,
        state_dir=state_dir,
        name_prefix=prefix,
        **options,
    )


def post(url: str, body: bytes, secret: str = LOCAL_DEV_SECRET) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "X-Webhook-Signature": sign(body, secret.encode())},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def eventually(check: Callable[[], bool], timeout: float = 45.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"not reached within {timeout} s")


def depth(stack: DevStack, queue: str) -> int:
    attributes = stack.client("sqs").get_queue_attributes(QueueUrl=stack.stack.refs[queue], AttributeNames=["All"])  # type: ignore[union-attr]
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"]) + int(
        attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"]
    )


def ntp(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    monkeypatch.setenv("NTP_LOCAL_STATE_DIR", str(state_dir))
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    # The stack's functions run in this process too: keep only what the CLI printed.
    out = "".join(
        line for line in captured.out.splitlines(keepends=True) if not line.startswith(('{"level"', '{"_aws"'))
    )
    return code, out, captured.err


README = Path(__file__).resolve().parents[2] / "README.md"
#: The pages whose bash blocks are run by tests or marked as needing AWS (tests/unit/test_doc_blocks.py).
PAGES = (README, *sorted((README.parent / "docs").glob("*.md")))


def block_after(text: str, marker: str) -> str:
    """The bash block right after `<!-- marker -->` in `text`."""
    return text.split(f"<!-- {marker} -->", 2)[1].split("```bash", 1)[1].split("```", 1)[0]


def readme_block(marker: str) -> str:
    return block_after(README.read_text(), marker)


def doc_block(marker: str) -> str:
    """The bash block after `<!-- marker -->` in the README or a page of docs/: a marker names one block."""
    found = [page for page in PAGES if f"<!-- {marker} -->" in page.read_text()]
    assert len(found) == 1, f"<!-- {marker} --> is on {len(found)} pages: {found}"
    return block_after(found[0].read_text(), marker)


def run_as_written(script: str, cwd: Path, state_dir: Path) -> subprocess.CompletedProcess[str]:
    """A README block run by bash in a fresh directory whose `.venv` is the project's, as a newcomer
    at the repository's root runs it (the files it creates land in `cwd`)."""
    (cwd / ".venv").symlink_to(REPO_ROOT / ".venv")
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env={**os.environ, "NTP_LOCAL_STATE_DIR": str(state_dir)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
