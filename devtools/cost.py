"""`make cost`: what 1, 10 and 100 million webhooks a month cost, from the template and measurements.

Units per webhook come from three places, and the output says which:
- measured here, by running the pipeline (ingest, SQS, one consumer with one partner handler that does
  nothing) on moto for a typical order lifecycle: AWS calls by kind, DynamoDB write and read units
  from the items' sizes with DynamoDB's rounding, messages sent, log bytes;
- the template: memory sizes, batch size, batching window, history length, alarms, metrics;
- assumptions (devtools/cost_assumptions.json): AWS latencies, CPU time, traffic spread evenly over
  the month, Lambda's own log lines, idle polling.
Prices live in devtools/prices.json with the date they were read. docs/cost.md holds the output;
tests/integration/test_cost.py fails when it is stale.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import os
import re
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from devtools.deliveries import encode, envelope, signed_event
from devtools.pipeline import FAKE_AWS, Pipeline, environment, global_environment, hooked
from devtools.provision import resources_at
from devtools.sam_template import REPO_ROOT, SamTemplate
from ntp_webhooks.item_size import item_size, read_units, write_units

PRICES = REPO_ROOT / "devtools" / "prices.json"
ASSUMPTIONS = REPO_ROOT / "devtools" / "cost_assumptions.json"
DOC = REPO_ROOT / "docs" / "cost.md"
VOLUMES = (1_000_000, 10_000_000, 100_000_000)
#: The workload: orders with a full lifecycle, so that state items carry a full history.
ORDERS, EVENTS_PER_ORDER = 4, 25
_WRITES = ("PutItem", "UpdateItem", "DeleteItem")
#: Log fields whose width varies from run to run, set to a fixed representative width.
_VARIABLE = re.compile(r'"duration_ms":[0-9.]+')


@dataclass
class Phase:
    """What one function did for all the webhooks of the workload."""

    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    write_units: int = 0
    read_units: float = 0.0
    log_bytes: int = 0


class Meter:
    """botocore hooks on the functions' clients: calls, and DynamoDB units from the items' sizes
    before and after each write (DynamoDB bills the larger), read through a client of its own."""

    def __init__(self) -> None:
        self.phase: Phase | None = None
        self._inside = threading.local()
        self._before: dict[str, int] = {}
        self._params: dict[str, Any] = {}
        self._probe: Any = boto3.client("dynamodb")

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        with hooked("provide-client-params.*.*", self._before_call), hooked("after-call.*.*", self._after_call):
            yield

    def _size(self, params: dict[str, Any]) -> int:
        key = params.get("Key") or {name: params["Item"][name] for name in ("pk", "id") if name in params["Item"]}
        self._inside.active = True
        try:
            item = self._probe.get_item(TableName=params["TableName"], Key=key, ConsistentRead=True).get("Item")
        finally:
            self._inside.active = False
        return item_size(item) if item else 0

    def _before_call(self, params: dict[str, Any], event_name: str, **_: Any) -> None:
        if self.phase is None or getattr(self._inside, "active", False):
            return
        service_id, operation = event_name.split(".")[1:]
        service = service_id.replace("-", "")
        self.phase.calls[(service, operation)] += 1
        self._params = params
        if service == "dynamodb" and operation in _WRITES:
            self._before = {"size": self._size(params)}

    def _after_call(self, event_name: str, parsed: dict[str, Any], **_: Any) -> None:
        if self.phase is None or getattr(self._inside, "active", False):
            return
        service, operation = event_name.split(".")[1:]
        if service != "dynamodb":
            return
        if operation in _WRITES:
            new_size = 0 if operation == "DeleteItem" else self._size(self._params)
            if "Item" in self._params:  # PutItem: the item written
                new_size = max(new_size, item_size(self._params["Item"]))
            self.phase.write_units += write_units(max(self._before["size"], new_size))
        elif operation == "GetItem":
            size = item_size(parsed.get("Item", {}))
            self.phase.read_units += read_units(size, consistent=bool(self._params.get("ConsistentRead")))


@dataclass
class Measurements:
    webhooks: int
    ingest: Phase
    consumer: Phase
    messages_sent: int
    state_item_bytes: int


def _normalized_bytes(text: str) -> int:
    return sum(len(_VARIABLE.sub('"duration_ms":12.3', line).encode()) + 1 for line in text.splitlines() if line)


def measure(template: SamTemplate) -> Measurements:
    """Runs the workload on moto and counts what each function did per webhook (warm environments)."""
    from moto import mock_aws

    from ntp_webhooks.subscriptions import subscriptions

    saved = subscriptions.snapshot()
    with environment(FAKE_AWS), mock_aws():
        meter = Meter()
        with meter.installed():
            try:
                subscriptions.restore({})
                subscriptions.on("order", name="partner-noop")(lambda event: None)
                pipeline = Pipeline(template)
                result = _run(pipeline, meter)
            finally:
                subscriptions.restore(saved)
    return result


def _run(pipeline: Pipeline, meter: Meter) -> Measurements:
    ingest, consumer = Phase(), Phase()
    function = pipeline.consumers["order"].lambda_handler

    metering = False

    def metered_consumer(event: dict[str, Any], context: Any) -> Any:
        # Only the function's own calls: the event source mapping's receive and delete are modelled.
        meter.phase = consumer if metering else None
        try:
            return function(event, context)
        finally:
            meter.phase = None

    poller = pipeline.poller("order", metered_consumer)
    orders = [f"ord_{555001 + n}" for n in range(ORDERS)]
    started = datetime.now(UTC) - timedelta(hours=EVENTS_PER_ORDER)
    payloads = [
        envelope(f"order.step_{step:02d}", timestamp=started + timedelta(hours=step), data={"orderId": order})
        for step in range(EVENTS_PER_ORDER)
        for order in orders
    ]
    with _capture_stdout():  # warm both functions: cold starts load keys and clients
        pipeline.deliver(signed_event(encode(envelope("order.created", data={"orderId": "ord_warm"}))))
        poller.drain()
    metering = True
    for payload in payloads:
        captured = _capture_stdout()
        with captured:
            meter.phase = ingest
            status = pipeline.deliver(signed_event(encode(payload)))["statusCode"]
            meter.phase = None
        if status != 202:
            raise RuntimeError(f"the workload's webhook got {status}")
        ingest.log_bytes += _normalized_bytes(captured.text)
        captured = _capture_stdout()
        with captured:
            result = poller.poll_once()
        if (result.received, result.failed) != (1, 0):
            raise RuntimeError(f"the consumer did not process the webhook: {result}")
        consumer.log_bytes += _normalized_bytes(captured.text)
    item: Any = boto3.client("dynamodb").get_item(
        TableName=pipeline.stack.refs["StateTable"], Key={"pk": {"S": f"order#{orders[0]}"}}
    )["Item"]
    return Measurements(len(payloads), ingest, consumer, ingest.calls[("sqs", "SendMessage")], item_size(item))


class _capture_stdout:
    """What the functions print: Powertools log lines (through the logger's stream handlers, which
    hold the stdout of the moment they were created) and EMF metrics (printed to sys.stdout)."""

    text = ""

    def __enter__(self) -> _capture_stdout:
        from ntp_webhooks.observability import logger  # imported late: Powertools reads its environment

        self._buffer = io.StringIO()
        self._saved_stdout, sys.stdout = sys.stdout, self._buffer
        handlers = [h for h in logging.getLogger(logger.name).handlers if isinstance(h, logging.StreamHandler)]
        self._streams = [(h, h.setStream(self._buffer)) for h in handlers]
        return self

    def __exit__(self, *_: object) -> None:
        for handler, stream in self._streams:
            handler.setStream(stream)
        sys.stdout = self._saved_stdout
        self.text = self._buffer.getvalue()


# --- the model --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    item: str
    unit: str
    price: float  # per unit
    units_per_webhook: float
    source: str  # measured, template or assumption


@dataclass(frozen=True)
class Settings:
    """What the template's defaults (or overrides) say."""

    front_door: str
    ingest_memory_mb: int
    consumer_memory_mb: int
    batch_size: int
    batching_window_s: float
    history_length: int
    platform_logs: bool  # Lambda's own start and report lines (LambdaSystemLogLevel below WARN)
    access_log_bytes: int  # one HTTP API access log line (FrontDoor HttpApi)


#: Typical values of the access log's context variables: what one line of it weighs.
ACCESS_LOG_SAMPLE = {
    "requestId": "JbZXpgSaoAMEVnQ=",
    "requestTime": "01/Dec/2026:09:30:00 +0000",
    "identity.sourceIp": "203.0.113.10",
    "routeKey": "POST /webhooks",
    "status": "202",
    "responseLength": "74",
    "responseLatency": "48",
    "integrationLatency": "45",
    "integrationErrorMessage": "-",
}


def access_log_bytes(template: SamTemplate) -> int:
    """One access log line of the HTTP API stage, its format filled with typical values (counted as
    the functions' lines are: the message bytes)."""
    text = template.resources["WebhookApiStage"]["Properties"]["AccessLogSettings"]["Format"]
    line = re.sub(r"\$context\.([A-Za-z.]+)", lambda m: ACCESS_LOG_SAMPLE[m.group(1)], text)
    return len(line.encode())


def settings_of(template: SamTemplate, overrides: dict[str, str]) -> Settings:
    parameters = {**template.parameter_defaults(), **overrides}
    (event,) = template.function("OrderConsumerFunction").events.values()
    return Settings(
        front_door=parameters["FrontDoor"],
        ingest_memory_mb=int(parameters["IngestMemorySize"]),
        consumer_memory_mb=int(parameters["ConsumerMemorySize"]),
        batch_size=int(event["Properties"]["BatchSize"]),
        batching_window_s=float(parameters["ConsumerBatchingWindowSeconds"]),
        history_length=int(parameters["StateHistoryLength"]),
        platform_logs=parameters["LambdaSystemLogLevel"] != "WARN",
        access_log_bytes=access_log_bytes(template),
    )


def batch_fill(volume: int, settings: Settings, assumptions: dict[str, Any]) -> float:
    """Records per consumer invocation: the events that arrive during the batching window, with
    traffic spread evenly over the month (an assumption), at least one and at most the batch size."""
    rate = volume / assumptions["seconds_per_month"]
    return float(min(settings.batch_size, max(1.0, rate * settings.batching_window_s)))


def lambda_ms(calls: Counter[tuple[str, str]], cpu_ms: float, memory_mb: int, assumptions: dict[str, Any]) -> float:
    """Billed milliseconds: AWS calls at their assumed latency, plus CPU time scaled to the memory's
    CPU share (a full vCPU at 1,769 MB)."""
    latency: dict[str, float] = assumptions["aws_call_latency_ms"]
    waiting = sum(count * latency[service] for (service, _), count in calls.items())
    return float(waiting + cpu_ms * max(1.0, 1769 / memory_mb))


def lines_for(
    volume: int, m: Measurements, settings: Settings, prices: dict[str, Any], a: dict[str, Any]
) -> list[Line]:
    n = m.webhooks
    batch = batch_fill(volume, settings, a)
    per_call = {k: v / n for k, v in m.ingest.calls.items()}
    consumer_calls = Counter({k: v / n for k, v in m.consumer.calls.items()})
    cpu = a["handler_cpu_ms_at_1769_mb"]
    ingest_ms = math.ceil(lambda_ms(Counter(per_call), cpu["ingest"], settings.ingest_memory_mb, a))
    consumer_ms = math.ceil(
        lambda_ms(consumer_calls, cpu["consumer_per_record"], settings.consumer_memory_mb, a) * batch
        + cpu["consumer_per_invocation"] * max(1.0, 1769 / settings.consumer_memory_mb)
    )
    gb_s = prices["lambda_arm_per_gb_second"]
    platform = a["lambda_platform_log_bytes_per_invocation"] if settings.platform_logs else 0
    log_bytes = m.ingest.log_bytes / n + m.consumer.log_bytes / n + platform * (1 + 1 / batch)
    door = (
        [
            Line(
                "API Gateway HTTP API requests", "request", prices["http_api_per_million_requests"] / 1e6, 1, "template"
            ),
            Line(
                "HTTP API access log ingestion",
                "byte",
                prices["logs_ingestion_per_gb"] / 2**30,
                settings.access_log_bytes,
                "template (its format, typical values)",
            ),
        ]
        if settings.front_door == "HttpApi"
        else [Line("Lambda function URL (no charge of its own)", "request", 0.0, 1, "template")]
    )
    return [
        *door,
        Line("Ingest Lambda requests", "request", prices["lambda_arm_per_million_requests"] / 1e6, 1, "measured"),
        Line(
            f"Ingest Lambda compute ({settings.ingest_memory_mb} MB, {ingest_ms} ms)",
            "GB-second",
            gb_s,
            settings.ingest_memory_mb / 1024 * ingest_ms / 1000,
            "template + assumption",
        ),
        Line(
            "Dedup table writes",
            "write unit",
            prices["dynamodb_per_million_write_units"] / 1e6,
            m.ingest.write_units / n,
            "measured",
        ),
        Line("SQS SendMessage", "request", prices["sqs_per_million_requests"] / 1e6, m.messages_sent / n, "measured"),
        Line(
            f"SQS ReceiveMessage + DeleteMessageBatch ({batch:.1f} per batch)",
            "request",
            prices["sqs_per_million_requests"] / 1e6,
            2 / batch,
            "template + assumption",
        ),
        Line(
            "Consumer Lambda requests",
            "request",
            prices["lambda_arm_per_million_requests"] / 1e6,
            1 / batch,
            "template + assumption",
        ),
        Line(
            f"Consumer Lambda compute ({settings.consumer_memory_mb} MB, {consumer_ms} ms per batch)",
            "GB-second",
            gb_s,
            settings.consumer_memory_mb / 1024 * consumer_ms / 1000 / batch,
            "template + assumption",
        ),
        Line(
            "State table writes (projection, handler record)",
            "write unit",
            prices["dynamodb_per_million_write_units"] / 1e6,
            m.consumer.write_units / n,
            "measured",
        ),
        Line(
            "State table reads (consistent)",
            "read unit",
            prices["dynamodb_per_million_read_units"] / 1e6,
            m.consumer.read_units / n,
            "measured",
        ),
        Line(
            "CloudWatch Logs ingestion",
            "byte",
            prices["logs_ingestion_per_gb"] / 2**30,
            log_bytes,
            f"measured + {platform} B of Lambda's own lines per invocation (assumption)" if platform else "measured",
        ),
    ]


NAMESPACE = "NowToPrintWebhooks"


def of_type_at(template: SamTemplate, resource_type: str, overrides: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The resources of a type that a deploy at these parameters creates (conditions decided)."""
    return {lid: res for lid, res in resources_at(template, overrides).items() if res["Type"] == resource_type}


def custom_metric_identities(template: SamTemplate, overrides: dict[str, str] | None = None) -> set[tuple[str, ...]]:
    """Distinct custom metrics (name and dimensions) the alarms and the dashboard of a deploy at these
    parameters refer to."""
    found: set[tuple[str, ...]] = set()
    for alarm in of_type_at(template, "AWS::CloudWatch::Alarm", overrides or {}).values():
        properties = alarm["Properties"]
        stats = [m["MetricStat"]["Metric"] for m in properties.get("Metrics", []) if "MetricStat" in m]
        if "MetricName" in properties:
            stats.append(properties)
        for metric in stats:
            if metric["Namespace"] == NAMESPACE:
                dims = tuple(sorted(f"{d['Name']}={json.dumps(d['Value'])}" for d in metric.get("Dimensions", [])))
                found.add((metric["MetricName"], *dims))
    for dashboard in of_type_at(template, "AWS::CloudWatch::Dashboard", overrides or {}).values():
        body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
        for widget in json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]:
            for metric in widget["properties"].get("metrics", []):
                fields = [f for f in metric if isinstance(f, str)]
                if fields and fields[0] == NAMESPACE:
                    dims = tuple(sorted(f"{k}={v}" for k, v in zip(fields[2::2], fields[3::2], strict=False)))
                    found.add((fields[1], *dims))
    return found


def fixed_monthly(
    template: SamTemplate, prices: dict[str, Any], a: dict[str, Any], overrides: dict[str, str] | None = None
) -> list[tuple[str, float, str]]:
    """Counted from what a deploy at these parameters creates: an alarm whose Condition is false at
    them (NoAcceptedEventsAlarm at NoEventAlarmHours=0) is not billed, nor a metric left out by Fn::If."""
    overrides = overrides or {}
    alarms = of_type_at(template, "AWS::CloudWatch::Alarm", overrides)
    alarm_metrics = sum(
        len([m for m in alarm["Properties"].get("Metrics", []) if "MetricStat" in m]) or 1 for alarm in alarms.values()
    )
    custom_metrics = len(custom_metric_identities(template, overrides))
    keys = of_type_at(template, "AWS::KMS::Key", overrides)
    queues = len(template.of_type("AWS::Serverless::Function")) - 2  # the consumer functions
    polls = queues * a["idle_pollers_per_queue"] * a["seconds_per_month"] / a["long_poll_seconds"]
    refreshes = a["warm_ingest_environments"] * a["seconds_per_month"] / a["keyring_refresh_seconds"]
    return [
        (
            f"SQS idle long polling ({queues} queues x {a['idle_pollers_per_queue']} pollers, assumption)",
            polls * prices["sqs_per_million_requests"] / 1e6,
            "assumption",
        ),
        ("Secrets Manager secret", prices["secrets_manager_per_secret_month"], "template"),
        (
            f"Secrets Manager reads (key cache refresh, {a['warm_ingest_environments']} environments)",
            refreshes / 1e4 * prices["secrets_manager_per_10k_calls"],
            "assumption",
        ),
        (
            f"CloudWatch alarms ({len(alarms)} alarms, {alarm_metrics} metrics)",
            alarm_metrics * prices["cloudwatch_alarm_metric_month"],
            "template",
        ),
        (
            f"Custom metrics (at most {custom_metrics}; billed only in months they are emitted)",
            custom_metrics * prices["cloudwatch_custom_metric_month"],
            "template",
        ),
        ("CloudWatch dashboard", prices["cloudwatch_dashboard_month"], "template"),
        (f"KMS keys ({len(keys)}: the alarm topic's)", len(keys) * prices["kms_key_month"], "template"),
    ]


def _within_units(size: int) -> str:
    units = write_units(size)
    return f"within {units} write unit{'s' if units > 1 else ''} ({units} KB)"


def render(template: SamTemplate, m: Measurements, overrides: dict[str, str] | None = None) -> str:
    prices = json.loads(PRICES.read_text())
    a = json.loads(ASSUMPTIONS.read_text())
    settings = settings_of(template, overrides or {})
    out = [
        f"Prices: {prices['region']}, read {prices['read_on']} ({prices['source']}).",
        f"Settings: front door {settings.front_door}, ingest {settings.ingest_memory_mb} MB, consumers "
        f"{settings.consumer_memory_mb} MB, batch size "
        f"{settings.batch_size}, batching window {settings.batching_window_s:g} s, history {settings.history_length} "
        f"entries, Lambda system logs {'on' if settings.platform_logs else 'off (WARN)'}.",
        f"Measured on moto: {m.webhooks} new webhooks ({ORDERS} orders x {EVENTS_PER_ORDER} events), one partner "
        # The size itself varies by a byte or two with the timestamps (numbers count significant digits).
        f"handler that does nothing; state item of a full order: {_within_units(m.state_item_bytes)}.",
        "",
    ]
    for volume in VOLUMES:
        lines = lines_for(volume, m, settings, prices, a)
        total = sum(line.price * line.units_per_webhook * volume for line in lines)
        per_million_total = total / volume * 1e6
        out += [
            f"### {volume // 1_000_000} million webhooks a month: ${total:,.2f} (${per_million_total:.2f} per million)",
            "",
            "| line item | unit price | units per webhook | per month | source |",
            "| --- | --- | --- | --- | --- |",
        ]
        for line in lines:
            per_bytes = line.unit == "byte"
            unit_price = f"${line.price * (2**30 if per_bytes else 1e6):.4g} per "
            unit_price += "GB" if per_bytes else f"million {line.unit}s"
            units = f"{line.units_per_webhook:,.0f} B" if per_bytes else f"{line.units_per_webhook:.3f}"
            monthly = line.price * line.units_per_webhook * volume
            out.append(f"| {line.item} | {unit_price} | {units} | ${monthly:,.2f} | {line.source} |")
        out.append("")
    out += tradeoffs(template, m, overrides or {})
    fixed = fixed_monthly(template, prices, a, overrides)
    out += ["### Fixed per month, whatever the volume", "", "| item | per month | source |", "| --- | --- | --- |"]
    out += [f"| {item} | ${cost:,.2f} | {source} |" for item, cost, source in fixed]
    out.append(f"| **total** | **${sum(cost for _, cost, _ in fixed):,.2f}** | |")
    out.append("")
    return "\n".join(out)


def tradeoffs(template: SamTemplate, m: Measurements, overrides: dict[str, str]) -> list[str]:
    """The levers: per million at 1 million a month, one parameter changed at a time."""
    out = [
        "### Levers, at 1 million a month (one parameter changed from the settings above)",
        "",
        "| parameter | value | per million | what changes |",
        "| --- | --- | --- | --- |",
    ]
    for window in ("0", "1", "10", "20", "60"):
        cost = per_million(template, m, {**overrides, "ConsumerBatchingWindowSeconds": window})
        out.append(f"| ConsumerBatchingWindowSeconds | {window} | ${cost:.2f} | events wait up to {window} s more |")
    a = json.loads(ASSUMPTIONS.read_text())
    for memory in ("128", "256", "512", "1024"):
        settings = settings_of(template, {**overrides, "IngestMemorySize": memory})
        calls = Counter({k: v / m.webhooks for k, v in m.ingest.calls.items()})
        duration = lambda_ms(calls, a["handler_cpu_ms_at_1769_mb"]["ingest"], settings.ingest_memory_mb, a)
        cost = per_million(template, m, {**overrides, "IngestMemorySize": memory})
        out.append(f"| IngestMemorySize | {memory} | ${cost:.2f} | about {duration:.0f} ms per webhook (model) |")
    for level in ("WARN", "INFO"):
        cost = per_million(template, m, {**overrides, "LambdaSystemLogLevel": level})
        note = "Lambda's start and report lines kept" if level == "INFO" else "no start and report lines"
        out.append(f"| LambdaSystemLogLevel | {level} | ${cost:.2f} | {note} |")
    for door, note in (
        ("HttpApi", "the default: API Gateway, stage throttling, an access log, custom domains, mTLS"),
        ("FunctionUrl", "no charge of its own; no throttling or access log, reserved concurrency is its limit"),
    ):
        cost = per_million(template, m, {**overrides, "FrontDoor": door})
        out.append(f"| FrontDoor | {door} | ${cost:.2f} | {note} |")
    return [*out, ""]


def per_million(template: SamTemplate, m: Measurements, overrides: dict[str, str] | None = None) -> float:
    """End-to-end variable cost per million webhooks at 1 million a month."""
    prices = json.loads(PRICES.read_text())
    a = json.loads(ASSUMPTIONS.read_text())
    lines = lines_for(1_000_000, m, settings_of(template, overrides or {}), prices, a)
    return sum(line.price * line.units_per_webhook for line in lines) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help=f"write the table into {DOC.relative_to(REPO_ROOT)}")
    parser.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE", help="a parameter override")
    args = parser.parse_args(argv)
    template = SamTemplate()
    os.environ.update({"POWERTOOLS_SERVICE_NAME": "cost-model", **global_environment(template)})
    overrides = dict(item.split("=", 1) for item in args.set)
    table = render(template, measure(template), overrides)
    if args.write:
        write_doc(table)
        print(f"wrote {DOC.relative_to(REPO_ROOT)}")
    print(table)
    return 0


START, END = "<!-- cost-table -->", "<!-- /cost-table -->"


def write_doc(table: str) -> None:
    text = DOC.read_text()
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    DOC.write_text(f"{head}{START}\n{table}\n{END}{tail}")


def committed_table() -> str:
    return DOC.read_text().split(START, 1)[1].split(END, 1)[0].strip("\n")


if __name__ == "__main__":
    raise SystemExit(main())
