"""What one webhook uses (`make bench`, counted on moto) and what it costs (`make cost`, priced from
tools/usage.json and tools/cost_model.json): behaviour, and one check that the docs' figures are current."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devtools.sam_template import SamTemplate
from tools import bench, cost
from tools.template_families import families_of, render


@pytest.fixture(scope="module")
def usage(template: SamTemplate) -> dict[str, Any]:
    return bench.measure_usage(template)


def test_what_a_webhook_uses_is_within_the_budgets(usage: dict[str, Any]) -> None:
    used = usage["per_webhook"]
    assert used["ingest"]["calls"] == {"dynamodb.PutItem": 1, "dynamodb.UpdateItem": 1, "sqs.SendMessage": 1}
    assert used["duplicate"]["calls"] == {"dynamodb.PutItem": 1}  # the refused claim returns the record
    # A batch of one: the claim (returns what is done), the state item's write (no read), the archive
    # and the completion (one call per batch).
    one = {"dynamodb.UpdateItem": 2, "dynamodb.BatchWriteItem": 1, "firehose.PutRecordBatch": 1}
    assert used["consumer"]["calls"] == one
    # A batch of ten: the archive and the completion calls are shared.
    assert used["consumer_batch"]["calls"] == {**one, "dynamodb.BatchWriteItem": 0.1, "firehose.PutRecordBatch": 0.1}
    assert used["consumer"]["read_units"] == used["consumer_batch"]["read_units"] == 0
    assert (used["ingest"]["write_units"], used["consumer"]["write_units"]) == (2, 3)
    # An entity past its history: the appending write is refused (one write unit) and returns the item.
    assert used["past_history"]["write_units"] == 4 and used["past_history"]["read_units"] == 0
    assert usage["item_bytes"]["state"] <= 1024  # a full order's history fits one write unit
    assert used["consumer"]["firehose_billed_bytes"] == 5 * 1024  # one record, billed in 5 KB steps
    assert not any("OVER BUDGET" in line for line in bench.usage_lines(usage))


def test_the_bill_grows_with_the_volume_and_batching_makes_a_webhook_cheaper(template: SamTemplate) -> None:
    totals = {v: sum(d for _, _, d in cost.bill(template, v, {})) for v in cost.VOLUMES}
    assert totals[1_000_000] < totals[10_000_000] < totals[100_000_000]
    per_million = [cost.per_million(template, v) for v in cost.VOLUMES]
    assert per_million[0] > per_million[1] >= per_million[2] - 1e-9  # fuller batches: fewer invocations and receives


def test_parameters_change_the_price(template: SamTemplate) -> None:
    def at(**overrides: str) -> float:
        return cost.per_million(template, 1_000_000, overrides)

    assert at(FrontDoor="FunctionUrl") < at(FrontDoor="HttpApi") - 1.0  # no API Gateway request, no access log
    assert at(LambdaSystemLogLevel="INFO") > at(LambdaSystemLogLevel="WARN")  # Lambda's own start/report lines
    assert at(ConsumerBatchingWindowSeconds="60") < at(ConsumerBatchingWindowSeconds="0")
    assert at(IngestMemorySize="1024") > at(IngestMemorySize="256")


def test_fixed_costs_count_what_a_deploy_at_those_parameters_creates(template: SamTemplate) -> None:
    def alarm_metrics(**overrides: str) -> float:
        return next(
            units for line, units, _ in cost.bill(template, 1, overrides, "fixed_monthly") if "alarm" in line["item"]
        )

    (conditional,) = [lid for lid, r in template.of_type("AWS::CloudWatch::Alarm").items() if "Condition" in r]
    assert conditional == "NoAcceptedEventsAlarm"  # only when NoEventAlarmHours is not 0 (the default)
    assert alarm_metrics(NoEventAlarmHours="12") > alarm_metrics()


def test_a_family_added_to_the_template_list_is_priced_without_an_edit(template: SamTemplate, tmp_path: Path) -> None:
    """Each family queue batches on its own and is polled while idle: a fourth family makes batches
    emptier and adds its pollers, from template.yaml's family list alone."""
    text = template.path.read_text()
    (tmp_path / "template.yaml").write_text(render(text, [*families_of(text), "Invoice"]))
    four = SamTemplate(tmp_path / "template.yaml")
    assert cost.per_million(four, 1_000_000) > cost.per_million(template, 1_000_000)

    def polls(t: SamTemplate) -> float:
        return next(units for line, units, _ in cost.bill(t, 1, {}, "fixed_monthly") if "polling" in line["item"])

    assert polls(four) == polls(template) * 4 / 3


def test_the_figures_in_the_docs_are_current(template: SamTemplate, usage: dict[str, Any]) -> None:
    """The counts recorded by `make bench ARGS=--write` (tools/usage.json, docs/performance.md) are
    today's, and docs/cost.md holds what `make cost` prices from them. Timings are not compared."""
    recorded = json.loads(bench.USAGE.read_text())
    assert {k: v for k, v in recorded.items() if k != "cpu_ms"} == usage, "run `make bench ARGS=--write`"
    block = bench.committed_block().splitlines()
    assert [line for line in bench.usage_lines(usage) if line not in block] == [], "run `make bench ARGS=--write`"
    assert cost.committed() == cost.render(template), "run `make cost ARGS=--write`"
