"""The cost model: per-webhook units measured on moto (deterministic), budgets asserted, and the
committed table in docs/cost.md current."""

from __future__ import annotations

import pytest

from devtools import cost
from devtools.sam_template import SamTemplate


@pytest.fixture(scope="module")
def measured(template: SamTemplate) -> cost.Measurements:
    return cost.measure(template)


def test_write_units_per_webhook_are_the_budget(measured: cost.Measurements) -> None:
    per = measured.webhooks
    assert measured.ingest.write_units / per == 2  # claim and completion, each within 1 KB
    assert measured.consumer.write_units / per == 3  # claim, state item, completion (and release)
    assert measured.state_item_bytes <= 1024  # a full order's history fits one write unit


def test_aws_calls_per_webhook(measured: cost.Measurements) -> None:
    per = measured.webhooks
    assert {k: v / per for k, v in measured.ingest.calls.items()} == {
        ("dynamodb", "PutItem"): 1,
        ("sqs", "SendMessage"): 1,
        ("dynamodb", "UpdateItem"): 1,
    }
    assert {k: v / per for k, v in measured.consumer.calls.items()} == {
        ("dynamodb", "GetItem"): 1,  # the state item (without its body)
        ("dynamodb", "UpdateItem"): 3,  # claim (returns what is done), state item, completion
    }


def test_one_lean_log_line_per_webhook_in_each_function(measured: cost.Measurements) -> None:
    from devtools.bench import COST_BUDGETS

    per = measured.webhooks
    assert measured.ingest.log_bytes / per <= COST_BUDGETS["ingest log bytes"]
    assert measured.consumer.log_bytes / per <= COST_BUDGETS["consumer log bytes"]
    assert measured.messages_sent / per == COST_BUDGETS["SQS messages sent"]


def test_under_the_budget_at_the_default_settings(template: SamTemplate, measured: cost.Measurements) -> None:
    # 4.27 before the consumer's claim; the claim is +1 write -1 read per record (about +$0.50).
    assert cost.per_million(template, measured) < 5.00


def test_the_committed_table_is_current(template: SamTemplate, measured: cost.Measurements) -> None:
    assert cost.committed_table() == cost.render(template, measured).strip("\n"), "run `make cost ARGS=--write`"


def test_junk_costs_one_secrets_manager_call_a_second_and_cannot_delay_a_new_key(template: SamTemplate) -> None:
    from devtools.bench import junk_flood

    flood = junk_flood(template, seconds=30.0, step=0.01)  # 3,000 bad signatures, a new key at 20.3 s
    assert flood["describe_calls"] <= 31
    assert flood["new_key_delay_s"] <= 2.0
