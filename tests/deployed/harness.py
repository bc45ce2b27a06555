"""What the deployed suite uses to reach a stack: its outputs and parameters, the AWS APIs (boto3's
default session), the front door (HTTP, or Lambda Invoke for the HTTP API when asked), signing with
the stack's own key, polling with deadlines, and a ledger of what the suite created (removed at the
end). Nothing here knows about an emulator: the environment says where things are (conftest.py).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3

from devtools.lambda_events import FrontDoor as RouteTable
from ntp.deliveries import DEFAULT_SIGNATURE_HEADER, SAMPLE_DATA, encode, envelope
from ntp_webhooks import dedup, handler_runs
from ntp_webhooks.archive import GZIP_MAGIC, PREFIX, ArchiveRecord, decode_all
from ntp_webhooks.keyring import CURRENT
from ntp_webhooks.projection import KEY_ATTRIBUTE, state_key
from ntp_webhooks.routing import family_of, template_name
from ntp_webhooks.signature import sign

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Every event ID the suite sends starts with this, then the run's ID: `evt_e2e_<run>_<random>`.
EVENT_PREFIX = "evt_e2e_"
#: Entity IDs (orderId, quoteId) of the suite's events: `<prefix>_e2e_<run>_<random>`.
ENTITY_MARK = "_e2e_"
#: An entity of the suite's own per event family, so state items never mix with real ones.
ENTITY_FIELD = {"order": "orderId", "quote": "quoteId"}


# --- settings ---------------------------------------------------------------------------------------


class SettingsError(ValueError):
    """A variable of the suite's environment contract is malformed (reported as a usage error)."""


@dataclass(frozen=True)
class Resolve:
    """`NTP_E2E_RESOLVE`: `HOST=ADDRESS[:PORT]`, comma-separated, like curl's --resolve. HOST is a host
    name, or `*.suffix` for every name under suffix. A request to a matching host connects to
    ADDRESS:PORT (the URL's port when PORT is left out) and still sends the URL's host (Host header,
    TLS server name)."""

    rules: tuple[tuple[str, str, int | None], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Resolve:
        rules: list[tuple[str, str, int | None]] = []
        for entry in filter(None, (part.strip() for part in text.split(","))):
            pattern, sep, address = entry.partition("=")
            if not sep or not pattern or not address:
                raise SettingsError(f"NTP_E2E_RESOLVE entry {entry!r} is not HOST=ADDRESS[:PORT]")
            host, colon, port = address.rpartition(":")
            if colon and port.isdigit():
                rules.append((pattern.lower(), host, int(port)))
            else:
                rules.append((pattern.lower(), address, None))
        return cls(tuple(rules))

    def address(self, host: str, port: int) -> tuple[str, int]:
        host = host.lower()
        for pattern, address, to_port in self.rules:
            if host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:])):
                return address, to_port if to_port is not None else port
        return host, port


@dataclass(frozen=True)
class Settings:
    """The suite's environment (conftest.py's docstring is the contract)."""

    stack: str
    resolve: Resolve
    http_api_transport: str
    process_timeout: float
    archive_timeout: float
    dead_letter_timeout: float
    visibility_timeout: int | None  # None: the consumers' batching window + 15 s

    @classmethod
    def from_environment(cls, environ: os._Environ[str] | dict[str, str]) -> Settings:
        transport = environ.get("NTP_E2E_HTTP_API_TRANSPORT", "") or "https"
        if transport not in ("https", "invoke"):
            raise SettingsError(f"NTP_E2E_HTTP_API_TRANSPORT is {transport!r}: use https (default) or invoke")

        def seconds(name: str) -> float | None:
            text = environ.get(name, "")
            if not text:
                return None
            try:
                value = float(text)
            except ValueError:
                raise SettingsError(f"{name} is {text!r}: a number of seconds") from None
            if value <= 0:
                raise SettingsError(f"{name} must be positive")
            return value

        visibility = seconds("NTP_E2E_VISIBILITY_TIMEOUT")
        return cls(
            stack=environ["NTP_E2E_STACK"],
            resolve=Resolve.parse(environ.get("NTP_E2E_RESOLVE", "")),
            http_api_transport=transport,
            process_timeout=seconds("NTP_E2E_PROCESS_TIMEOUT") or 180,
            archive_timeout=seconds("NTP_E2E_ARCHIVE_TIMEOUT") or 420,
            dead_letter_timeout=seconds("NTP_E2E_DLQ_TIMEOUT") or 900,
            visibility_timeout=None if visibility is None else max(1, round(visibility)),
        )


# --- polling ------------------------------------------------------------------------------------------


def eventually[T](probe: Callable[[], T | None], timeout: float, what: str, interval: float = 1.0) -> T:
    """`probe()`'s first truthy result, trying every `interval` s for `timeout` s; else AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


# --- the stack ----------------------------------------------------------------------------------------


class Stack:
    """A deployed stack as its CloudFormation outputs and parameters describe it, with boto3 clients
    from the default session (credentials, region and endpoint from the usual AWS_* settings)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._clients: dict[str, Any] = {}
        self.session = boto3.Session()
        self.region = os.environ.get("AWS_REGION") or self.session.region_name
        if not self.region:
            raise SettingsError("no AWS region: set AWS_REGION (or a region in your AWS profile)")
        (described,) = self.cloudformation.describe_stacks(StackName=name)["Stacks"]
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
        self.parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])}

    def client(self, service: str) -> Any:
        """A client of any service (typed ones below for the services the suite uses most)."""
        if service not in self._clients:
            self._clients[service] = self.session.client(service, region_name=self.region)  # type: ignore[call-overload]
        return self._clients[service]

    @functools.cached_property
    def cloudformation(self) -> CloudFormationClient:
        return self.session.client("cloudformation", region_name=self.region)

    @functools.cached_property
    def dynamodb(self) -> DynamoDBClient:
        return self.session.client("dynamodb", region_name=self.region)

    @functools.cached_property
    def sqs(self) -> SQSClient:
        return self.session.client("sqs", region_name=self.region)

    @functools.cached_property
    def s3(self) -> S3Client:
        return self.session.client("s3", region_name=self.region)

    @functools.cached_property
    def secrets(self) -> SecretsManagerClient:
        return self.session.client("secretsmanager", region_name=self.region)

    def output(self, key: str) -> str:
        assert key in self.outputs, f"stack {self.name} has no output {key} (outputs: {sorted(self.outputs)})"
        return self.outputs[key]

    def parameter(self, key: str, default: str) -> str:
        return self.parameters.get(key) or default

    @property
    def webhook_url(self) -> str:
        return self.output("WebhookUrl")

    @property
    def door(self) -> str:
        """Which front door the stack has, from its WebhookUrl: `FunctionUrl` or `HttpApi`."""
        return "FunctionUrl" if ".lambda-url." in urlsplit(self.webhook_url).netloc else "HttpApi"

    @property
    def signature_header(self) -> str:
        return self.parameter("SignatureHeader", DEFAULT_SIGNATURE_HEADER)

    def queue_url(self, family: str) -> str:
        return self.output(f"{template_name(family)}QueueUrl")

    def dead_letter_queue_url(self, family: str) -> str:
        return self.output(f"{template_name(family)}DeadLetterQueueUrl")

    # --- items, as the library keys them ---

    def dedup_item(self, event_id: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self.dynamodb.get_item(
            TableName=self.output("DedupTableName"),
            Key={dedup.KEY_ATTRIBUTE: {"S": dedup_key(event_id)}},
            ConsistentRead=True,
        ).get("Item")
        return item

    def state_item(self, pk: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self.dynamodb.get_item(
            TableName=self.output("StateTableName"), Key={KEY_ATTRIBUTE: {"S": pk}}, ConsistentRead=True
        ).get("Item")
        return item

    def handled_item(self, key: str) -> dict[str, Any] | None:
        """The consumers' `handled#<key>` record (key: an event ID, or `<event id>#replay:<replay id>`)."""
        return self.state_item(handler_runs.KEY_PREFIX + key)

    def state_items_starting(self, prefix: str) -> list[dict[str, Any]]:
        paginator = self.dynamodb.get_paginator("scan")
        found: list[dict[str, Any]] = []
        for page in paginator.paginate(
            TableName=self.output("StateTableName"),
            FilterExpression="begins_with(#pk, :prefix)",
            ExpressionAttributeNames={"#pk": KEY_ATTRIBUTE},
            ExpressionAttributeValues={":prefix": {"S": prefix}},
            ConsistentRead=True,
        ):
            found += page.get("Items", [])
        return found


def dedup_key(event_id: str) -> str:
    """The dedup record's key: Powertools' idempotency key, the constant prefix and the MD5 of the JSON
    of the event ID (never the function's name: receiver pitfall 7)."""
    digest = hashlib.md5(json.dumps(event_id).encode(), usedforsecurity=False).hexdigest()
    return f"{dedup.KEY_PREFIX}#{digest}"


def done_steps(item: dict[str, Any] | None) -> set[str]:
    return set((item or {}).get("done", {}).get("SS", []))


def is_processed(item: dict[str, Any] | None) -> bool:
    """A `handled#` record whose event was archived and whose claim is released: a copy ran to the end."""
    return item is not None and "claimToken" not in item and any(s.startswith("#archive:") for s in done_steps(item))


def wait_processed(stack: Stack, delivery: Delivery, timeout: float) -> dict[str, Any]:
    """The event's `handled#` record once a consumer has run it to the end."""

    def probe() -> dict[str, Any] | None:
        item = stack.handled_item(delivery.event_id)
        return item if is_processed(item) else None

    return eventually(probe, timeout, f"{delivery.event_id} processed by the {delivery.family} consumer")


# --- deliveries ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One webhook the suite built: its exact bytes and what identifies its records."""

    event_id: str
    event_type: str
    body: bytes
    sender_request_id: str
    entity_id: str | None

    @property
    def family(self) -> str:
        return family_of(self.event_type)

    @property
    def state_key(self) -> str:
        """The state item the projection writes for it."""
        return state_key(self.family, self.entity_id or self.event_id)


class Run:
    """This run's ID, and the IDs it gives its events and entities."""

    def __init__(self) -> None:
        self.id = uuid.uuid4().hex[:8]

    @property
    def event_prefix(self) -> str:
        return f"{EVENT_PREFIX}{self.id}_"

    def delivery(self, event_type: str = "order.confirmed") -> Delivery:
        """A sample event of `event_type` with IDs of this run (its own entity, never a real one)."""
        family = family_of(event_type)
        event_id = f"{self.event_prefix}{uuid.uuid4().hex[:12]}"
        data = dict(SAMPLE_DATA.get(event_type, {}))
        entity_id = None
        if family in ENTITY_FIELD:
            entity_id = f"{family[:5]}{ENTITY_MARK}{self.id}_{uuid.uuid4().hex[:8]}"
            data[ENTITY_FIELD[family]] = entity_id
        body = encode(envelope(event_type, event_id=event_id, data=data))
        return Delivery(event_id, event_type, body, f"e2e-{uuid.uuid4().hex}", entity_id)


@dataclass(frozen=True)
class SigningKey:
    value: str
    version_id: str


def current_key(stack: Stack) -> SigningKey:
    """The stack's AWSCURRENT signing key (the secret's value as NowToPrint holds it)."""
    value = stack.secrets.get_secret_value(SecretId=stack.output("SigningSecretArn"), VersionStage=CURRENT)
    return SigningKey(value["SecretString"], value["VersionId"])


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]

    def __str__(self) -> str:
        return f"{self.status} {json.dumps(self.body)}"


def _answer(status: int, text: str, headers: dict[str, str]) -> Answer:
    try:
        parsed = json.loads(text) if text else {}
    except json.JSONDecodeError:
        parsed = {"raw": text}
    return Answer(status, parsed if isinstance(parsed, dict) else {"raw": parsed}, headers)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to `address` while the Host header and the TLS server name stay the URL's host."""

    def __init__(self, host: str, port: int, address: tuple[str, int], timeout: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._tls)
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection(self._address, self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


class FrontDoor:
    """The stack's webhook URL, as NowToPrint reaches it. `NTP_E2E_HTTP_API_TRANSPORT=invoke` (HTTP API
    only): the ingest function is invoked with the API Gateway payload 2.0 event that the route would
    send, for an emulator that serves no HTTP API requests."""

    def __init__(self, stack: Stack, settings: Settings) -> None:
        self.stack = stack
        self.url = stack.webhook_url
        self.kind = stack.door
        self.transport = "invoke" if self.kind == "HttpApi" and settings.http_api_transport == "invoke" else "http"
        self._resolve = settings.resolve

    def deliver(self, body: bytes, headers: dict[str, str]) -> Answer:
        if self.transport == "invoke":
            return self._invoke(body, headers)
        return self._post(body, headers)

    def _post(self, body: bytes, headers: dict[str, str], timeout: float = 30.0) -> Answer:
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = self._resolve.address(host, port)
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            connection = _PinnedHTTPSConnection(host, port, address, timeout)
        else:
            connection = http.client.HTTPConnection(*address, timeout=timeout)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request("POST", path, body=body, headers={"Host": parts.netloc, **headers})
            response = connection.getresponse()
            text = response.read().decode("utf-8", "replace")
            return _answer(response.status, text, {k.lower(): v for k, v in response.getheaders()})
        finally:
            connection.close()

    def _invoke(self, body: bytes, headers: dict[str, str]) -> Answer:
        parts = urlsplit(self.url)
        event = self._route_table.event(
            body, {"host": parts.netloc, "user-agent": "ntp-e2e", **headers}, method="POST", path=parts.path
        )
        api_id = (parts.hostname or "").split(".", 1)[0]
        event["requestContext"].update(apiId=api_id, domainName=parts.hostname, domainPrefix=api_id)
        result = self.stack.client("lambda").invoke(
            FunctionName=self.stack.output("IngestFunctionName"), Payload=json.dumps(event).encode()
        )
        payload = json.loads(result["Payload"].read() or b"null")
        assert "FunctionError" not in result, f"the ingest function failed: {result['FunctionError']}: {payload}"
        assert isinstance(payload, dict) and "statusCode" in payload, f"not an HTTP API response: {payload}"
        return _answer(int(payload["statusCode"]), payload.get("body") or "", payload.get("headers") or {})

    @functools.cached_property
    def _route_table(self) -> RouteTable:
        """The deployed HTTP API's routes to the ingest function, and the payload format of their
        integration, read from API Gateway (the API ID is WebhookUrl's first label)."""
        api_id = (urlsplit(self.url).hostname or "").split(".", 1)[0]
        v2 = self.stack.client("apigatewayv2")
        integrations = {i["IntegrationId"]: i for i in v2.get_integrations(ApiId=api_id)["Items"]}
        ingest = self.stack.output("IngestFunctionName")
        routes, versions = [], set()
        for route in v2.get_routes(ApiId=api_id)["Items"]:
            integration = integrations.get(route.get("Target", "").removeprefix("integrations/"), {})
            target = re.search(r":function:([^:/]+)", integration.get("IntegrationUri", ""))
            if target is not None and target.group(1) == ingest:
                routes.append(route["RouteKey"])
                versions.add(integration.get("PayloadFormatVersion", "1.0"))
        assert len(versions) == 1, f"the HTTP API {api_id}'s routes to {ingest}: {routes}, payload formats {versions}"
        return RouteTable("HttpApi", versions.pop(), tuple(routes))


class Sender:
    """Signs deliveries with the stack's current key (or any key) and sends them through the door;
    every delivery it sends is in the ledger."""

    def __init__(self, stack: Stack, door: FrontDoor, ledger: Ledger) -> None:
        self.stack = stack
        self.door = door
        self.ledger = ledger

    def headers(self, delivery: Delivery, key: str | None) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "X-Request-Id": delivery.sender_request_id}
        if key is not None:
            headers[self.stack.signature_header] = sign(delivery.body, key.encode())
        return headers

    def send(self, delivery: Delivery, key: str | None = None, *, body: bytes | None = None) -> Answer:
        """POST `delivery` signed with `key` (default: the stack's current key). `body` sends other
        bytes under the delivery's signature (a body changed in transit)."""
        self.ledger.sent(delivery)
        key = key if key is not None else current_key(self.stack).value
        return self.door.deliver(delivery.body if body is None else body, self.headers(delivery, key))

    def send_unsigned(self, delivery: Delivery, headers: dict[str, str] | None = None) -> Answer:
        self.ledger.sent(delivery)
        return self.door.deliver(delivery.body, {**self.headers(delivery, None), **(headers or {})})


# --- the archive --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Archived:
    key: str
    gzip: bool
    data: bytes  # the object's bytes, decompressed
    record: ArchiveRecord


def find_archived(stack: Stack, event_id: str, hour: str, seen: set[str]) -> Archived | None:
    """The archive object holding `event_id`'s record, looked for under the hour its state item names and
    the hours either side (Firehose files an object under the hour its buffer began). `seen`: the keys
    of objects read before without it (an object never changes), added to."""
    s3, bucket = stack.s3, stack.output("ArchiveBucketName")
    around = datetime.strptime(hour, "%Y/%m/%d/%H").replace(tzinfo=UTC)
    for offset in (0, -1, 1):
        prefix = f"{PREFIX}{(around + timedelta(hours=offset)).strftime('%Y/%m/%d/%H')}/"
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for listed in page.get("Contents", []):
                if listed["Key"] in seen:
                    continue
                seen.add(listed["Key"])
                raw = s3.get_object(Bucket=bucket, Key=listed["Key"])["Body"].read()
                compressed = raw[:2] == GZIP_MAGIC
                data = gzip.decompress(raw) if compressed else raw
                if event_id.encode() not in data:
                    continue
                for record in decode_all(data):
                    if record.event_id == event_id:
                        return Archived(listed["Key"], compressed, data, record)
    return None


def subscribed_handlers(delivery: Delivery) -> list[str]:
    """The names of the handlers business_logic.py subscribes to the delivery's event, as the consumers
    load them (the deployed consumers are built from this checkout)."""
    from ntp.replay import handler_names
    from ntp_webhooks.events import parse_event
    from ntp_webhooks.subscriptions import subscriptions

    handler_names()  # imports business_logic: its @on registrations
    return [handler.name for handler in subscriptions.handlers_for(parse_event(delivery.body))]


# --- the `ntp` CLI ------------------------------------------------------------------------------------


def ntp(stack: Stack, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`ntp <args> --stack <stack>` from this checkout's environment, as an operator runs it: the same
    AWS settings, with the suite's region made explicit (ntp would otherwise fall back to samconfig.toml's,
    not the profile's)."""
    script = Path(sys.executable).with_name("ntp")
    command = [str(script)] if script.exists() else [sys.executable, "-c", "from ntp.cli import run; run()"]
    return subprocess.run(
        [*command, *args, "--stack", stack.name],
        cwd=REPO_ROOT,
        env={**os.environ, "AWS_REGION": str(stack.region)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# --- what the suite created ---------------------------------------------------------------------------


@dataclass
class Ledger:
    """Every delivery the suite sent, and how to remove what they left: dedup records, `handled#`
    records (replays' too) and state items of this run's IDs.
    - `held`: events whose consumer claim the suite holds on purpose; their records stay (a consumer
      would write them again once the claim expires).
    - `dropped`: accepted events whose every message the suite deleted; nothing will process them."""

    stack: Stack
    run: Run
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    held: set[str] = field(default_factory=set)
    dropped: set[str] = field(default_factory=set)

    def sent(self, delivery: Delivery) -> None:
        self.deliveries[delivery.event_id] = delivery

    def unsettled(self, timeout: float) -> set[str]:
        """Wait (up to `timeout` s in all) until every accepted delivery is processed, so that no consumer
        writes its records after they are removed; returns the event IDs still unprocessed."""
        pending = {
            event_id
            for event_id in self.deliveries
            if event_id not in self.held | self.dropped and self.stack.dedup_item(event_id)
        }
        deadline = time.monotonic() + timeout
        while pending:
            pending = {e for e in pending if not is_processed(self.stack.handled_item(e))}
            if not pending or time.monotonic() >= deadline:
                break
            time.sleep(2)
        return pending

    def remove(self, timeout: float) -> list[str]:
        """Remove this run's records; returns one line per event whose records were kept, and why."""
        unsettled = self.unsettled(timeout)
        kept = [f"{e}: not processed within {timeout:.0f} s, its records are kept" for e in sorted(unsettled)]
        kept += [f"{e}: its claim is held by the suite, its records are kept" for e in sorted(self.held)]
        keep = unsettled | self.held
        ddb = self.stack.dynamodb
        for event_id in self.deliveries.keys() - keep:
            ddb.delete_item(
                TableName=self.stack.output("DedupTableName"),
                Key={dedup.KEY_ATTRIBUTE: {"S": dedup_key(event_id)}},
            )
        for pk in self._state_keys(keep):
            ddb.delete_item(TableName=self.stack.output("StateTableName"), Key={KEY_ATTRIBUTE: {"S": pk}})
        return kept

    def _state_keys(self, keep: set[str]) -> Iterator[str]:
        """This run's state items (found by their ID prefixes), but those of the events in `keep`."""
        kept_entities = {self.deliveries[e].state_key for e in keep if e in self.deliveries}
        prefixes = [handler_runs.KEY_PREFIX + self.run.event_prefix, f"workflow#{self.run.event_prefix}"]
        prefixes += [f"{family}#{family[:5]}{ENTITY_MARK}{self.run.id}_" for family in ENTITY_FIELD]
        for prefix in prefixes:
            for item in self.stack.state_items_starting(prefix):
                pk: str = item[KEY_ATTRIBUTE]["S"]
                owner = pk.removeprefix(handler_runs.KEY_PREFIX).split("#", 1)[0]
                if owner not in keep and pk not in kept_entities:
                    yield pk
