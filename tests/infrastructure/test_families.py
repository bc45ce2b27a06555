"""A new event family is one entry in template.yaml's family list, then `make template` and `make
events` (README, "A new event family"): everything else follows, and the recipe followed as written in
a scratch copy leaves every family-dependent check green."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devtools.sam_template import REPO_ROOT, TEMPLATE_PATH, SamTemplate
from tests.conftest import TEMPLATE
from tests.e2e.local_stacks import readme_block
from tools import template_families

pytestmark = pytest.mark.families
#: How a test module uses the mark (`pytest.mark.families`, or `mark.families` after `from pytest import mark`).
MARK = re.compile(r"\bmark\.families\b")

#: A family of the tests' own: never the README's example, never one the list already has.
NEW = next(name for name in ("Proof", "Reprint", "Artwork") if name.lower() not in TEMPLATE.families)
FIRST = template_families.families_of(TEMPLATE_PATH.read_text())[0]


def with_family(directory: Path, family: str = NEW) -> Path:
    """template.yaml with `family` added to the family loop's list and `make template` run, beside the code."""
    text = TEMPLATE_PATH.read_text()
    added = with_families(text, [*template_families.families_of(text), family])
    for code in ("functions", "layers"):
        (directory / code).symlink_to(REPO_ROOT / code)
    path = directory / "template.yaml"
    path.write_text(template_families.render(added))
    return path


def with_families(text: str, families: list[str]) -> str:
    """The edit the README asks for: the one list (the first loop's) written anew; nothing else."""
    listed = f"    - [{', '.join(template_families.families_of(text))}]\n"
    edited = text.replace(listed, f"    - [{', '.join(families)}]\n", 1)
    assert edited != text
    return edited


@pytest.fixture(scope="module")
def extended(tmp_path_factory: pytest.TempPathFactory) -> SamTemplate:
    return SamTemplate(with_family(tmp_path_factory.mktemp("families")))


def dashboard_lines(template: SamTemplate) -> list[list[Any]]:
    body = template.resources["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(re.sub(r"\$\{([^}]+)\}", r"\1", body))["widgets"]
    return [metric for widget in widgets for metric in widget["properties"]["metrics"]]


def test_the_new_family_gets_what_the_first_family_has(template: SamTemplate, extended: SamTemplate) -> None:
    """Every resource and output named for the first family has its twin, wired to the new family's."""
    per_family = {lid.replace(FIRST, "{f}", 1) for lid in template.resources if lid.startswith(FIRST)}
    assert set(extended.resources) - set(template.resources) == {name.format(f=NEW) for name in per_family}
    outputs = {key.replace(FIRST, "{f}", 1) for key in template.doc["Outputs"] if key.startswith(FIRST)}
    assert set(extended.doc["Outputs"]) - set(template.doc["Outputs"]) == {key.format(f=NEW) for key in outputs}
    ingest = extended.function("IngestFunction").environment
    assert ingest[f"QUEUE_URL_{NEW}"] == {"Ref": f"{NEW}EventsQueue"}
    assert ingest["EVENT_FAMILIES"] == ",".join([*template_families.families_of(TEMPLATE_PATH.read_text()), NEW])
    (statement,) = extended.resources[f"{NEW}EnqueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Resource"] == {"Fn::GetAtt": [f"{NEW}EventsQueue", "Arn"]}
    assert extended.function(f"{NEW}ConsumerFunction").environment["EVENT_FAMILY"] == NEW


def test_the_dashboard_shows_the_new_family_as_it_shows_the_first(template: SamTemplate, extended: SamTemplate) -> None:
    """Every dashboard line of the first family has its twin for the new one, and the body stays JSON."""
    first = [
        json.dumps(line)
        for line in dashboard_lines(template)
        if f"{FIRST}Events" in json.dumps(line) or f"{FIRST}Consumer" in json.dumps(line)
    ]
    new = {json.dumps(line) for line in dashboard_lines(extended)} - {
        json.dumps(line) for line in dashboard_lines(template)
    }
    assert first and new == {line.replace(FIRST, NEW).replace(FIRST.lower(), NEW.lower()) for line in first}


def test_removing_a_family_removes_its_lines() -> None:
    text = TEMPLATE_PATH.read_text()
    first, *rest = template_families.families_of(text)
    rendered = template_families.render(with_families(text, [first, rest[-1]]))
    for gone in rest[:-1]:
        assert not re.search(
            rf"\b{gone}(EventsQueue|ConsumerFunction|EventsDeadLetterQueue)\b|QUEUE_URL_{gone}\b|FAMILIES: .*{gone}",
            rendered,
        )
    assert template_families.render(rendered) == rendered


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


def test_a_family_listed_twice_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = TEMPLATE_PATH.read_text()
    path = tmp_path / "template.yaml"
    path.write_text(with_families(text, [*template_families.families_of(text), FIRST]))
    assert template_families.main([str(path)]) == 1
    assert capsys.readouterr().err == f"template.yaml: Fn::ForEach::Families lists {FIRST} more than once\n"
