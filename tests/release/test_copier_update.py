"""A partner's repository takes our next release with `copier update` (README, "Upgrade";
docs/upgrade.md), their code and edits kept: copier copy at one release, their changes, then the update."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from devtools.sam_template import REPO_ROOT


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@t"
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return done.stdout


def release(ours: Path, tag: str) -> None:
    """Tag `ours` and pack its objects. copier reads the template from a clone of it and renders every
    path of that clone through Jinja, .git/objects included (excluded only once rendered): packed, the
    clone holds a few files there instead of one per object, and copier takes half the CPU time."""
    git(ours, "tag", tag)
    git(ours, "gc", "--quiet")


def copier(cwd: Path, *args: str) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("copier")), *args, "--trust", "--defaults", "--quiet"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


#: What copier reads as a template rather than copies: a `.jinja` file, or Jinja in a path.
RENDERED = re.compile(r"\{\{|\{%|\{#|\.jinja$")


def released(relative: str) -> bool:
    """The files of ours the release in the test is made of: every top-level file (copier.yml, the
    answers file's template, the Makefile and template.yaml this test edits, samconfig.toml, which an
    update skips) and partner/ (which an update never touches). copier renders every path of a release
    three times per `copier update` (at both releases and for the diff), a second per hundred files:
    the rest of the checkout, checked below to be files copier copies as they are, proves nothing more."""
    return "/" not in relative or relative.startswith("partner/")


def test_copier_update_takes_our_release_and_keeps_the_partners_code_and_edits(tmp_path: Path) -> None:
    """docs/upgrade.md as a partner runs it: a repository made with `copier copy` at one release,
    the partner's handler and family added, then `copier update` to the next release."""
    ours, theirs = tmp_path / "receiver", tmp_path / "my-receiver"
    listed = git(REPO_ROOT, "ls-files", "--cached", "--others", "--exclude-standard").splitlines()
    rendered = [relative for relative in listed if RENDERED.search(relative)]  # the answers file's template
    assert rendered and all(released(relative) for relative in rendered), rendered
    for relative in filter(released, listed):
        if (REPO_ROOT / relative).is_file():
            (ours / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / relative, ours / relative)
    git(ours, "init", "-q", "-b", "main")
    git(ours, "add", "-A")
    git(ours, "commit", "-q", "-m", "release")
    release(ours, "v1.0.0")

    copier(tmp_path, "copy", "--vcs-ref", "v1.0.0", str(ours), str(theirs))
    handlers = theirs / "partner" / "handlers" / "business_logic.py"
    handlers.write_text(handlers.read_text() + "\n# the partner's own handler\n")
    example_test = theirs / "partner" / "tests" / "test_business_logic.py"
    example_test.unlink()  # the partner dropped our example test
    template = theirs / "template.yaml"
    template.write_text(
        template.read_text().replace("    - [Quote, Order, Workflow]\n", "    - [Quote, Order, Workflow, Invoice]\n", 1)
    )
    git(theirs, "init", "-q", "-b", "main")
    git(theirs, "add", "-A")
    git(theirs, "commit", "-q", "-m", "ours")

    # Our next release changes the Makefile and the example handlers we ship.
    (ours / "Makefile").write_text((ours / "Makefile").read_text() + "\n# next release\n")
    example = ours / "partner" / "handlers" / "business_logic.py"
    example.write_text(example.read_text() + "\n# a new example of ours\n")
    git(ours, "commit", "-q", "-am", "next release")
    release(ours, "v1.1.0")

    copier(theirs, "update", "--vcs-ref", "v1.1.0")
    assert (theirs / "Makefile").read_text().endswith("# next release\n")  # our change arrived
    assert handlers.read_text().endswith("# the partner's own handler\n")  # their code is theirs
    assert "# a new example of ours" not in handlers.read_text()
    assert not example_test.exists()  # what they deleted stays deleted
    assert "    - [Quote, Order, Workflow, Invoice]\n" in template.read_text()  # their edit was kept
    assert "_commit: v1.1.0" in (theirs / ".copier-answers.yml").read_text()
    assert not (theirs / "copier.yml").exists()
