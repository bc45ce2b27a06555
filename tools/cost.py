"""`make cost`: what 1, 10 and 100 million webhooks a month cost, from the template and measurements.

Units per webhook come from three places, and the output says which:
- measured here, by running the pipeline (ingest, SQS, one consumer with one partner handler that does
  nothing) on moto for a typical order lifecycle: AWS calls by kind, DynamoDB write and read units
  from the items' sizes with DynamoDB's rounding, messages sent, log bytes;
- the template: memory sizes, batch size, batching window, history length, alarms, metrics;
- `make bench`'s latest record (docs/performance.md): the handlers' own CPU time per request and per
  record;
- assumptions (tools/cost_assumptions.json): AWS latencies, traffic spread evenly over the month
  and how it splits between the families, the share of duplicate deliveries, events per entity,
  Lambda's own log lines, idle polling.
Prices live in tools/prices.json with the date they were read. docs/cost.md holds the output;
tests/integration/test_cost.py fails when it is stale.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import math
import os
import random
import re
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from devtools import registrations
from devtools.deliveries import encode, envelope, signed_event
from devtools.function_output import captured
from devtools.pipeline import FAKE_AWS, Pipeline, environment, global_environment, hooked
from devtools.provision import resources_at
from devtools.sam_template import REPO_ROOT, SamTemplate
from ntp_webhooks.item_size import item_size, read_units, write_units
from ntp_webhooks.routing import FAMILIES

PRICES = REPO_ROOT / "tools" / "prices.json"
ASSUMPTIONS = REPO_ROOT / "tools" / "cost_assumptions.json"
DOC = REPO_ROOT / "docs" / "cost.md"
VOLUMES = (1_000_000, 10_000_000, 100_000_000)
#: The workload: orders with a full lifecycle, so that state items carry a full history.
ORDERS, EVENTS_PER_ORDER = 1, 25
#: Events of the one order measured per body size: the history (8 entries by default) is full.
BODY_EVENTS = 10
_WRITES = ("PutItem", "UpdateItem", "DeleteItem")
#: Firehose bills each record in 5 KB steps.
FIREHOSE_STEP = 5 * 1024
#: What Lambda sets when a request is traced: Powertools then adds `xray_trace_id` to every log line.
TRACE_HEADER = {"_X_AMZN_TRACE_ID": "Root=1-6757c0a2-4f6c8e1d2b3a49587c6d5e4f;Parent=53995c3f42cd8ad8;Sampled=0"}
#: Body sizes at which the totals are printed: the state item and the archive's billing step must
#: make them equal.
BODY_SIZES = (200, 1024, 4096)
#: Log fields whose width varies from run to run, set to a fixed representative width.
_VARIABLE = re.compile(r'"duration_ms":[0-9.]+')


@dataclass
class Phase:
    """What one function did for all the webhooks of the workload."""

    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    write_units: int = 0
    read_units: float = 0.0
    log_bytes: int = 0
    #: Bytes put on the archive's Firehose stream, and each record rounded up to Firehose's 5 KB step.
    archive_bytes: int = 0
    archive_billed_bytes: int = 0
    #: What the archive stores: each record gzipped alone (Firehose compresses whole objects, which
    #: does better: an upper bound).
    archive_stored_bytes: int = 0


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
        return _sized(item)

    def _before_call(self, params: dict[str, Any], event_name: str, **_: Any) -> None:
        if self.phase is None or getattr(self._inside, "active", False):
            return
        service_id, operation = event_name.split(".")[1:]
        service = service_id.replace("-", "")
        self.phase.calls[(service, operation)] += 1
        self._params = params
        if service == "firehose":
            size = len(params["Record"]["Data"])
            self.phase.archive_bytes += size
            self.phase.archive_billed_bytes += math.ceil(size / FIREHOSE_STEP) * FIREHOSE_STEP
            self.phase.archive_stored_bytes += len(gzip.compress(_steady(params["Record"]["Data"]), mtime=0))
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
                new_size = max(new_size, _sized(self._params["Item"]))
            self.phase.write_units += write_units(max(self._before["size"], new_size))
        elif operation == "GetItem":
            size = _sized(parsed.get("Item", {}))
            self.phase.read_units += read_units(size, consistent=bool(self._params.get("ConsistentRead")))


@dataclass
class Measurements:
    webhooks: int
    ingest: Phase
    consumer: Phase
    messages_sent: int
    state_item_bytes: int
    #: Re-deliveries of accepted events (the sender's retries): what each costs the ingest.
    duplicate: Phase = field(default_factory=Phase)
    duplicates: int = 0
    body_bytes: int = 0  # mean body size of the workload
    #: Sizes of the items each webhook leaves behind: dedup record, `handled#` record.
    dedup_item_bytes: int = 0
    handled_item_bytes: int = 0


#: Values that differ from run to run (IDs, times): fixed before the archive record is gzipped, so
#: that its compressed size, which depends on the characters, is the same on every run. The metadata
#: line is all IDs and times; in the body, only the event's ID and timestamp vary.
_VOLATILE_META = re.compile(rb"[0-9A-Za-z]")
_VOLATILE_BODY = re.compile(rb"evt_[0-9a-f]{32}|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def _sized(item: dict[str, Any] | None) -> int:
    """An item's DynamoDB size with every number at its full width: a number's size counts its
    significant digits, so a timestamp or TTL that happens to end in zeros would make the size (and
    the committed table) differ from run to run."""
    return item_size(_full_width(item)) if item else 0


def _full_width(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: (v.replace("0", "1") if k == "N" and isinstance(v, str) else _full_width(v)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_full_width(v) for v in value]
    return value


def _steady(data: bytes) -> bytes:
    meta, _, rest = data.partition(b"\n")
    values = re.sub(rb'"[^"]*"', lambda m: _VOLATILE_META.sub(b"0", m.group(0)), meta)
    return values + b"\n" + _VOLATILE_BODY.sub(lambda m: b"0" * len(m.group(0)), rest)


#: The service name of metric lines: a function module imported earlier in the same process (tests)
#: keeps the name it was imported with; counted at the template's.
_SERVICE = re.compile(r'"service":"[^"]*"')


def _normalized_bytes(text: str, service: str) -> int:
    named = f'"service":"{service}"'
    return sum(
        len(_SERVICE.sub(named, _VARIABLE.sub('"duration_ms":12.3', line)).encode()) + 1
        for line in text.splitlines()
        if line
    )


def measure(
    template: SamTemplate, body_bytes: int | None = None, orders: int = ORDERS, events: int = EVENTS_PER_ORDER
) -> Measurements:
    """Runs the workload on moto and counts what each function did per webhook (warm environments);
    with `body_bytes`, every body is padded to that size."""
    with _pipeline(template) as (pipeline, meter):
        return _run(pipeline, meter, body_bytes, orders, events)


@contextlib.contextmanager
def _pipeline(template: SamTemplate) -> Iterator[tuple[Pipeline, Meter]]:
    """A pipeline on moto with one partner handler that does nothing, and a meter on its calls."""
    from moto import mock_aws

    # The functions' own environment (the service name is in every metric line), whoever calls this.
    with environment({**FAKE_AWS, **TRACE_HEADER, **global_environment(template)}), mock_aws():
        meter = Meter()
        with meter.installed(), registrations.temporary(without_examples=True) as subscriptions:
            subscriptions.on("order", name="partner-noop")(lambda event: None)
            yield Pipeline(template), meter


def _padded(payload: dict[str, Any], size: int | None) -> bytes:
    """The payload with order lines, then a note, added up to `size` bytes: varied text that
    compresses as real JSON does (a run of one letter would flatter the archive's gzip)."""
    if size is None:
        return encode(payload)
    rng = random.Random(size)  # noqa: S311 # nosec B311 - deterministic filler, not a secret
    data: dict[str, Any] = {**payload["data"], "notes": ""}
    padded = {**payload, "data": data}
    while True:
        line = {"sku": f"SKU-{rng.randrange(10**6):06d}", "qty": rng.randrange(1, 500), "paper": rng.choice(_PAPERS)}
        trial = {**padded, "data": {**data, "lines": [*data.get("lines", []), line]}}
        if len(encode(trial)) > size:
            break
        padded, data = trial, trial["data"]
    data["notes"] = "x" * max(0, size - len(encode(padded)))
    return encode(padded)


_PAPERS = ("gloss 170g", "matt 300g", "uncoated 90g", "silk 135g", "recycled 120g")


def _run(
    pipeline: Pipeline,
    meter: Meter,
    body_bytes: int | None,
    order_count: int,
    events: int,
    *,
    first_order: int = 555001,
) -> Measurements:
    # As deployed (the template's Sub resolved), whatever name the functions were imported with.
    service = pipeline.stack.function_environment(pipeline.template, "IngestFunction")["POWERTOOLS_SERVICE_NAME"]
    ingest, consumer, duplicate = Phase(), Phase(), Phase()
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
    orders = [f"ord_{first_order + n}" for n in range(order_count)]
    started = datetime.now(UTC) - timedelta(hours=events)
    payloads = [
        envelope(f"order.step_{step:02d}", timestamp=started + timedelta(hours=step), data={"orderId": order})
        for step in range(events)
        for order in orders
    ]
    with captured():  # warm both functions: cold starts load keys and clients
        pipeline.deliver(signed_event(encode(envelope("order.created", data={"orderId": "ord_warm"}))))
        poller.drain()
    metering = True
    bodies = [_padded(payload, body_bytes) for payload in payloads]

    def deliver(body: bytes, phase: Phase, expected: int) -> None:
        with captured() as output:
            meter.phase = phase
            status = pipeline.deliver(_delivery(body))["statusCode"]
            meter.phase = None
        if status != expected:
            raise RuntimeError(f"the workload's webhook got {status}, not {expected}")
        phase.log_bytes += _normalized_bytes(output.getvalue(), service)

    for body in bodies:
        deliver(body, ingest, 202)
        with captured() as output:
            result = poller.poll_once()
        if (result.received, result.failed) != (1, 0):
            raise RuntimeError(f"the consumer did not process the webhook: {result}")
        consumer.log_bytes += _normalized_bytes(output.getvalue(), service)
    resent = bodies[:: max(1, len(bodies) // 10)]  # the sender's retries of events already accepted
    for body in resent:
        deliver(body, duplicate, 200)
    ddb, refs = boto3.client("dynamodb"), pipeline.stack.refs
    item: Any = ddb.get_item(TableName=refs["StateTable"], Key={"pk": {"S": f"order#{orders[0]}"}})["Item"]
    event_id = json.loads(bodies[-1])["id"]
    handled: Any = ddb.get_item(TableName=refs["StateTable"], Key={"pk": {"S": f"handled#{event_id}"}})["Item"]
    dedup_items: Any = ddb.scan(TableName=refs["DedupTable"])["Items"]  # their mean: scan order varies
    return Measurements(
        len(payloads),
        ingest,
        consumer,
        ingest.calls[("sqs", "SendMessage")],
        _sized(item),
        duplicate=duplicate,
        duplicates=len(resent),
        body_bytes=sum(map(len, bodies)) // len(bodies),
        dedup_item_bytes=sum(map(_sized, dedup_items)) // max(1, len(dedup_items)),
        handled_item_bytes=_sized(handled),
    )


def _delivery(body: bytes) -> dict[str, Any]:
    """A signed delivery as NowToPrint sends it: with its own 36-character request ID."""
    return signed_event(body, headers={"X-Request-Id": str(uuid.uuid4())})


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
    archive_retention_days: int
    log_retention_days: int
    dedup_retention_days: int
    handled_retention_days: int
    archive_buffer_seconds: int  # Firehose writes one object per buffer interval (at these volumes)


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
    return Settings(
        front_door=parameters["FrontDoor"],
        ingest_memory_mb=int(parameters["IngestMemorySize"]),
        consumer_memory_mb=int(parameters["ConsumerMemorySize"]),
        batch_size=int(parameters["ConsumerBatchSize"]),
        batching_window_s=float(parameters["ConsumerBatchingWindowSeconds"]),
        history_length=int(parameters["StateHistoryLength"]),
        platform_logs=parameters["LambdaSystemLogLevel"] != "WARN",
        access_log_bytes=access_log_bytes(template),
        archive_retention_days=int(parameters["ArchiveRetentionDays"]),
        log_retention_days=int(parameters["LogRetentionDays"]),
        dedup_retention_days=int(parameters["DedupRetentionDays"]),
        handled_retention_days=int(template.function("OrderConsumerFunction").environment["HANDLED_RETENTION_DAYS"]),
        archive_buffer_seconds=int(
            template.resources["ArchiveStream"]["Properties"]["ExtendedS3DestinationConfiguration"]["BufferingHints"][
                "IntervalInSeconds"
            ]
        ),
    )


def handler_cpu_ms() -> dict[str, float]:
    """The handlers' own CPU time, from the latest `make bench ARGS=--write` (docs/performance.md):
    per ingest request, and per consumer record (a batch of 10, divided)."""
    from tools.bench import committed_block

    block = committed_block()
    ingest = re.search(r"with the SDK's client-side work:\s+new\s+([0-9.]+) ms", block)
    batch = re.search(r"AWS answered by botocore's Stubber:\s+([0-9.]+) ms per batch", block)
    if ingest is None or batch is None:
        raise RuntimeError("no `make bench` record in docs/performance.md: run `make bench ARGS=--write`")
    return {"ingest": float(ingest.group(1)), "consumer_per_record": float(batch.group(1)) / 10}


def batch_fill(volume: int, settings: Settings, assumptions: dict[str, Any], share: float = 1.0) -> float:
    """Records per consumer invocation on one family queue: the events of that family (`share` of the
    volume) that arrive during the batching window, with traffic spread evenly over the month (an
    assumption), at least one and at most the batch size. Each family queue has its own event source
    mapping, so batches never mix families."""
    rate = volume * share / assumptions["seconds_per_month"]
    return float(min(settings.batch_size, max(1.0, rate * settings.batching_window_s)))


def invocations_per_record(volume: int, settings: Settings, assumptions: dict[str, Any]) -> float:
    """Consumer invocations (and receive + delete pairs) per webhook, over the three family queues."""
    shares: dict[str, float] = assumptions["family_shares"]
    return sum(share / batch_fill(volume, settings, assumptions, share) for share in shares.values())


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
    per_invocation = invocations_per_record(volume, settings, a)
    batch = 1 / per_invocation  # records per consumer invocation, over the families
    per_call = {k: v / n for k, v in m.ingest.calls.items()}
    consumer_calls = Counter({k: v / n for k, v in m.consumer.calls.items()})
    cpu = {**a["handler_cpu_ms_at_1769_mb"], **handler_cpu_ms()}
    ingest_ms = math.ceil(lambda_ms(Counter(per_call), cpu["ingest"], settings.ingest_memory_mb, a))
    consumer_ms = math.ceil(
        lambda_ms(consumer_calls, cpu["consumer_per_record"], settings.consumer_memory_mb, a) * batch
        + cpu["consumer_per_invocation"] * max(1.0, 1769 / settings.consumer_memory_mb)
    )
    gb_s = prices["lambda_arm_per_gb_second"]
    platform = a["lambda_platform_log_bytes_per_invocation"] if settings.platform_logs else 0
    access_log = settings.access_log_bytes if settings.front_door == "HttpApi" else 0
    log_bytes = m.ingest.log_bytes / n + m.consumer.log_bytes / n + platform * (1 + per_invocation)
    dup = a["duplicate_share"]
    dup_calls = Counter({k: v / m.duplicates for k, v in m.duplicate.calls.items()})
    dup_ms = math.ceil(lambda_ms(dup_calls, cpu["ingest"], settings.ingest_memory_mb, a))
    door_price = prices["http_api_per_million_requests"] / 1e6 if settings.front_door == "HttpApi" else 0.0
    door = "API Gateway HTTP API requests" if settings.front_door == "HttpApi" else "Lambda function URL (no charge)"
    gb = 2**30
    logs_stored = (log_bytes + access_log) * settings.log_retention_days / 30
    dynamo_stored = (
        m.dedup_item_bytes * settings.dedup_retention_days / 30
        + m.handled_item_bytes * settings.handled_retention_days / 30
        + m.state_item_bytes / a["events_per_entity"]  # one item per entity, kept
    )
    archive_stored = m.consumer.archive_stored_bytes / n * settings.archive_retention_days / 30
    lines = [
        Line(door, "request", door_price, 1, "template"),
        Line("Ingest Lambda requests", "request", prices["lambda_arm_per_million_requests"] / 1e6, 1, "measured"),
        Line(
            f"Ingest Lambda compute ({settings.ingest_memory_mb} MB, {ingest_ms} ms)",
            "GB-second",
            gb_s,
            settings.ingest_memory_mb / 1024 * ingest_ms / 1000,
            "template + bench + assumption",
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
            f"SQS ReceiveMessage + DeleteMessageBatch ({batch:.1f} records per batch over the 3 family queues)",
            "request",
            prices["sqs_per_million_requests"] / 1e6,
            2 * per_invocation,
            "template + assumption",
        ),
        Line(
            "Consumer Lambda requests",
            "request",
            prices["lambda_arm_per_million_requests"] / 1e6,
            per_invocation,
            "template + assumption",
        ),
        Line(
            f"Consumer Lambda compute ({settings.consumer_memory_mb} MB, {consumer_ms} ms per batch)",
            "GB-second",
            gb_s,
            settings.consumer_memory_mb / 1024 * consumer_ms / 1000 * per_invocation,
            "template + bench + assumption",
        ),
        Line(
            "State table writes (claim, projection, completion)",
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
            "Archive: Firehose ingestion (each record billed in 5 KB steps)",
            "byte",
            prices["firehose_per_gb_in_5kb_steps"] / gb,
            m.consumer.archive_billed_bytes / n,
            "measured",
        ),
        Line(
            "CloudWatch Logs ingestion: the functions",
            "byte",
            prices["logs_ingestion_per_gb"] / gb,
            log_bytes,
            f"measured + {platform} B of Lambda's own lines per invocation (assumption)" if platform else "measured",
        ),
    ]
    if access_log:
        lines.append(
            Line(
                "CloudWatch Logs ingestion: the HTTP API access log",
                "byte",
                prices["logs_ingestion_per_gb"] / gb,
                access_log,
                "template (its format, typical values)",
            )
        )
    lines += [
        Line(
            f"Duplicates ({dup:.0%} of deliveries, assumption): door, ingest request and {dup_ms} ms, "
            "dedup read, log line",
            "webhook",
            door_price
            + prices["lambda_arm_per_million_requests"] / 1e6
            + gb_s * settings.ingest_memory_mb / 1024 * dup_ms / 1000
            + prices["dynamodb_per_million_write_units"] / 1e6 * m.duplicate.write_units / m.duplicates
            + prices["dynamodb_per_million_read_units"] / 1e6 * m.duplicate.read_units / m.duplicates
            + prices["logs_ingestion_per_gb"] / gb * (m.duplicate.log_bytes / m.duplicates + access_log),
            dup,
            "measured + assumption",
        ),
        Line(
            f"Storage, one month's webhooks: archive (S3, gzip, {settings.archive_retention_days} days)",
            "byte",
            prices["s3_standard_per_gb_month"] / gb,
            archive_stored,
            "measured + template",
        ),
        Line(
            "Storage: DynamoDB with point-in-time recovery (dedup and handled records until their TTL, "
            f"state items, {a['events_per_entity']} events per entity)",
            "byte",
            (prices["dynamodb_storage_per_gb_month"] + prices["dynamodb_pitr_per_gb_month"]) / gb,
            dynamo_stored,
            "measured + template + assumption",
        ),
        Line(
            f"Storage: CloudWatch Logs ({settings.log_retention_days} days, as ingested)",
            "byte",
            prices["logs_storage_per_gb_month"] / gb,
            logs_stored,
            "measured + template",
        ),
    ]
    return lines


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
    buffer = settings_of(template, overrides).archive_buffer_seconds
    queues = len(FAMILIES)  # a queue and a consumer per family
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
        (
            f"Archive: S3 PUTs by Firehose (one object per {buffer} s buffer, at these volumes)",
            a["seconds_per_month"] / buffer * prices["s3_put_per_1000"] / 1000,
            "template",
        ),
        ("CloudWatch dashboard", prices["cloudwatch_dashboard_month"], "template"),
        (f"KMS keys ({len(keys)}: the alarm topic's)", len(keys) * prices["kms_key_month"], "template"),
    ]


def _within_units(size: int) -> str:
    units = write_units(size)
    return f"within {units} write unit{'s' if units > 1 else ''} ({units} KB)"


def measure_bodies(template: SamTemplate) -> dict[int, Measurements]:
    """One order's events per body size, enough for a full history; an order of its own per size, on
    one pipeline (provisioning is the slow part)."""
    with _pipeline(template) as (pipeline, meter):
        return {
            size: _run(pipeline, meter, size, 1, BODY_EVENTS, first_order=556001 + index)
            for index, size in enumerate(BODY_SIZES)
        }


#: Per million webhooks, at 1 and at 10 million a month (the archive issue's targets).
TARGETS = {1_000_000: 6.50, 10_000_000: 6.00}


def targets(template: SamTemplate, m: Measurements, overrides: dict[str, str]) -> list[str]:
    """Each target, met or not, and what the consumer's claim (each handler once even for two copies
    processed at once) costs: a write unit per record where a read unit did before it."""
    prices = json.loads(PRICES.read_text())
    a = json.loads(ASSUMPTIONS.read_text())
    settings = settings_of(template, overrides)
    claim = (prices["dynamodb_per_million_write_units"] - prices["dynamodb_per_million_read_units"]) / 1e6
    out = ["### Against the targets", "", "| volume | per million | target | without the consumer's claim |"]
    out.append("| --- | --- | --- | --- |")
    for volume, target in TARGETS.items():
        total = sum(x.price * x.units_per_webhook for x in lines_for(volume, m, settings, prices, a)) * 1e6
        verdict = "met" if total <= target else "**missed**"
        out.append(
            f"| {volume // 1_000_000} million | ${total:.2f} | ${target:.2f} ({verdict}) | ${total - claim * 1e6:.2f} |"
        )
    return [*out, ""]


def by_body_size(template: SamTemplate, bodies: dict[int, Measurements], overrides: dict[str, str]) -> list[str]:
    """Totals with every body padded to a size: what is billed per byte of body must not show."""
    prices = json.loads(PRICES.read_text())
    a = json.loads(ASSUMPTIONS.read_text())
    settings = settings_of(template, overrides)
    out = [
        "### By body size (every body padded to it; real order events are 1-5 KB)",
        "",
        "| body | per million at 1 million a month | at 10 million | at 100 million |",
        "| --- | --- | --- | --- |",
    ]
    for size, m in bodies.items():
        totals = [
            sum(x.price * x.units_per_webhook for x in lines_for(v, m, settings, prices, a)) * 1e6 for v in VOLUMES
        ]
        out.append(f"| {size:,} B | " + " | ".join(f"${t:.2f}" for t in totals) + " |")
    return [*out, ""]


def render(
    template: SamTemplate,
    m: Measurements,
    overrides: dict[str, str] | None = None,
    bodies: dict[int, Measurements] | None = None,
) -> str:
    prices = json.loads(PRICES.read_text())
    a = json.loads(ASSUMPTIONS.read_text())
    settings = settings_of(template, overrides or {})
    out = [
        f"Prices: {prices['region']}, read {prices['read_on']} ({prices['source']}).",
        f"Settings: front door {settings.front_door}, ingest {settings.ingest_memory_mb} MB, consumers "
        f"{settings.consumer_memory_mb} MB, batch size "
        f"{settings.batch_size}, batching window {settings.batching_window_s:g} s, history {settings.history_length} "
        f"entries, Lambda system logs {'on' if settings.platform_logs else 'off (WARN)'}.",
        f"Measured on moto: {m.webhooks} new webhooks ({ORDERS} order{'s' if ORDERS > 1 else ''} x "
        f"{EVENTS_PER_ORDER} events), one partner "
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
    if bodies:
        out += by_body_size(template, bodies, overrides or {})
    out += targets(template, m, overrides or {})
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
        duration = lambda_ms(calls, handler_cpu_ms()["ingest"], settings.ingest_memory_mb, a)
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
    table = render(template, measure(template), overrides, measure_bodies(template))
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
