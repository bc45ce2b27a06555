"""Which family queue an event goes to. Unknown families are routed, never dropped.

FAMILIES is the library's one family list; template.yaml's is the `Fn::ForEach::Families` loop's,
spelled as `template_name` spells each (tests/infrastructure ties the two).
"""

from __future__ import annotations

QUOTE = "quote"
ORDER = "order"
WORKFLOW = "workflow"
FAMILIES = (QUOTE, ORDER, WORKFLOW)
#: Where an event goes whose name's prefix is no family: workflow signals, and families added later.
CATCH_ALL = WORKFLOW


def family_of(event_name: str) -> str:
    """`quote.*` -> quote, `order.*` -> order (any family's prefix -> that family), any other name ->
    the catch-all family (workflow)."""
    prefix = event_name.split(".", 1)[0]
    return prefix if prefix in FAMILIES else CATCH_ALL


def template_name(family: str) -> str:
    """The family as template.yaml names it and its resources: `quote` -> `Quote` (QuoteEventsQueue)."""
    return family.capitalize()
