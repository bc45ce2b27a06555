"""The command blocks of the README and docs/ that need neither the local stack nor AWS, run as written
(tests/unit/test_doc_blocks.py checks that every block is run somewhere or says what it needs)."""

from __future__ import annotations

import shlex
import subprocess

from devtools.sam_template import REPO_ROOT
from tests.e2e.local_stacks import doc_block


def commands(block: str) -> list[str]:
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.split("#", 1)[0].strip()]


def test_the_quick_start_commands_are_make_targets_that_resolve() -> None:
    """`make run`, `make test` and `make test-partner` as the README writes them, dry-run (`make -n`):
    each target exists and its recipe expands. What they run is run for real elsewhere: the local
    stack by tests/e2e, `make test` by CI, `make test-partner` by its own test."""
    quick_start = commands(doc_block("quick-start"))
    assert quick_start and all(line.startswith("make ") for line in quick_start), quick_start
    for line in quick_start:
        done = subprocess.run(
            ["make", "-n", *shlex.split(line)[1:]], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"{line}: {done.stderr}"
        assert done.stdout.strip(), f"{line}: no recipe"
