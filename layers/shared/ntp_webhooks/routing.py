"""Which family queue an event goes to. Unknown families are routed, never dropped.

The families are template.yaml's one list, the `Fn::ForEach::Families` loop's. `make template` writes
it into every function's EVENT_FAMILIES variable (`Quote,Order,Workflow`), where `families()` reads it:
nothing else lists them, so a new family is one entry in that list.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache

QUOTE = "quote"
ORDER = "order"
WORKFLOW = "workflow"
#: Where an event goes whose name's prefix is no family: workflow signals, and families added later.
CATCH_ALL = WORKFLOW
#: The variable that carries the family list (template.yaml's Globals).
FAMILIES_VARIABLE = "EVENT_FAMILIES"


def families(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The deployed families, lower case, in the template's order."""
    return parse_families((os.environ if environ is None else environ).get(FAMILIES_VARIABLE, ""))


@cache
def parse_families(text: str) -> tuple[str, ...]:
    found = tuple(family.strip().lower() for family in text.split(",") if family.strip())
    if CATCH_ALL not in found:
        raise ValueError(f"{FAMILIES_VARIABLE} must list the families, {CATCH_ALL} among them (it is {text!r})")
    return found


def family_of(event_name: str, known: tuple[str, ...] | None = None) -> str:
    """`quote.*` -> quote, `order.*` -> order (any family's prefix -> that family), any other name ->
    the catch-all family (workflow). `known`: the families (default: `families()`)."""
    prefix = event_name.split(".", 1)[0]
    return prefix if prefix in (families() if known is None else known) else CATCH_ALL


def template_name(family: str) -> str:
    """The family as template.yaml names it and its resources: `quote` -> `Quote` (QuoteEventsQueue)."""
    return family.capitalize()
