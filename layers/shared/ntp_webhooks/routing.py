"""Which family queue an event goes to. Unknown families are routed, never dropped."""

from __future__ import annotations

QUOTE = "quote"
ORDER = "order"
WORKFLOW = "workflow"
FAMILIES = (QUOTE, ORDER, WORKFLOW)


def family_of(event_name: str) -> str:
    """`quote.*` -> quote, `order.*` -> order, anything else (workflow signals, new families) -> workflow."""
    prefix = event_name.split(".", 1)[0]
    return prefix if prefix in (QUOTE, ORDER) else WORKFLOW
