"""A new event family is one entry in template.yaml's family list, then `make template` and `make
events` (README, "A new event family"): everything else follows, and the recipe followed as written in
a scratch copy leaves every family-dependent check green."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from devtools.sam_template import REPO_ROOT, TEMPLATE_PATH, SamTemplate
from tests.conftest import TEMPLATE
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


def test_a_family_listed_twice_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = TEMPLATE_PATH.read_text()
    path = tmp_path / "template.yaml"
    path.write_text(with_families(text, [*template_families.families_of(text), FIRST]))
    assert template_families.main([str(path)]) == 1
    assert capsys.readouterr().err == f"template.yaml: Fn::ForEach::Families lists {FIRST} more than once\n"
