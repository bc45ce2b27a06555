"""Your tests of your handlers: `make test-partner`. Replace these with tests of what your handlers do
(mock your ERP or CRM client, then assert on what it was asked)."""

from ntp.testing import run_handlers, sample_event


def test_a_confirmed_order_starts_production() -> None:
    assert run_handlers(sample_event("order.confirmed", orderId="ord_1")) == ["business_logic.start_production"]


def test_a_shipped_order_runs_nothing_of_yours() -> None:
    assert run_handlers(sample_event("order.shipped")) == []
