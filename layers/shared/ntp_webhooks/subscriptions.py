"""Where partners plug in their business logic: functions registered per event type or family.

    from ntp_webhooks.subscriptions import on
    from ntp_webhooks.events import OrderConfirmed

    @on("order.confirmed")
    def start_production(event: OrderConfirmed) -> None: ...

Selectors: an event name (`order.confirmed`), a family (`order`, `quote`, `workflow`), or `*`.
A handler that raises fails only its own SQS record, which SQS then redelivers: handlers must be
idempotent (the projection already is).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any, TypeVar

from ntp_webhooks.events import EventBase
from ntp_webhooks.routing import FAMILIES

Handler = Callable[[Any], None]
H = TypeVar("H", bound=Handler)


class Subscriptions:
    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)

    def on(self, *selectors: str) -> Callable[[H], H]:
        if not selectors:
            raise ValueError("name at least one event, family or '*'")
        for selector in selectors:
            if selector != "*" and selector not in FAMILIES and "." not in selector:
                raise ValueError(f"{selector!r} is neither an event name, a family {FAMILIES} nor '*'")

        def register(handler: H) -> H:
            for selector in selectors:
                self._handlers[selector].append(handler)
            return handler

        return register

    def handlers_for(self, event: EventBase) -> list[Handler]:
        found: list[Handler] = []
        for selector in (event.event, event.family, "*"):
            found += [h for h in self._handlers.get(selector, []) if h not in found]
        return found

    def dispatch(self, event: EventBase) -> int:
        """Run every matching handler; returns how many ran. Exceptions propagate."""
        handlers = self.handlers_for(event)
        for handler in handlers:
            handler(event)
        return len(handlers)


#: The registry the consumer functions dispatch to.
subscriptions = Subscriptions()
on = subscriptions.on
