from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from devtools import registrations
from devtools.deliveries import encode, envelope
from ntp_webhooks.events import EventBase, parse_event
from ntp_webhooks.subscriptions import Subscriptions, subscriptions


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


def test_a_module_first_imported_during_a_temporary_registration_registers_again_afterwards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cost model imports the consumers (and so business_logic) inside `registrations.temporary`:
    after it, the next consumer import must register the partner's handlers for good, not find the
    module cached with its handlers gone."""
    (tmp_path / "partner_logic_probe.py").write_text(
        "from ntp_webhooks.subscriptions import on\n\n@on('order.confirmed')\ndef probe(event):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    name = "partner_logic_probe.probe"
    with registrations.temporary():  # the test's own: the global registry is as it was afterwards
        with registrations.temporary(without_examples=True):
            importlib.import_module("partner_logic_probe")
            assert name in subscriptions.names()
        assert name not in subscriptions.names() and "partner_logic_probe" not in sys.modules
        importlib.import_module("partner_logic_probe")
        assert name in subscriptions.names()
    sys.modules.pop("partner_logic_probe", None)
