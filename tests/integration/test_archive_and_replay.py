"""The evidence archive and `ntp replay`, through the real functions on moto: every accepted delivery
archived once, byte for byte, before anything else is done; a replay runs exactly the named handlers
once more, and nothing else."""

from __future__ import annotations

import base64
import gzip
import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import time_machine
from botocore.exceptions import ClientError

from devtools.event_source import QueuePoller
from devtools.lambda_events import LambdaContext, signed_event
from devtools.pipeline import hooked, reused_client
from devtools.provision import Provisioner, Stack
from ntp import replay
from ntp.cli import Target, _newest_data
from ntp.deliveries import LOCAL_DEV_SECRET, encode, envelope
from ntp.operations import read_state
from ntp_webhooks.archive import ArchiveRecord
from ntp_webhooks.events import EventBase
from ntp_webhooks.handler_runs import KEY_PREFIX
from ntp_webhooks.routing import template_name
from ntp_webhooks.subscriptions import on
from tests.conftest import FAMILIES, TEMPLATE, AwsCalls, Clock, Faults, archived, load_function_module, queue_poller

LoadConsumer = Callable[[str], ModuleType]


@pytest.fixture
def stack(aws: None, template: Any) -> Stack:
    """Each test's own stack, of what the ingest and the consumers reference: the alarm topics and their
    key, which no function here calls, were the slowest of conftest's `stack` to create (CreateKey)."""
    functions = ["IngestFunction", *(f"{template_name(family)}ConsumerFunction" for family in FAMILIES)]
    return Provisioner(
        template,
        reused_client,
        secret_values={"WebhookSigningSecret": LOCAL_DEV_SECRET},
        operations=False,
        functions=functions,
        record_only=False,
    ).provision()


class Runs:
    def __init__(self) -> None:
        self.count: Counter[str] = Counter()
        for name in ("erp", "crm"):
            on("order", name=name)(self._handler(name))

    def _handler(self, name: str) -> Callable[[EventBase], None]:
        def handle(event: EventBase) -> None:
            self.count[name] += 1

        return handle


@pytest.fixture
def runs(isolated_subscriptions: None) -> Runs:
    return Runs()


@pytest.fixture
def ingest(ingest_env: dict[str, str]) -> ModuleType:
    return load_function_module(TEMPLATE, "IngestFunction")


@pytest.fixture
def poller(consumer_handlers: LoadConsumer, stack: Stack) -> QueuePoller:
    handler = consumer_handlers("order")
    return queue_poller(stack, "order", handler.lambda_handler)


def invoke(handler: ModuleType, event: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = handler.lambda_handler(event, LambdaContext(function_name="IngestFunction"))
    return response


def accept(ingest: ModuleType, payload: dict[str, Any], **headers: str) -> bytes:
    body = encode(payload)
    assert invoke(ingest, signed_event(body, headers=headers))["statusCode"] == 202
    return body


def queues(stack: Stack) -> dict[str, str]:
    return {family: stack.refs[f"{template_name(family)}EventsQueue"] for family in FAMILIES}


def state_item(stack: Stack, key: str) -> dict[str, Any]:
    item: dict[str, Any] = reused_client("dynamodb").get_item(
        TableName=stack.refs["StateTable"], Key={"pk": {"S": key}}
    )["Item"]
    return item


def test_an_accepted_delivery_is_archived_byte_for_byte_with_who_sent_it_and_which_key(
    runs: Runs, ingest: ModuleType, poller: QueuePoller, stack: Stack
) -> None:
    payload = envelope("order.created", data={"orderId": "ord_archive", "total": 12.340})
    body = accept(ingest, payload, **{"X-Request-Id": "req-from-nowtoprint-1"})
    assert poller.poll_once().failed == 0
    (record,) = archived(stack)[payload["id"]]
    assert record.body.encode() == body  # the exact bytes, `12.34` not re-serialised
    versions = reused_client("secretsmanager").describe_secret(SecretId=stack.refs["WebhookSigningSecret"])
    current = next(v for v, stages in versions["VersionIdsToStages"].items() if "AWSCURRENT" in stages)
    assert (record.event_type, record.family, record.key_stage, record.key_version) == (
        "order.created",
        "order",
        "AWSCURRENT",
        current,
    )
    assert record.sender_request_id == "req-from-nowtoprint-1" and record.api_request_id and record.received_at
    # The state item points at the hour the archive object lands under, and holds no body.
    item = state_item(stack, "order#ord_archive")
    assert "body" not in item and item["archiveHour"]["S"] in {key for key in _object_hours(stack)}


def _object_hours(stack: Stack) -> set[str]:
    listed = reused_client("s3").list_objects_v2(Bucket=stack.refs["ArchiveBucket"], Prefix="events/")
    return {"/".join(obj["Key"].split("/")[1:5]) for obj in listed.get("Contents", [])}


def test_a_redelivered_or_duplicated_message_is_not_archived_twice(
    runs: Runs, ingest: ModuleType, poller: QueuePoller, stack: Stack
) -> None:
    payload = envelope("order.created", data={"orderId": "ord_twice"})
    body = accept(ingest, payload)
    assert poller.poll_once().failed == 0
    # An SQS duplicate: the same body again on the queue.
    reused_client("sqs").send_message(QueueUrl=stack.refs["OrderEventsQueue"], MessageBody=body.decode())
    assert poller.poll_once().failed == 0
    assert len(archived(stack)[payload["id"]]) == 1
    assert runs.count == {"erp": 1, "crm": 1}


def test_a_failed_archive_write_fails_the_record_before_anything_else_and_the_retry_finishes_it(
    runs: Runs, ingest: ModuleType, poller: QueuePoller, stack: Stack, faults: Faults, clock: Clock
) -> None:
    payload = envelope("order.created", data={"orderId": "ord_archive_fault"})
    accept(ingest, payload)
    failures = faults.fail(
        "firehose.PutRecordBatch", ClientError({"Error": {"Code": "ServiceUnavailableException"}}, "x")
    )
    assert poller.poll_once().failed == 1
    assert failures == [1] and runs.count == {} and payload["id"] not in archived(stack)
    with pytest.raises(KeyError):
        state_item(stack, "order#ord_archive_fault")  # nothing projected either
    clock(poller.mapping.visibility_timeout)  # SQS gives the record back after the queue's visibility timeout
    assert poller.poll_once().failed == 0
    assert len(archived(stack)[payload["id"]]) == 1 and runs.count == {"erp": 1, "crm": 1}


def test_one_archive_call_per_batch_and_a_record_firehose_refuses_alone_is_retried(
    runs: Runs, ingest: ModuleType, poller: QueuePoller, stack: Stack, aws_calls: AwsCalls, clock: Clock
) -> None:
    """The batch's records go to Firehose in one PutRecordBatch; a record it refuses in its answer
    (FailedPutCount) fails alone, before its projection and handlers, and its retry archives it."""
    payloads = [envelope("order.created", data={"orderId": f"ord_batch_{n}"}) for n in range(3)]
    for payload in payloads:
        accept(ingest, payload)

    refusals = [1]  # once: the hooks stay on the clients created meanwhile

    def drop_the_second(params: dict[str, Any], **_: Any) -> None:  # Firehose keeps the others only
        if refusals:
            del params["Records"][1]

    def refuse_the_second(parsed: dict[str, Any], **_: Any) -> None:
        if refusals and refusals.pop():
            parsed["FailedPutCount"] = 1
            parsed["RequestResponses"].insert(1, {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "x"})

    aws_calls.reset()
    with (
        hooked("provide-client-params.firehose.PutRecordBatch", drop_the_second),
        hooked("after-call.firehose.PutRecordBatch", refuse_the_second),
    ):
        assert poller.poll_once().failed == 1
    assert aws_calls.names("firehose") == ["PutRecordBatch"]
    # The refused record's claim is released at once; the others' completions are written at the end.
    assert aws_calls.names("dynamodb").count("BatchWriteItem") == 2
    kept = archived(stack)
    refused = [p for p in payloads if p["id"] not in kept]
    assert len(refused) == 1 and runs.count == {"erp": 2, "crm": 2}
    with pytest.raises(KeyError):
        state_item(stack, f"order#{refused[0]['data']['orderId']}")
    clock(poller.mapping.visibility_timeout)
    assert poller.poll_once().failed == 0
    assert set(archived(stack)) >= {p["id"] for p in payloads} and runs.count == {"erp": 3, "crm": 3}


def test_a_replay_runs_exactly_the_named_handlers_once_more_and_nothing_else(
    runs: Runs, ingest: ModuleType, poller: QueuePoller, stack: Stack
) -> None:
    payload = envelope("order.created", data={"orderId": "ord_replay"})
    accept(ingest, payload)
    assert poller.poll_once().failed == 0
    before = state_item(stack, "order#ord_replay")
    done_before = state_item(stack, KEY_PREFIX + payload["id"])["done"]["SS"]
    records = replay.find(reused_client("s3"), stack.refs["ArchiveBucket"], event_ids=[payload["id"]])
    sqs = reused_client("sqs")

    (message_id,) = replay.send(sqs, queues(stack), records, ["erp"])
    assert message_id
    assert poller.poll_once().failed == 0
    assert runs.count == {"erp": 2, "crm": 1}  # erp once more, crm not
    assert state_item(stack, "order#ord_replay") == before  # no projection change
    assert state_item(stack, KEY_PREFIX + payload["id"])["done"]["SS"] == done_before  # bypassed, not erased
    assert len(archived(stack)[payload["id"]]) == 1  # not archived again

    # A second replay runs it again; one replay delivered twice by SQS runs it once.
    list(replay.send(sqs, queues(stack), records, ["erp"]))
    message = sqs.receive_message(QueueUrl=stack.refs["OrderEventsQueue"], MessageAttributeNames=["All"])["Messages"][0]
    sqs.change_message_visibility(
        QueueUrl=stack.refs["OrderEventsQueue"], ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    sqs.send_message(
        QueueUrl=stack.refs["OrderEventsQueue"],
        MessageBody=message["Body"],
        MessageAttributes=message["MessageAttributes"],
    )
    while poller.poll_once().received:
        pass
    assert runs.count == {"erp": 3, "crm": 1}


def test_a_replay_and_a_copy_of_the_original_in_one_batch_each_do_their_own_part(
    runs: Runs, ingest: ModuleType, poller: QueuePoller, stack: Stack
) -> None:
    """Their claims are apart (`<event id>` and `<event id>#replay:<id>`): in one batch, the replay
    runs its named handler once more and the original's copy runs nothing, archives nothing."""
    payload = envelope("order.created", data={"orderId": "ord_replay_batch"})
    body = accept(ingest, payload)
    assert poller.poll_once().failed == 0
    records = replay.find(reused_client("s3"), stack.refs["ArchiveBucket"], event_ids=[payload["id"]])
    sqs = reused_client("sqs")
    list(replay.send(sqs, queues(stack), records, ["erp"]))
    sqs.send_message(QueueUrl=stack.refs["OrderEventsQueue"], MessageBody=body.decode())  # an SQS duplicate
    result = poller.poll_once()
    assert (result.received, result.failed) == (2, 0)
    assert runs.count == {"erp": 2, "crm": 1}
    assert len(archived(stack)[payload["id"]]) == 1


def test_the_message_attributes_go_from_the_ingest_through_the_archive_to_a_replay_unchanged(
    runs: Runs, ingest: ModuleType, poller: QueuePoller, stack: Stack
) -> None:
    """One mapping (`MessageAttributes`): what the ingest sends, the consumer archives and a replay
    sends again, with the handlers to run and its replay ID added."""
    payload = envelope("order.created", data={"orderId": "ord_attributes"})
    accept(ingest, payload, **{"X-Request-Id": "req-attributes-1"})
    sqs, url = reused_client("sqs"), stack.refs["OrderEventsQueue"]

    def on_the_queue() -> dict[str, Any]:
        """The attributes of the one message on the queue, as SQS holds them (left there)."""
        (message,) = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], VisibilityTimeout=0)["Messages"]
        attributes: dict[str, Any] = message["MessageAttributes"]
        return attributes

    sent = on_the_queue()
    assert sorted(sent) == sorted(
        ["eventType", "eventId", "apiRequestId", "keyStage", "keyVersion", "senderRequestId", "receivedAt"]
    )
    assert sent["eventId"] == {"DataType": "String", "StringValue": payload["id"]}
    assert sent["senderRequestId"]["StringValue"] == "req-attributes-1"
    assert poller.poll_once().failed == 0
    (record,) = archived(stack)[payload["id"]]
    assert {
        "eventType": record.event_type,
        "eventId": record.event_id,
        "apiRequestId": record.api_request_id,
        "keyStage": record.key_stage,
        "keyVersion": record.key_version,
        "senderRequestId": record.sender_request_id,
        "receivedAt": record.received_at,
    } == {name: value["StringValue"] for name, value in sent.items()}

    list(replay.send(sqs, queues(stack), [record], ["erp", "crm"]))
    replayed = on_the_queue()
    assert {name: value for name, value in replayed.items() if not name.startswith("replay")} == sent
    assert replayed["replayHandlers"] == {"DataType": "String", "StringValue": "crm,erp"}
    assert len(replayed["replayId"]["StringValue"]) == 32
    assert poller.poll_once().failed == 0
    assert runs.count == {"erp": 2, "crm": 2}


def test_replay_works_after_the_state_and_once_records_expired(
    runs: Runs, ingest: ModuleType, poller: QueuePoller, stack: Stack
) -> None:
    payload = envelope("order.confirmed", data={"orderId": "ord_expired"})
    accept(ingest, payload)
    assert poller.poll_once().failed == 0
    ddb = reused_client("dynamodb")
    for key in ("order#ord_expired", KEY_PREFIX + payload["id"]):  # what TTL and time do
        ddb.delete_item(TableName=stack.refs["StateTable"], Key={"pk": {"S": key}})
    records = replay.find(reused_client("s3"), stack.refs["ArchiveBucket"], event_ids=[payload["id"]])
    list(replay.send(reused_client("sqs"), queues(stack), records, ["erp", "crm"]))
    assert poller.poll_once().failed == 0
    assert runs.count == {"erp": 2, "crm": 2}


def test_find_reads_a_time_range_as_hour_prefixes_and_counts_an_event_archived_twice_once(stack: Stack) -> None:
    s3, bucket = reused_client("s3"), stack.refs["ArchiveBucket"]
    now = datetime.now(UTC)

    def put(key: str, *records: ArchiveRecord) -> None:
        s3.put_object(Bucket=bucket, Key=key, Body=b"".join(r.encode() for r in records))

    def record(event_id: str, received: datetime, event_type: str = "order.created") -> ArchiveRecord:
        return ArchiveRecord(event_id, event_type, "order", received.isoformat(), "", "", "AWSCURRENT", "v", "{}")

    old, recent = now - timedelta(days=2), now - timedelta(minutes=5)
    put(f"events/{old:%Y/%m/%d/%H}/a", record("evt_old", old))
    put(f"events/{recent:%Y/%m/%d/%H}/b", record("evt_new", recent), record("evt_other", recent, "order.shipped"))
    put(f"events/{recent:%Y/%m/%d/%H}/c", record("evt_new", recent))  # archived again after a crash
    found = replay.find(s3, bucket, since=now - timedelta(hours=1))
    assert [r.event_id for r in found] == ["evt_new", "evt_other"]
    assert [
        r.event_id for r in replay.find(s3, bucket, since=now - timedelta(hours=1), event_type="order.shipped")
    ] == ["evt_other"]
    assert [r.event_id for r in replay.find(s3, bucket, event_ids=["evt_old"])] == ["evt_old"]
    # Received two days ago, archived now (redriven from a DLQ): `--until` is about receipt, not the object.
    put(f"events/{recent:%Y/%m/%d/%H}/d", record("evt_redriven", old))
    found = replay.find(s3, bucket, since=old - timedelta(hours=1), until=old + timedelta(hours=1))
    assert [r.event_id for r in found] == ["evt_old", "evt_redriven"]


def test_the_provisioned_bucket_expires_objects_at_the_retention_and_is_private(stack: Stack, template: Any) -> None:
    s3, bucket = reused_client("s3"), stack.refs["ArchiveBucket"]
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rule["Expiration"]["Days"] == int(template.parameter_defaults()["ArchiveRetentionDays"])
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    (sse,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert sse["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


class BufferingFirehose:
    """Firehose's S3 delivery as AWS does it (moto writes one object per record at once): records
    gather in a buffer until its interval (template.yaml's BufferingHints) has passed since the oldest
    one arrived; the object is named by that oldest record's arrival hour, so it can hold records of
    the next hour; `deliveries=2` writes an object twice (Firehose may deliver a record twice)."""

    def __init__(self, s3: Any, bucket: str, interval: int) -> None:
        self._s3, self._bucket, self._interval = s3, bucket, timedelta(seconds=interval)
        self._buffer: list[tuple[datetime, bytes]] = []
        self.keys: list[str] = []

    def put_record_batch(self, params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        """botocore's before-call hook for firehose.PutRecordBatch: the answer, without moto."""
        now = datetime.now(UTC)
        self.flush(due_only=True)
        records = json.loads(params["body"])["Records"]
        self._buffer += [(now, base64.b64decode(record["Data"])) for record in records]
        answers = [{"RecordId": uuid.uuid4().hex} for _ in records]
        return SimpleNamespace(status_code=200, headers={}), {
            "FailedPutCount": 0,
            "Encrypted": False,
            "RequestResponses": answers,
        }

    def flush(self, *, due_only: bool = False, deliveries: int = 1) -> None:
        if not self._buffer or (due_only and datetime.now(UTC) - self._buffer[0][0] < self._interval):
            return
        oldest = self._buffer[0][0]
        data = gzip.compress(b"".join(record for _, record in self._buffer))
        for _ in range(deliveries):
            key = f"events/{oldest:%Y/%m/%d/%H}/archive-1-{oldest:%Y-%m-%d-%H-%M-%S}-{uuid.uuid4()}.gz"
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=data)
            self.keys.append(key)
        self._buffer = []


@pytest.fixture
def buffering_firehose(stack: Stack, template: Any) -> Iterator[BufferingFirehose]:
    hints = template.doc["Resources"]["ArchiveStream"]["Properties"]["ExtendedS3DestinationConfiguration"]
    firehose = BufferingFirehose(
        reused_client("s3"), stack.refs["ArchiveBucket"], int(hints["BufferingHints"]["IntervalInSeconds"])
    )
    with hooked("before-call.firehose.PutRecordBatch", firehose.put_record_batch):
        yield firehose


def test_records_filed_under_the_hour_their_buffer_began_are_replayed_by_receive_time_and_read_back(
    runs: Runs, ingest: ModuleType, buffering_firehose: BufferingFirehose, poller: QueuePoller, stack: Stack
) -> None:
    """Issue 27, item 1: an event received at 10:02 sits in an object under 09/ with one of 09:58."""
    ten = (datetime.now(UTC) + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    payloads = {}
    with time_machine.travel(ten - timedelta(minutes=2), tick=False) as traveller:
        for name, at in (("a", -2), ("b", 2), ("c", 6)):  # minutes from 10:00
            traveller.move_to(ten + timedelta(minutes=at))
            payloads[name] = envelope("order.confirmed", data={"orderId": f"ord_buffered_{name}"})
            accept(ingest, payloads[name])
            assert poller.poll_once().failed == 0
        traveller.move_to(ten + timedelta(minutes=12))
        buffering_firehose.flush()  # c's buffer, begun at 10:06
        a_and_b, c = buffering_firehose.keys
        assert a_and_b.startswith(f"events/{ten - timedelta(hours=1):%Y/%m/%d/%H}/")  # the straddling object
        assert c.startswith(f"events/{ten:%Y/%m/%d/%H}/")
        s3, bucket = reused_client("s3"), stack.refs["ArchiveBucket"]

        found = replay.find(s3, bucket, since=ten)  # `ntp replay --since 10:00`
        assert [r.event_id for r in found] == [payloads["b"]["id"], payloads["c"]["id"]]  # b is under 09/
        found = replay.find(s3, bucket, since=ten, until=ten + timedelta(minutes=3))
        assert [r.event_id for r in found] == [payloads["b"]["id"]]

        # The state item's archiveHour is the hour b was put (10), its object is under the hour
        # before, and `ntp status` reads the newest event's data from there.
        item = read_state(reused_client("dynamodb"), stack.refs["StateTable"], "order", "ord_buffered_b")
        assert item is not None and item["archiveHour"] == f"{ten:%Y/%m/%d/%H}"
        target = Target(outputs={"ArchiveBucketName": bucket})
        assert _newest_data(target, item) == {"orderId": "ord_buffered_b"}


def test_a_record_firehose_delivers_twice_is_replayed_once(
    runs: Runs, ingest: ModuleType, buffering_firehose: BufferingFirehose, poller: QueuePoller, stack: Stack
) -> None:
    payload = envelope("order.confirmed", data={"orderId": "ord_delivered_twice"})
    accept(ingest, payload)
    assert poller.poll_once().failed == 0
    buffering_firehose.flush(deliveries=2)
    assert len(buffering_firehose.keys) == 2 and len(archived(stack)[payload["id"]]) == 2
    since = datetime.now(UTC) - timedelta(minutes=1)
    found = replay.find(reused_client("s3"), stack.refs["ArchiveBucket"], since=since)
    assert [r.event_id for r in found] == [payload["id"]]


def test_a_batch_past_putrecordbatchs_limits_is_archived_in_several_calls(stack: Stack, aws_calls: AwsCalls) -> None:
    """PutRecordBatch takes at most 500 records and 4 MiB: 520 small records take two calls, three
    records of 1.5 MiB two more, and each record is archived once, byte for byte."""
    from ntp_webhooks.archive import Archive

    def record(n: int, body: str) -> ArchiveRecord:
        return ArchiveRecord(f"evt_{n}", "order.created", "order", "t", "", "", "AWSCURRENT", "v", body)

    archive = Archive(reused_client("firehose"), stack.refs["ArchiveStream"])
    small = [record(n, "{}") for n in range(520)]
    large = [record(1000 + n, "x" * (3 * 512 * 1024)) for n in range(3)]
    for records in (small, large):
        aws_calls.reset()
        outcomes = archive.put_all(records)
        assert all(isinstance(o, str) for o in outcomes) and len(outcomes) == len(records)
        assert aws_calls.names("firehose") == ["PutRecordBatch"] * 2
    kept = archived(stack)
    assert sorted(kept) == sorted(r.event_id for r in small + large)
    assert all(len(found) == 1 for found in kept.values()) and kept["evt_1002"][0].body == large[2].body
