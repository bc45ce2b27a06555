"""Where partners plug in their business logic: functions registered per event type or family.

    from ntp_webhooks.subscriptions import on
    from ntp_webhooks.events import OrderConfirmed

    @on("order.confirmed")
    def start_production(event: OrderConfirmed) -> None: ...

Selectors: an event name from the registry (`order.confirmed`), a family (`order`, `quote`,
`workflow`, or one you added to template.yaml's list), or `*`. A name NowToPrint has not documented
yet needs `unregistered=True`, so that a typo (`order.confirmd`) fails at import instead of never
matching.

Each handler runs to success once per event ID (`ntp_webhooks.handler_runs`): it is identified by
`name`, by default `module.function`, which survives redeploys and edits that do not rename it.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from ntp_webhooks.events import REGISTRY, EventBase
from ntp_webhooks.routing import families

HandlerFunction = Callable[[Any], None]
H = TypeVar("H", bound=HandlerFunction)


@dataclass(frozen=True)
class Handler:
    name: str
    function: HandlerFunction

    def __call__(self, event: EventBase) -> None:
        self.function(event)


class Subscriptions:
    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}
        self._names: set[str] = set()

    def on(self, *selectors: str, name: str | None = None, unregistered: bool = False) -> Callable[[H], H]:
        if not selectors:
            raise ValueError("name at least one event, family or '*'")
        for selector in selectors:
            check_selector(selector, unregistered=unregistered)

        def register(function: H) -> H:
            handler = Handler(name or f"{function.__module__}.{function.__qualname__}", function)
            if "#" in handler.name or handler.name in self._names:
                raise ValueError(f"handler name {handler.name!r} is taken or has a '#': pass on(..., name=...)")
            self._names.add(handler.name)
            for selector in selectors:
                self._handlers.setdefault(selector, []).append(handler)
            return function

        return register

    def handlers_for(self, event: EventBase) -> list[Handler]:
        found: list[Handler] = []
        for selector in (event.event, event.family, "*"):
            found += [h for h in self._handlers.get(selector, []) if h not in found]
        return found

    def names(self) -> set[str]:
        """Every registered handler's name (what `ntp replay --handler` accepts)."""
        return set(self._names)

    @contextlib.contextmanager
    def restored(self) -> Iterator[Subscriptions]:
        """What is registered inside is unregistered on exit: for a test that registers handlers with
        `@on` on the registry the consumer functions load, as a partner's module does. A deployed
        consumer registers its handlers once, at import, and never needs it. A module first imported
        inside would stay imported with its handlers gone: import the partner's first."""
        handlers = {selector: list(found) for selector, found in self._handlers.items()}
        names = set(self._names)
        try:
            yield self
        finally:
            self._handlers, self._names = handlers, names


def check_selector(selector: str, *, unregistered: bool = False) -> None:
    """Raise ValueError for a selector that can never match: not `*`, a family or a known name."""
    if selector == "*" or selector in families() or selector in REGISTRY:
        return
    if "." not in selector:
        raise ValueError(f"{selector!r} is neither an event name, a family {families()} nor '*'")
    if not unregistered:
        known = ", ".join(sorted(REGISTRY))
        raise ValueError(
            f"unknown event type {selector!r} (known: {known}); "
            "for a name not in the registry yet, pass on(..., unregistered=True)"
        )


#: The registry the consumer functions dispatch to.
subscriptions = Subscriptions()
on = subscriptions.on

#: The partner's one entry point: the module the consumers import so that its `@on(...)` registers
#: their handlers here. It is partner/handlers/business_logic.py, shipped in the PartnerLayer (/opt/python);
#: it may import the partner's other modules and dependencies from there.
ENTRY_POINT = "business_logic"


def load_partner_handlers() -> Subscriptions:
    """Import the partner's entry point (once per process) and return the registry it filled."""
    importlib.import_module(ENTRY_POINT)
    return subscriptions
