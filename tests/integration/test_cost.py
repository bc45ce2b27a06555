"""The cost model: per-webhook units measured on moto (deterministic), budgets asserted, and the
committed table in docs/cost.md current."""

from __future__ import annotations

import json

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
    # The default door, the HTTP API, is $1.00 per million requests plus its access log line.
    assert cost.settings_of(template, {}).front_door == "HttpApi"
    assert cost.per_million(template, measured) < 6.00
    # 4.27 before the consumer's claim; the claim is +1 write -1 read per record (about +$0.50).
    assert cost.per_million(template, measured, {"FrontDoor": "FunctionUrl"}) < 5.00


def test_fixed_costs_count_what_a_deploy_at_those_parameters_creates(template: SamTemplate) -> None:
    def alarms(**overrides: str) -> str:
        prices = json.loads(cost.PRICES.read_text())
        a = json.loads(cost.ASSUMPTIONS.read_text())
        return next(item for item, _, _ in cost.fixed_monthly(template, prices, a, overrides) if "alarms" in item)

    declared = template.of_type("AWS::CloudWatch::Alarm")
    conditional = [lid for lid, res in declared.items() if "Condition" in res]
    assert conditional == ["NoAcceptedEventsAlarm"]  # only when NoEventAlarmHours is not 0 (default 0)
    assert alarms().startswith(f"CloudWatch alarms ({len(declared) - 1} alarms")
    assert alarms(NoEventAlarmHours="12").startswith(f"CloudWatch alarms ({len(declared)} alarms")
    # IngestErrorsAlarm reads the 5xx of the door in front: the HTTP API's, or the function URL's.
    for door, namespace in (("HttpApi", "AWS/ApiGateway"), ("FunctionUrl", "AWS/Lambda")):
        alarm = cost.of_type_at(template, "AWS::CloudWatch::Alarm", {"FrontDoor": door})["IngestErrorsAlarm"]
        (api5xx,) = [m for m in alarm["Properties"]["Metrics"] if m["Id"] == "api5xx"]
        assert api5xx["MetricStat"]["Metric"]["Namespace"] == namespace


def test_the_committed_table_is_current(template: SamTemplate, measured: cost.Measurements) -> None:
    assert cost.committed_table() == cost.render(template, measured).strip("\n"), "run `make cost ARGS=--write`"


def test_junk_costs_one_secrets_manager_call_a_second_and_cannot_delay_a_new_key(template: SamTemplate) -> None:
    from devtools.bench import junk_flood

    flood = junk_flood(template, seconds=30.0, step=0.01)  # 3,000 bad signatures, a new key at 20.3 s
    assert flood["describe_calls"] <= 31
    assert flood["new_key_delay_s"] <= 2.0


def test_the_recorded_bench_block_is_current_where_it_is_deterministic(template: SamTemplate) -> None:
    """docs/performance.md holds `make bench ARGS=--write`'s output: its counted lines must be today's."""
    from devtools import bench

    block = bench.committed_block()
    assert block.strip(), "run `make bench ARGS=--write`"
    stale = [line for line in bench.per_webhook(template) if line not in block.splitlines()]
    assert stale == [], "run `make bench ARGS=--write`"
