"""The promise at its edges (issue 16): no key or body in any log, a 202 that can always be kept, a
deadline per request. Each through the functions as SAM invokes them, on moto."""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest
from botocore.exceptions import ClientError

from devtools.lambda_events import LambdaContext, signed_event
from devtools.pipeline import hooked, reused_client
from devtools.provision import Stack
from devtools.rotation_service import RotationService
from ntp.deliveries import LOCAL_DEV_SECRET, encode, envelope
from ntp.operations import read_state
from ntp_webhooks.item_size import ITEM_LIMIT_BYTES, PARTITION_KEY_LIMIT_BYTES
from ntp_webhooks.routing import template_name
from tests.conftest import FAMILIES, TEMPLATE, Faults, archived, function_env, load_function_module, queue_poller
from tests.dynamodb_writes import ItemsAfterWrites


def invoke(handler: ModuleType, event: dict[str, Any], context: LambdaContext | None = None) -> dict[str, Any]:
    response: dict[str, Any] = handler.lambda_handler(event, context or LambdaContext(function_name="IngestFunction"))
    return response


def drain(consumer: ModuleType, stack: Stack, family: str) -> int:
    poller = queue_poller(stack, family, consumer.lambda_handler)
    failed = 0
    for _ in range(3):
        result = poller.poll_once()
        failed += result.failed
        if result.received == 0:
            break
    return failed


# --- 1. no secret, key or body at any log level -----------------------------------------------------


#: Every level the template lets an operator choose, for the product's lines and the libraries'.
LOG_LEVELS = TEMPLATE.doc["Parameters"]["LogLevel"]["AllowedValues"]
LIBRARY_LOG_LEVELS = TEMPLATE.doc["Parameters"]["LibraryLogLevel"]["AllowedValues"]


def spellings(secret: str) -> list[str]:
    """`secret` as a log line could hold it: plain, hex, and base64 at each of the three alignments it
    can have inside a longer base64 text (Firehose's PutRecord carries the archive record so)."""
    raw = secret.encode()
    found = [secret, raw.hex(), raw.hex().upper()]
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode()
        found.append(encoded[(4 * shift + 2) // 3 : 8 * (shift + len(raw)) // 6])
    return found


@dataclass
class Logged:
    """What the functions logged: the lines as written, and the log records themselves."""

    lines: io.StringIO = field(default_factory=io.StringIO)
    records: list[logging.LogRecord] = field(default_factory=list)

    def text(self) -> str:
        return self.lines.getvalue() + "".join(repr(vars(record)) for record in self.records)


class _Keeping(logging.StreamHandler):  # type: ignore[type-arg]
    def __init__(self, logged: Logged) -> None:
        super().__init__(logged.lines)
        self.logged = logged

    def emit(self, record: logging.LogRecord) -> None:
        self.logged.records.append(record)
        super().emit(record)


@contextlib.contextmanager
def logging_as_lambda(log_level: str, library_log_level: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Logged]:
    """The Lambda runtime's set-up with JSON logs at ApplicationLogLevel=`log_level`: the root logger at
    that level with one handler writing every record; the Powertools logger at it too; the libraries at
    `library_log_level`, as the functions' cold start sets them from LIBRARY_LOG_LEVEL."""
    from ntp_webhooks.observability import LIBRARY_LOG_LEVEL_VARIABLE, logger, quiet_libraries

    logged = Logged()
    handler = _Keeping(logged)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root, own = logging.getLogger(), logging.getLogger(logger.name)
    saved = root.level, own.level
    root.setLevel(log_level)
    own.setLevel(log_level)
    root.addHandler(handler)
    own.addHandler(handler)
    monkeypatch.setenv("AWS_LAMBDA_LOG_LEVEL", log_level)
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", log_level)
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")  # a partner's debugging switch: still no body
    quiet_libraries({LIBRARY_LOG_LEVEL_VARIABLE: library_log_level})
    try:
        yield logged
    finally:
        quiet_libraries({})
        root.removeHandler(handler)
        own.removeHandler(handler)
        root.setLevel(saved[0])
        own.setLevel(saved[1])


#: The LogLevel x LibraryLogLevel pairs that can show a line no other pair shows. A level only filters:
#: a record's text does not depend on the threshold (no code of ours asks a logger for its level), so
#: DEBUG for our lines and DEBUG for the libraries' writes every line any other pair writes, and more.
#: The defaults, what every stack runs unless its operator chooses, are kept by name too. The other 14
#: pairs took half a minute and could only fail where DEBUG x DEBUG fails.
LEVEL_PAIRS = sorted(
    {
        ("DEBUG", "DEBUG"),
        (TEMPLATE.doc["Parameters"]["LogLevel"]["Default"], TEMPLATE.doc["Parameters"]["LibraryLogLevel"]["Default"]),
    }
)


def test_debug_is_the_most_verbose_level_an_operator_can_choose() -> None:
    """What makes DEBUG x DEBUG cover every other pair: DEBUG is allowed for both, and no allowed level
    lets through a record that DEBUG filters out."""
    for allowed in (LOG_LEVELS, LIBRARY_LOG_LEVELS):
        assert "DEBUG" in allowed
        assert all(logging.getLevelName(level) >= logging.DEBUG for level in allowed), allowed


@pytest.mark.parametrize(("log_level", "library_log_level"), LEVEL_PAIRS)
def test_no_level_logs_a_key_a_new_key_or_a_body(
    stack: Stack,
    ingest_env: dict[str, str],
    consumer_handlers: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    log_level: str,
    library_log_level: str,
) -> None:
    """Issue 27, item 4: at every LogLevel x LibraryLogLevel (LEVEL_PAIRS: the pairs that can differ),
    real botocore calls on moto (GetSecretValue in ingest, SendMessage, the consumer's PutRecord to
    Firehose, rotation's PutSecretValue) leave no key, no new key and no body in any line or log
    record, in plain, hex or base64."""
    marker = "body-marker-4f1c9a"
    assert any(s in base64.b64encode(b"metadata\n" + marker.encode()).decode() for s in spellings(marker))
    secret_id = stack.refs["WebhookSigningSecret"]
    keys = [LOCAL_DEV_SECRET]
    with logging_as_lambda(log_level, library_log_level, monkeypatch) as logged:
        function_env(stack, TEMPLATE, "IngestFunction", monkeypatch)
        ingest = load_function_module(TEMPLATE, "IngestFunction")
        payload = envelope("order.created", data={"orderId": "ord_log", "note": marker})
        assert invoke(ingest, signed_event(encode(payload), keys[-1]))["statusCode"] == 202
        assert invoke(ingest, signed_event(encode(payload), "a-wrong-key"))["statusCode"] == 401
        assert drain(consumer_handlers("order"), stack, "order") == 0
        function_env(stack, TEMPLATE, "RotationFunction", monkeypatch)
        rotation = load_function_module(TEMPLATE, "RotationFunction")
        token = RotationService(secret_id, functools.partial(rotation.lambda_handler, context=LambdaContext())).rotate()
    secrets = reused_client("secretsmanager")
    keys.append(secrets.get_secret_value(SecretId=secret_id, VersionId=token)["SecretString"])
    written = logged.text() + "".join(capsys.readouterr())
    if log_level in ("DEBUG", "INFO"):
        assert "rotation step" in written and "event processed" in written  # the functions did log
    if library_log_level == "DEBUG":  # botocore did log its calls, without their values
        assert "Making request for OperationModel(name=PutRecordBatch)" in written
    leaked = {secret: found for secret in (*keys, marker) if (found := [s for s in spellings(secret) if s in written])}
    assert not leaked, f"LogLevel={log_level} LibraryLogLevel={library_log_level}: {leaked}"


def test_the_library_switch_is_off_by_default_and_documented() -> None:
    parameter = TEMPLATE.doc["Parameters"]["LibraryLogLevel"]
    assert parameter["Default"] == "WARNING" and "secret" in parameter["Description"]
    assert TEMPLATE.doc["Globals"]["Function"]["Environment"]["Variables"]["LIBRARY_LOG_LEVEL"] == {
        "Ref": "LibraryLogLevel"
    }
    assert logging.getLogger("botocore").getEffectiveLevel() == logging.WARNING


# --- 4, 5. every 202 is kept --------------------------------------------------------------------------


@pytest.fixture
def writes(stack: Stack) -> Iterator[ItemsAfterWrites]:
    """What each state-table write asks DynamoDB to store, computed from the request (moto stores
    items over 400 KB; AWS refuses them)."""
    recorder = ItemsAfterWrites(reused_client("dynamodb"), stack.refs["StateTable"])
    with hooked("provide-client-params.dynamodb.*", recorder.before):
        yield recorder


@pytest.mark.parametrize(
    ("event", "data"),
    [
        ("order.created", {"orderId": "o" * 2043}),
        ("order.created", {"orderId": "é" * 1100}),
        ("quote.received", {"quoteId": "q" * 2100, "rfqId": "rfq_1"}),
    ],
    ids=["2043-ascii", "1100-e-acute", "2100-quoteId"],
)
def test_entity_ids_past_the_key_limit_are_accepted_and_kept(
    stack: Stack,
    ingest_env: dict[str, str],
    consumer_handlers: Any,
    writes: ItemsAfterWrites,
    event: str,
    data: dict[str, str],
) -> None:
    ingest = load_function_module(TEMPLATE, "IngestFunction")
    family = event.split(".", maxsplit=1)[0]
    assert invoke(ingest, signed_event(encode(envelope(event, data=data))))["statusCode"] == 202
    assert drain(consumer_handlers(family), stack, family) == 0
    assert writes.keys and all(len(key.encode()) <= PARTITION_KEY_LIMIT_BYTES for key in writes.keys)
    assert any(key.startswith("handled#") for key in writes.keys)  # the completion records' keys too
    entity_id = data[f"{family}Id"]
    item = read_state(reused_client("dynamodb"), stack.refs["StateTable"], family, entity_id)
    assert item is not None and item["entityId"] == entity_id and item["status"] == event.split(".")[1]


def test_a_large_field_is_not_stored_twice(
    stack: Stack, ingest_env: dict[str, str], consumer_handlers: Any, writes: ItemsAfterWrites
) -> None:
    """Finding 5: a 210,000-character rfqId in a body under MaxBodyBytes fits the item limit."""
    ingest = load_function_module(TEMPLATE, "IngestFunction")
    rfq_id = "r" * 210_000
    body = encode(envelope("quote.received", data={"quoteId": "quote_big", "rfqId": rfq_id}))
    assert len(body) <= int(TEMPLATE.parameter_defaults()["MaxBodyBytes"])
    assert invoke(ingest, signed_event(body))["statusCode"] == 202
    assert drain(consumer_handlers("quote"), stack, "quote") == 0
    assert max(writes.sizes) <= ITEM_LIMIT_BYTES
    item = read_state(reused_client("dynamodb"), stack.refs["StateTable"], "quote", "quote_big")
    assert item is not None and item["rfqId"] == rfq_id and "body" not in item  # the body is archived
    (record,) = archived(stack)[json.loads(body)["id"]]
    assert record.body.encode() == body


def test_a_largest_body_is_archived_byte_for_byte_and_the_state_item_stays_small(
    stack: Stack, ingest_env: dict[str, str], consumer_handlers: Any, writes: ItemsAfterWrites
) -> None:
    ingest = load_function_module(TEMPLATE, "IngestFunction")
    limit = int(TEMPLATE.parameter_defaults()["MaxBodyBytes"])
    payload = envelope("order.created", data={"orderId": "ord_big", "notes": ""})
    payload["data"]["notes"] = "n" * (limit - len(encode(payload)))
    assert len(encode(payload)) == limit
    assert invoke(ingest, signed_event(encode(payload)))["statusCode"] == 202
    assert drain(consumer_handlers("order"), stack, "order") == 0
    assert max(writes.sizes) <= ITEM_LIMIT_BYTES
    item = read_state(reused_client("dynamodb"), stack.refs["StateTable"], "order", "ord_big")
    assert item is not None and "body" not in item and item["archiveHour"]
    assert max(writes.sizes) <= 1024  # every state write within one write unit, whatever the body
    (record,) = archived(stack)[payload["id"]]
    assert record.body.encode() == encode(payload)


def test_an_older_event_with_a_large_field_after_a_large_body_still_fits(
    stack: Stack, ingest_env: dict[str, str], consumer_handlers: Any, writes: ItemsAfterWrites
) -> None:
    """The newest event has a 250 KB body; then an older event brings a 200,000-character rfqId, which
    must be kept (it is the newest carrier). Bodies are archived, so the item only holds the field."""
    from datetime import UTC, datetime, timedelta

    ingest = load_function_module(TEMPLATE, "IngestFunction")
    now = datetime.now(UTC)
    newest = envelope("quote.updated", timestamp=now, data={"quoteId": "quote_mixed", "notes": "n" * 250_000})
    older = envelope("quote.received", timestamp=now - timedelta(minutes=5), data={"quoteId": "quote_mixed"})
    older["data"]["rfqId"] = "r" * 200_000
    consumer = consumer_handlers("quote")
    for payload in (newest, older):
        assert invoke(ingest, signed_event(encode(payload)))["statusCode"] == 202
        assert drain(consumer, stack, "quote") == 0
    assert max(writes.sizes) <= ITEM_LIMIT_BYTES
    item = read_state(reused_client("dynamodb"), stack.refs["StateTable"], "quote", "quote_mixed")
    assert item is not None and item["rfqId"] == older["data"]["rfqId"] and item["lastEventId"] == newest["id"]
    assert "body" not in item and item["lastEvent"] == "quote.updated"
    assert set(archived(stack)) >= {newest["id"], older["id"]}


# --- 11. a deadline per request -----------------------------------------------------------------------


def test_a_failed_dedup_completion_is_an_error_with_the_aws_error(
    stack: Stack, ingest_env: dict[str, str], faults: Faults, json_logs: Any
) -> None:
    """Finding 9: 202 (the event is on its queue), and an ERROR line with the code and message."""
    ingest = load_function_module(TEMPLATE, "IngestFunction")
    error = ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "UpdateItem"
    )
    faults.fail("dynamodb.UpdateItem", error)
    faults.fail("dynamodb.UpdateItem", error)
    payload = envelope("order.created")
    assert invoke(ingest, signed_event(encode(payload)))["statusCode"] == 202
    (line,) = [r for r in json_logs.records() if r["level"] == "ERROR"]
    assert line["error_code"] == "ProvisionedThroughputExceededException" and line["error_message"] == "slow down"
    assert line["event_id"] == payload["id"] and "not marked complete" in line["message"]


def test_the_state_table_retention_outlives_every_redrivable_message() -> None:
    """Finding 6, tied to the template: handled# records outlive the longest-lived message."""
    days = set()
    families = [template_name(family) for family in FAMILIES]
    for family in families:
        env = TEMPLATE.function(f"{family}ConsumerFunction").environment
        days.add(int(env["HANDLED_RETENTION_DAYS"]))
    (handled_days,) = days
    longest = max(
        int(TEMPLATE.resources[f"{family}Events{kind}"]["Properties"].get("MessageRetentionPeriod", 345600))
        for family in families
        for kind in ("Queue", "DeadLetterQueue")
    )
    assert handled_days * 86400 >= longest + 86400


def test_botocore_request_lines_keep_the_session_token_out() -> None:
    """botocore's "Sending http request" line prints every header, X-Amz-Security-Token included."""
    from botocore.awsrequest import AWSPreparedRequest, HTTPHeaders

    from ntp_webhooks.observability import without_payloads

    headers = HTTPHeaders()
    headers["X-Amz-Security-Token"] = "session-token-marker"
    request = AWSPreparedRequest("POST", "https://sqs", headers, b"", False)

    def line() -> logging.LogRecord:
        return logging.LogRecord(
            "botocore.endpoint", logging.DEBUG, "", 0, "Sending http request: %s", (request,), None
        )

    assert "session-token-marker" in line().getMessage()  # what botocore would have written
    assert "session-token-marker" not in without_payloads(line()).getMessage()
