"""The cost model: per-webhook units measured on moto (deterministic), budgets asserted, and the
committed table in docs/cost.md current."""

from __future__ import annotations

import json

import pytest

from devtools.sam_template import REPO_ROOT, SamTemplate
from tools import cost


@pytest.fixture(scope="module")
def measured(template: SamTemplate) -> cost.Measurements:
    return cost.measure(template)


@pytest.fixture(scope="module")
def bodies(template: SamTemplate) -> dict[int, cost.Measurements]:
    return cost.measure_bodies(template)


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
        ("firehose", "PutRecord"): 1,  # the archive
    }


def test_one_lean_log_line_per_webhook_in_each_function(measured: cost.Measurements) -> None:
    from tools.bench import COST_BUDGETS

    per = measured.webhooks
    assert measured.ingest.log_bytes / per <= COST_BUDGETS["ingest log bytes"]
    assert measured.consumer.log_bytes / per <= COST_BUDGETS["consumer log bytes"]
    assert measured.messages_sent / per == COST_BUDGETS["SQS messages sent"]


def test_under_the_budget_at_the_default_settings(template: SamTemplate, measured: cost.Measurements) -> None:
    """The archive issue's targets ($6.50 per million at 1 million a month, $6.00 at 10 million) hold
    but for one line, the consumer's claim: a write unit instead of a read unit per record ($0.50 per
    million), which makes two copies processed at once run each handler once. docs/cost.md says so."""
    assert cost.settings_of(template, {}).front_door == "HttpApi"
    prices = json.loads(cost.PRICES.read_text())
    claim = prices["dynamodb_per_million_write_units"] - prices["dynamodb_per_million_read_units"]
    for volume, target in cost.TARGETS.items():
        lines = cost.lines_for(
            volume, measured, cost.settings_of(template, {}), prices, json.loads(cost.ASSUMPTIONS.read_text())
        )
        total = sum(line.price * line.units_per_webhook for line in lines) * 1e6
        assert total - claim <= target, (volume, total)
        assert total <= target + claim + 0.20, (volume, total)  # no other line creeps up unnoticed


def test_the_total_does_not_depend_on_the_body_size(
    template: SamTemplate, bodies: dict[int, cost.Measurements]
) -> None:
    """The body lives in the archive (billed in 5 KB steps, stored gzipped), not in the state item."""
    prices = json.loads(cost.PRICES.read_text())
    assumptions = json.loads(cost.ASSUMPTIONS.read_text())
    settings = cost.settings_of(template, {})
    for volume in cost.TARGETS:
        totals = {
            size: sum(x.price * x.units_per_webhook for x in cost.lines_for(volume, m, settings, prices, assumptions))
            for size, m in bodies.items()
        }
        assert all(abs(t / totals[200] - 1) <= 0.02 for t in totals.values()), totals
    assert {size: m.consumer.write_units / m.webhooks for size, m in bodies.items()} == {size: 3 for size in bodies}


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


def test_the_committed_table_is_current(
    template: SamTemplate, measured: cost.Measurements, bodies: dict[int, cost.Measurements]
) -> None:
    expected = cost.render(template, measured, bodies=bodies).strip("\n")
    assert cost.committed_table() == expected, "run `make cost ARGS=--write`"


def test_the_recorded_bench_block_is_current_where_it_is_deterministic(
    template: SamTemplate, measured: cost.Measurements
) -> None:
    """docs/performance.md holds `make bench ARGS=--write`'s output: its counted lines must be today's."""
    from tools import bench

    block = bench.committed_block()
    assert block.strip(), "run `make bench ARGS=--write`"
    stale = [line for line in bench.per_webhook(template, measured) if line not in block.splitlines()]
    assert stale == [], "run `make bench ARGS=--write`"


def test_the_architecture_pages_claim_versus_fifo_figures_are_the_price_lists() -> None:
    """docs/architecture.md weighs the claim against FIFO queues at list prices: the same as make cost's."""
    prices = json.loads(cost.PRICES.read_text())
    page = (REPO_ROOT / "docs" / "architecture.md").read_text()
    write, read = prices["dynamodb_per_million_write_units"], prices["dynamodb_per_million_read_units"]
    fifo, standard = prices["sqs_fifo_per_million_requests"], prices["sqs_per_million_requests"]
    assert f"+${write - read:.2f}: a write unit (${write:.3f} per million) instead of a read unit (${read:.3f})" in page
    assert f"+${fifo - standard:.2f} SQS (${fifo:.2f} vs ${standard:.2f} per million requests)" in page
    assert f"${write - read:.2f} per million at list prices" in page
