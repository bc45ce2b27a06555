from __future__ import annotations

import pytest

from ntp.deliveries import encode, envelope
from ntp_webhooks.events import EventBase, parse_event
from ntp_webhooks.subscriptions import Subscriptions


def event(name: str) -> EventBase:
    return parse_event(encode(envelope(name)))


def run_all(subs: Subscriptions, e: EventBase) -> list[str]:
    """Run every matching handler, as the consumer does when none has run yet; returns their names."""
    handlers = subs.handlers_for(e)
    for handler in handlers:
        handler(e)
    return [h.name for h in handlers]


def test_exact_family_and_wildcard_selectors() -> None:
    subs = Subscriptions()
    seen: list[str] = []
    subs.on("order.confirmed", name="exact")(lambda e: seen.append(f"exact:{e.event}"))
    subs.on("order", name="family")(lambda e: seen.append(f"family:{e.event}"))
    subs.on("*", name="all")(lambda e: seen.append(f"all:{e.event}"))
    assert run_all(subs, event("order.confirmed")) == ["exact", "family", "all"]
    assert seen == ["exact:order.confirmed", "family:order.confirmed", "all:order.confirmed"]
    seen.clear()
    assert run_all(subs, event("quote.received")) == ["all"]
    assert seen == ["all:quote.received"]


def test_a_handler_registered_for_two_matching_selectors_runs_once() -> None:
    subs = Subscriptions()
    calls: list[str] = []

    @subs.on("order.shipped", "order")
    def shipped(e: EventBase) -> None:
        calls.append(e.id)

    assert run_all(subs, event("order.shipped")) == [f"{__name__}.{shipped.__qualname__}"]
    assert len(calls) == 1


def test_handler_names_default_to_module_and_function_and_must_be_unique() -> None:
    subs = Subscriptions()

    def notify(e: EventBase) -> None: ...

    subs.on("order")(notify)
    with pytest.raises(ValueError, match="taken"):
        subs.on("quote")(notify)
    subs.on("quote", name="notify-quotes")(notify)  # a chosen name makes it distinct
    with pytest.raises(ValueError, match="#"):
        subs.on("quote", name="#projection")(notify)


def test_unknown_family_events_reach_workflow_handlers() -> None:
    subs = Subscriptions()
    calls: list[str] = []
    subs.on("workflow", name="signals")(lambda e: calls.append(e.event))
    run_all(subs, event("preflight.failed"))
    assert calls == ["preflight.failed"]


@pytest.mark.parametrize("selector", ["orders", "", "Order"])
def test_bad_selectors_are_refused(selector: str) -> None:
    with pytest.raises(ValueError, match="neither"):
        Subscriptions().on(selector)


def test_a_misspelt_event_name_fails_at_registration() -> None:
    with pytest.raises(ValueError, match=r"unknown event type 'order.confirmd'.*unregistered=True"):
        Subscriptions().on("order.confirmd")


def test_a_name_not_in_the_registry_yet_can_be_subscribed_deliberately() -> None:
    subs = Subscriptions()
    calls: list[str] = []
    subs.on("order.refunded", unregistered=True, name="refunds")(lambda e: calls.append(e.event))
    run_all(subs, event("order.refunded"))
    assert calls == ["order.refunded"]


def test_what_is_registered_inside_restored_is_unregistered_afterwards() -> None:
    """A test's own `@on` handlers on the consumers' registry; a deployed consumer never unregisters."""
    subs = Subscriptions()
    subs.on("order", name="kept")(lambda e: None)
    with subs.restored() as inside:
        assert inside is subs
        inside.on("order.confirmed", "*", name="temporary")(lambda e: None)
        inside.on("order", name="also-temporary")(lambda e: None)
        assert run_all(subs, event("order.confirmed")) == ["temporary", "kept", "also-temporary"]
    assert subs.names() == {"kept"}
    assert run_all(subs, event("order.confirmed")) == ["kept"]
    subs.on("quote", name="temporary")(lambda e: None)  # its name is free again
