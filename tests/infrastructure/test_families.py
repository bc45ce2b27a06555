"""A fourth event family is one entry in template.yaml's family loop and one in routing.FAMILIES,
then `make template`: everything else follows (README, Extend: a new event family)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devtools.sam_template import REPO_ROOT, TEMPLATE_PATH, SamTemplate
from tools import template_families

NEW = "Invoice"
#: Each family's resources, as the family loops write them.
PER_FAMILY = (
    "{f}EventsQueue",
    "{f}EnqueuePolicy",
    "{f}EventsDeadLetterQueue",
    "{f}ConsumerFunction",
    "{f}ConsumerRole",
    "{f}ConsumerFunctionLogGroup",
    "{f}DeadLetterAlarm",
    "{f}QueueAgeAlarm",
)


def with_family(directory: Path, family: str = NEW) -> Path:
    """template.yaml with `family` added to the family loop's list and `make template` run, beside the code."""
    text = TEMPLATE_PATH.read_text()
    added = with_families(text, [*template_families.families_of(text), family])
    for code in ("functions", "layers"):
        (directory / code).symlink_to(REPO_ROOT / code)
    path = directory / "template.yaml"
    path.write_text(template_families.render(added))
    return path


def with_families(text: str, families: list[str]) -> str:
    """The edit the README asks for: the one list (the first loop's) written anew; nothing else."""
    listed = f"    - [{', '.join(template_families.families_of(text))}]\n"
    edited = text.replace(listed, f"    - [{', '.join(families)}]\n", 1)
    assert edited != text
    return edited


@pytest.fixture(scope="module")
def extended(tmp_path_factory: pytest.TempPathFactory) -> SamTemplate:
    return SamTemplate(with_family(tmp_path_factory.mktemp("families")))


def dashboard_lines(template: SamTemplate) -> list[list[Any]]:
    body = template.resources["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(re.sub(r"\$\{([^}]+)\}", r"\1", body))["widgets"]
    return [metric for widget in widgets for metric in widget["properties"]["metrics"]]


def test_the_new_family_gets_every_resource_output_variable_and_permission(
    template: SamTemplate, extended: SamTemplate
) -> None:
    added = set(extended.resources) - set(template.resources)
    assert added == {name.format(f=NEW) for name in PER_FAMILY}
    assert set(template.resources) <= set(extended.resources)
    assert set(extended.doc["Outputs"]) - set(template.doc["Outputs"]) == {f"{NEW}QueueUrl", f"{NEW}DeadLetterQueueUrl"}
    ingest = extended.function("IngestFunction").environment
    assert ingest[f"QUEUE_URL_{NEW}"] == {"Ref": f"{NEW}EventsQueue"}
    (statement,) = extended.resources[f"{NEW}EnqueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Resource"] == {"Fn::GetAtt": [f"{NEW}EventsQueue", "Arn"]}
    assert extended.function(f"{NEW}ConsumerFunction").environment["EVENT_FAMILY"] == NEW


def test_the_dashboard_shows_the_new_family_as_it_shows_the_others(
    template: SamTemplate, extended: SamTemplate
) -> None:
    """Every dashboard line of the first family has its twin for the new one, and the body stays JSON."""
    quote = [
        json.dumps(line)
        for line in dashboard_lines(template)
        if "QuoteEvents" in json.dumps(line) or "QuoteConsumer" in json.dumps(line)
    ]
    new = {json.dumps(line) for line in dashboard_lines(extended)} - {
        json.dumps(line) for line in dashboard_lines(template)
    }
    assert quote and new == {line.replace("Quote", NEW).replace("quote", NEW.lower()) for line in quote}


def test_removing_a_family_removes_its_lines(tmp_path: Path) -> None:
    text = TEMPLATE_PATH.read_text()
    first, *rest = template_families.families_of(text)
    rendered = template_families.render(with_families(text, [first, rest[-1]]))
    for gone in rest[:-1]:
        assert not re.search(
            rf"\b{gone}(EventsQueue|ConsumerFunction|EventsDeadLetterQueue)\b|QUEUE_URL_{gone}\b", rendered
        )
    assert template_families.render(rendered) == rendered


#: Runs in a fresh interpreter: routing.FAMILIES gains the family before anything imports it.
RUN = """
import json, sys
from ntp_webhooks import routing
routing.FAMILIES = (*routing.FAMILIES, "invoice")

import boto3
from moto import mock_aws
from devtools.deliveries import envelope, signed_event
from devtools.pipeline import FAKE_AWS, Pipeline, environment, global_environment
from devtools.sam_template import SamTemplate

template = SamTemplate(__import__("pathlib").Path(sys.argv[1]))
with environment(FAKE_AWS), environment(global_environment(template)), mock_aws():
    pipeline = Pipeline(template)
    sent = {name: envelope(name, data={"invoiceId": "inv-1"}) for name in ("invoice.issued", "order.created")}
    statuses = {name: pipeline.deliver(signed_event(payload))["statusCode"] for name, payload in sent.items()}
    queues = ("InvoiceEventsQueue", "OrderEventsQueue", "WorkflowEventsQueue")
    depths = {queue: pipeline.depth(queue) for queue in queues}
    drained = {family: pipeline.poller(family).drain() for family in ("invoice", "order")}
    left = {queue: pipeline.depth(queue) for queue in ("InvoiceEventsQueue", "InvoiceEventsDeadLetterQueue")}
    items = boto3.client("dynamodb").scan(TableName=pipeline.stack.refs["StateTable"])["Items"]
    stored = sum(sent["invoice.issued"]["id"] in json.dumps(item) for item in items)
print(json.dumps({"statuses": statuses, "depths": depths, "drained": drained, "left": left, "stored": stored}))
"""


def test_a_new_familys_events_reach_its_own_queue_and_consumer(tmp_path: Path) -> None:
    path = with_family(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", RUN, str(path)], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["statuses"] == {"invoice.issued": 202, "order.created": 202}
    assert outcome["depths"] == {"InvoiceEventsQueue": 1, "OrderEventsQueue": 1, "WorkflowEventsQueue": 0}
    assert outcome["drained"] == {"invoice": 1, "order": 1}
    assert outcome["left"] == {"InvoiceEventsQueue": 0, "InvoiceEventsDeadLetterQueue": 0}
    assert outcome["stored"] >= 1  # the projection holds the invoice event
