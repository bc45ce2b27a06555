"""Every command block of the README and docs/ either runs in a test or says what it needs.

The pages are outputs: no test reads their sentences or layout. What is checked is that a reader can
run what they show: a ```bash block is preceded by `<!-- name -->`, which either names a block that a
test runs (tests/ read it with the helpers `doc_block` or `readme_block`) or says why none can
(`<!-- needs: aws -->`, `docker`, `network`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from devtools.sam_template import REPO_ROOT
from tests.e2e.local_stacks import PAGES, README

#: What a block may need instead of a test that runs it.
NEEDS = frozenset({"needs: aws", "needs: docker", "needs: network"})
#: Fence languages that hold commands: only `bash` is allowed, so that the helpers find every such block.
SHELLS = frozenset({"bash", "sh", "shell", "console", "zsh", "shell-session"})
#: Pages that tools write (`make cost`, `make bench`, `make reliability`): their unnamed blocks are the tools' output.
GENERATED = frozenset({"cost.md", "performance.md", "reliability.md"})
FENCE = re.compile(r"^\s*```(.*)$")
MARKER = re.compile(r"^<!-- (.+?) -->$")
#: How a test reads a block: the helpers of tests/e2e/local_stacks.py.
USED = re.compile(r"\b(readme_block|doc_block)\(\s*\"([^\"]+)\"")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    language: str
    marker: str | None

    def __str__(self) -> str:
        return f"{self.page.relative_to(REPO_ROOT)}:{self.line} (```{self.language})"


def blocks(page: Path) -> list[Block]:
    lines = page.read_text().splitlines()
    found, inside = [], False
    for number, line in enumerate(lines):
        fence = FENCE.match(line)
        if fence is None:
            continue
        if inside:
            inside = False
            continue
        inside = True
        before = next((previous.strip() for previous in reversed(lines[:number]) if previous.strip()), "")
        marker = MARKER.match(before)
        found.append(Block(page, number + 1, fence[1].strip(), marker[1] if marker else None))
    assert not inside, f"{page}: a code block is not closed"
    return found


ALL = [block for page in PAGES for block in blocks(page)]
COMMANDS = [block for block in ALL if block.language in SHELLS]


def used_markers() -> dict[str, set[str]]:
    """Each marker the tests read, with the helpers that read it."""
    used: dict[str, set[str]] = {}
    for source in (REPO_ROOT / "tests").rglob("*.py"):
        for helper, marker in USED.findall(source.read_text()):
            used.setdefault(marker, set()).add(helper)
    return used


def test_the_pages_have_command_blocks_to_check() -> None:
    assert README in PAGES and len(PAGES) > 5
    assert len(COMMANDS) > 10


def test_every_code_block_names_its_language() -> None:
    """A block without a language could hide commands from the check below: output is ```text."""
    unnamed = [str(block) for block in ALL if not block.language and block.page.name not in GENERATED]
    assert unnamed == []


def test_every_command_block_is_bash_and_marked() -> None:
    unmarked = [str(block) for block in COMMANDS if block.language != "bash" or block.marker is None]
    assert unmarked == [], "write ```bash, preceded by <!-- name --> (a test runs it) or <!-- needs: aws -->"


def test_every_runnable_block_is_run_by_a_test() -> None:
    used = used_markers()
    runnable = [block for block in COMMANDS if block.marker and block.marker not in NEEDS]
    not_run = [f"{block}: <!-- {block.marker} -->" for block in runnable if block.marker not in used]
    assert not_run == [], f"run them in a test (doc_block), or mark them with one of {sorted(NEEDS)}"
    assert not [m for m in (b.marker for b in COMMANDS) if m and m.startswith("needs") and m not in NEEDS]


def test_each_marker_names_one_block_and_every_marker_a_test_reads_is_there() -> None:
    markers = [block.marker for block in COMMANDS if block.marker and block.marker not in NEEDS]
    assert len(markers) == len(set(markers)), "a marker names one block in all the pages"
    in_readme = {block.marker for block in COMMANDS if block.page == README}
    for marker, helpers in used_markers().items():
        assert marker in markers, f"a test reads <!-- {marker} -->, which no page has"
        if "readme_block" in helpers:
            assert marker in in_readme, f"readme_block({marker!r}) reads README.md only: use doc_block"
