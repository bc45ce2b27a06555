"""`make run`'s local stack as a newcomer meets it: the recipes of the README and docs/reference.md run
as written, each `ntp` command a process of its own (make release-check; `make run` in a process of
its own is test_local_stack_process.py)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from devtools.local_stack.stack import DevStack
from ntp_webhooks.signature import sign
from tests.e2e.local_stacks import doc_block, readme_block, run_as_written


def test_the_readmes_send_recipes_run_as_written(fresh: tuple[DevStack, io.StringIO, Path], tmp_path: Path) -> None:
    stack, _, state_dir = fresh
    result = run_as_written(readme_block("send-recipes"), tmp_path, state_dir)
    assert result.returncode == 0, result.stderr
    statuses = [line.split(" -> ")[1][:3] for line in result.stdout.splitlines() if " -> " in line]
    assert statuses == ["202", "200", "202", "202", "202", "202", "200", "202"], result.stdout
    assert json.loads((tmp_path / "my-event.json").read_text())["event"] == "order.created"
    assert json.loads((tmp_path / "sent.json").read_bytes())["event"] == "quote.received"
    signature, secret = result.stdout.strip().splitlines()[-2:]
    assert signature == f"X-Webhook-Signature: {sign(b'{"id":"evt_1"}', b's')}"
    assert secret == stack.current_secret()


def test_the_readmes_curl_and_openssl_recipe_works_on_a_pretty_printed_file(
    fresh: tuple[DevStack, io.StringIO, Path], tmp_path: Path
) -> None:
    """The recipe as written in docs/reference.md (only the port is this stack's), run by bash."""
    stack, _, state_dir = fresh
    recipe = doc_block("curl-recipe")
    assert "URL=http://127.0.0.1:3000/webhooks" in recipe  # `make run`'s default port
    result = run_as_written(recipe.replace("http://127.0.0.1:3000/webhooks", stack.webhook_url), tmp_path, state_dir)
    assert result.returncode == 0, result.stderr
    assert "\n  " in (tmp_path / "body.json").read_text()  # pretty-printed: curl -d would have broken it
    assert '"status":"accepted"' in result.stdout, result.stdout


def test_the_local_operations_recipe_runs_as_written(fresh: tuple[DevStack, io.StringIO, Path], tmp_path: Path) -> None:
    """docs/reference.md's `ntp status`, `ntp redrive` and `ntp rotate` against the local stack, as written."""
    stack, _, state_dir = fresh
    before = stack.current_secret()
    result = run_as_written(doc_block("local-operations"), tmp_path, state_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert stack.current_secret() != before  # the rotation ran its four steps
