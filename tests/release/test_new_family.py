"""A new event family, end to end: its events reach its own queue and consumer in a fresh interpreter,
and the README's recipe followed as written in a scratch copy of the checkout leaves every
family-dependent check green (tests/infrastructure/test_families.py checks the template's lines)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.sam_template import REPO_ROOT
from tests.conftest import TEMPLATE
from tests.e2e.local_stacks import readme_block
from tests.infrastructure.test_families import MARK, NEW, with_families, with_family
from tools import template_families

pytestmark = pytest.mark.families


#: Runs in a fresh interpreter, with the extended template's environment, as its functions would.
RUN = """
import json, sys
import boto3
from moto import mock_aws
from devtools.lambda_events import signed_event
from ntp.deliveries import envelope
from devtools.pipeline import FAKE_AWS, Pipeline, environment, global_environment
from devtools.sam_template import SamTemplate

new = sys.argv[2].lower()
template = SamTemplate(__import__("pathlib").Path(sys.argv[1]))
with environment(FAKE_AWS), environment(global_environment(template)), mock_aws():
    pipeline = Pipeline(template)
    sent = {name: envelope(name, data={"ref": "x-1"}) for name in (f"{new}.issued", "order.created")}
    statuses = {name: pipeline.deliver(signed_event(payload))["statusCode"] for name, payload in sent.items()}
    title = new.capitalize()
    queues = (f"{title}EventsQueue", "OrderEventsQueue", "WorkflowEventsQueue")
    depths = {queue: pipeline.depth(queue) for queue in queues}
    drained = {family: pipeline.poller(family).drain() for family in (new, "order")}
    left = {queue: pipeline.depth(queue) for queue in (f"{title}EventsQueue", f"{title}EventsDeadLetterQueue")}
    items = boto3.client("dynamodb").scan(TableName=pipeline.stack.refs["StateTable"])["Items"]
    stored = sum(sent[f"{new}.issued"]["id"] in json.dumps(item) for item in items)
print(json.dumps({"statuses": statuses, "depths": depths, "drained": drained, "left": left, "stored": stored}))
"""


def test_a_new_familys_events_reach_its_own_queue_and_consumer(tmp_path: Path) -> None:
    path = with_family(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", RUN, str(path), NEW], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    new = NEW.lower()
    assert outcome["statuses"] == {f"{new}.issued": 202, "order.created": 202}
    assert outcome["depths"] == {f"{NEW}EventsQueue": 1, "OrderEventsQueue": 1, "WorkflowEventsQueue": 0}
    assert outcome["drained"] == {new: 1, "order": 1}
    assert outcome["left"] == {f"{NEW}EventsQueue": 0, f"{NEW}EventsDeadLetterQueue": 0}
    assert outcome["stored"] >= 1  # the projection holds the new family's event


SCRATCH = "NTP_FAMILIES_SCRATCH"


@pytest.mark.skipif(bool(os.environ.get(SCRATCH)), reason="runs inside the scratch copy it made")
def test_the_readmes_recipe_in_a_scratch_copy_leaves_the_family_checks_green(tmp_path: Path) -> None:
    """The README's block, as written, in a copy of the checkout: the list edit its comment names,
    then its commands; then every test marked `families` (template, events, routing) in the copy."""
    recipe = readme_block("new-family")
    found = re.search(r"add (\w+) to the list of Fn::ForEach::Families in template.yaml", recipe)
    assert found, recipe
    family = found[1]
    if family.lower() in TEMPLATE.families:  # the partner followed it already: the recipe for another name
        other = next(n for n in ("Invoice", "Estimate", "Shipment", "Artwork") if n.lower() not in TEMPLATE.families)
        recipe = recipe.replace(family, other).replace(family.lower(), other.lower())
        family = other
    copy = tmp_path / "repo"
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    for relative in tracked.stdout.splitlines():
        if (REPO_ROOT / relative).exists():
            (copy / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / relative, copy / relative)
    (copy / ".venv").symlink_to(REPO_ROOT / ".venv")
    (copy / ".venv" / ".installed").touch()  # newer than the copied pyproject.toml: make keeps the venv
    template = copy / "template.yaml"
    text = template.read_text()
    template.write_text(with_families(text, [*template_families.families_of(text), family]))

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NTP_PARTNER"))}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", recipe], cwd=copy, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (copy / "events" / "consumers" / f"{family.lower()}-batch.json").exists()

    # Only the modules that use the mark are collected: collecting the whole suite to deselect all but
    # its family tests is importing (and rewriting the asserts of) every other test module, 2-3 s.
    marked = sorted(
        str(path.relative_to(copy))
        for pattern in ("test_*.py", "*_test.py")
        for path in (copy / "tests").rglob(pattern)
        if MARK.search(path.read_text())
    )
    assert str(Path(__file__).resolve().relative_to(REPO_ROOT.resolve())) in marked, marked
    checks = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "families",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            "-n",
            "0",
            "-q",
            *marked,
        ],
        cwd=copy,
        env={**env, SCRATCH: "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert checks.returncode == 0, checks.stdout[-4000:]
    assert " passed" in checks.stdout.splitlines()[-1] and "skipped" in checks.stdout.splitlines()[-1]
