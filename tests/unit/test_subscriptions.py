from __future__ import annotations

import pytest

from devtools.deliveries import encode, envelope
from ntp_webhooks.events import EventBase, parse_event
from ntp_webhooks.subscriptions import Subscriptions


def event(name: str) -> EventBase:
    return parse_event(encode(envelope(name)))


def test_exact_family_and_wildcard_selectors() -> None:
    subs = Subscriptions()
    seen: list[str] = []
    subs.on("order.confirmed")(lambda e: seen.append(f"exact:{e.event}"))
    subs.on("order")(lambda e: seen.append(f"family:{e.event}"))
    subs.on("*")(lambda e: seen.append(f"all:{e.event}"))
    assert subs.dispatch(event("order.confirmed")) == 3
    assert seen == ["exact:order.confirmed", "family:order.confirmed", "all:order.confirmed"]
    seen.clear()
    assert subs.dispatch(event("quote.received")) == 1
    assert seen == ["all:quote.received"]


def test_a_handler_registered_twice_runs_once() -> None:
    subs = Subscriptions()
    calls: list[str] = []

    @subs.on("order.shipped", "order")
    def shipped(e: EventBase) -> None:
        calls.append(e.id)

    subs.dispatch(event("order.shipped"))
    assert len(calls) == 1


def test_unknown_family_events_reach_workflow_handlers() -> None:
    subs = Subscriptions()
    calls: list[str] = []
    subs.on("workflow")(lambda e: calls.append(e.event))
    subs.dispatch(event("preflight.failed"))
    assert calls == ["preflight.failed"]


@pytest.mark.parametrize("selector", ["orders", "", "Order"])
def test_bad_selectors_are_refused(selector: str) -> None:
    with pytest.raises(ValueError, match="neither"):
        Subscriptions().on(selector)


def test_exceptions_propagate() -> None:
    subs = Subscriptions()

    @subs.on("*")
    def broken(e: EventBase) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        subs.dispatch(event("order.created"))
