"""The README says what is there: its Layout names every module and page, and its claims about
routing and the front door match the code and the template."""

from __future__ import annotations

import re
from pathlib import Path

from devtools.sam_template import REPO_ROOT, SamTemplate

README = (REPO_ROOT / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def module_names(directory: Path) -> set[str]:
    return {p.stem for p in directory.glob("*.py") if p.stem not in ("__init__", "__main__")}


def named(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_\-.]*", text))


def test_the_layout_names_every_shared_module_tool_and_docs_page() -> None:
    layout = named(section("Layout"))
    shared = module_names(REPO_ROOT / "layers" / "shared" / "ntp_webhooks")
    devtools = (
        module_names(REPO_ROOT / "devtools")
        | module_names(REPO_ROOT / "devtools" / "local_stack")
        | module_names(REPO_ROOT / "tools")
    )
    pages = {p.name for p in (REPO_ROOT / "docs").glob("*.md")}
    assert shared - layout == set(), "add them to the README's Layout"
    assert devtools - layout == set(), "add them to the README's Layout"
    assert pages - layout == set(), "add them to the README's Layout"


def test_extend_lists_every_shared_module() -> None:
    extend = named(section("Extend"))
    missing = module_names(REPO_ROOT / "layers" / "shared" / "ntp_webhooks") - extend
    assert missing == set(), "add them to the README's Extend, Shared code"


def test_what_the_readme_says_of_unknown_event_names_is_what_routing_does() -> None:
    from ntp_webhooks.routing import family_of

    assert "only an unknown family (`invoice.paid`) goes to `workflow`" in README
    assert family_of("order.refunded") == "order"  # a new name of a known family: its own queue
    assert family_of("invoice.paid") == "workflow"


def test_the_front_door_the_readme_names_default_is_the_templates() -> None:
    default = SamTemplate().doc["Parameters"]["FrontDoor"]["Default"]
    assert default == "HttpApi"
    assert "API[API Gateway HTTP API]" in README  # the diagram
    assert f"| `FrontDoor` | `{default}` |" in README  # the parameter table
    assert f"| `{default}` (default) |" in README  # Choose the front door
