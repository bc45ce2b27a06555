"""The canary for devtools/moto_patches.py: each patch of moto's internals, against the installed moto.

A moto upgrade that renames or reshapes what a patch reaches into fails here, by the patch's name,
instead of somewhere far away in a pipeline test.
"""

from __future__ import annotations

import inspect
import json
import threading
import uuid
from typing import Any

import boto3
import moto.kms.models as kms_models
import pytest
from botocore.exceptions import ClientError
from moto.dynamodb.models import DynamoDBBackend
from moto.sqs.responses import SQSResponse

from devtools import moto_patches


def table(name: str) -> Any:
    ddb = boto3.client("dynamodb")
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return ddb


def test_dynamodb_single_item_writes_are_atomic(aws: None) -> None:
    assert all(getattr(DynamoDBBackend, name).__patched__ for name in moto_patches.DYNAMODB_WRITES)
    ddb = table("claims")
    won: list[int] = []
    start = threading.Barrier(8)

    def claim(n: int) -> None:
        start.wait()
        try:
            ddb.put_item(
                TableName="claims",
                Item={"id": {"S": "evt"}, "by": {"N": str(n)}},
                ConditionExpression="attribute_not_exists(id)",
            )
            won.append(n)
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "ConditionalCheckFailedException"

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    assert ddb.get_item(TableName="claims", Key={"id": {"S": "evt"}})["Item"]["by"]["N"] == str(won[0])


def test_dynamodb_reads_wait_for_a_write_in_progress(aws: None) -> None:
    assert all(getattr(DynamoDBBackend, name).__patched__ for name in moto_patches.DYNAMODB_READS)
    ddb = table("items")
    read: list[Any] = []
    reader = threading.Thread(target=lambda: read.append(ddb.get_item(TableName="items", Key={"id": {"S": "a"}})))
    with moto_patches._ITEM_LOCK:  # a write in progress holds it (re-entrant: this thread may write)
        reader.start()
        reader.join(timeout=0.3)
        assert reader.is_alive() and read == []  # the read waits for it
        ddb.put_item(TableName="items", Item={"id": {"S": "a"}, "state": {"S": "whole"}})
    reader.join()
    assert read[0]["Item"]["state"]["S"] == "whole"


def test_sqs_start_message_move_task_returns_dead_letters_to_their_source_queue(aws: None) -> None:
    sqs = boto3.client("sqs")
    dlq = sqs.create_queue(QueueName="dead")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})
    source = sqs.create_queue(QueueName="source", Attributes={"RedrivePolicy": policy})["QueueUrl"]
    attributes: dict[str, Any] = {"event_id": {"DataType": "String", "StringValue": "evt_1"}}
    sqs.send_message(QueueUrl=dlq, MessageBody="one", MessageAttributes=attributes)
    sqs.send_message(QueueUrl=dlq, MessageBody="two")

    assert sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]

    moved = sqs.receive_message(QueueUrl=source, MaxNumberOfMessages=10, MessageAttributeNames=["All"])["Messages"]
    assert sorted(m["Body"] for m in moved) == ["one", "two"]
    assert next(m for m in moved if m["Body"] == "one")["MessageAttributes"]["event_id"]["StringValue"] == "evt_1"
    assert "Messages" not in sqs.receive_message(QueueUrl=dlq, VisibilityTimeout=0)


def test_secrets_manager_pending_version_without_a_value(aws: None) -> None:
    secrets = boto3.client("secretsmanager")
    secrets.create_secret(Name="signing", SecretString="key-one")
    token = str(uuid.uuid4())
    moto_patches.label_pending_version(
        "signing", token, rotation_lambda_arn="arn:aws:lambda:us-east-1:123456789012:function:R", rotation_days=30
    )
    described = secrets.describe_secret(SecretId="signing")
    assert described["VersionIdsToStages"][token] == ["AWSPENDING"] and described["RotationEnabled"]
    with pytest.raises(ClientError) as raised:
        secrets.get_secret_value(SecretId="signing", VersionStage="AWSPENDING")
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert secrets.get_secret_value(SecretId="signing")["SecretString"] == "key-one"


def test_kms_symmetric_keys_share_a_private_key_and_still_encrypt(aws: None) -> None:
    assert kms_models.generate_private_key.__patched__  # type: ignore[attr-defined]
    kms = boto3.client("kms")
    keys: list[Any] = [kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(2)]
    backend_keys = [kms_models.kms_backends["123456789012"]["us-east-1"].keys[k] for k in keys]
    assert backend_keys[0].private_key is backend_keys[1].private_key
    for key in keys:
        blob = kms.encrypt(KeyId=key, Plaintext=b"archive")["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"archive"
    signing = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    assert (
        kms_models.kms_backends["123456789012"]["us-east-1"].keys[signing].private_key
        is not backend_keys[0].private_key
    )


def test_botocore_sessions_share_one_data_loader(aws: None) -> None:
    """Each mock_aws gives a new boto3 session: it must not parse the service models again."""
    loaders = {id(boto3.Session()._session.get_component("data_loader")) for _ in range(3)}
    assert len(loaders) == 1
    first = boto3.Session()._session.get_component("data_loader").load_service_model("sqs", "service-2")
    again = boto3.Session()._session.get_component("data_loader").load_service_model("sqs", "service-2")
    assert again is first  # loaded once, by botocore's own per-loader cache
    assert "SendMessage" in boto3.client("sqs").meta.service_model.operation_names


def test_update_expressions_parsed_once_still_validate_and_apply_each_calls_values(aws: None) -> None:
    """One expression text, parsed once: every call still gets its own values, and a call the
    validator refuses (a key attribute updated) is still refused, the cached tree left unchanged."""
    ddb = table("parsed-once")
    expression = "SET #n = if_not_exists(#n, :zero) + :step, #h = list_append(if_not_exists(#h, :empty), :item)"
    for step in (1, 2):
        ddb.update_item(
            TableName="parsed-once",
            Key={"id": {"S": "a"}},
            UpdateExpression=expression,
            ExpressionAttributeNames={"#n": "n", "#h": "h"},
            ExpressionAttributeValues={
                ":zero": {"N": "0"},
                ":step": {"N": str(step)},
                ":empty": {"L": []},
                ":item": {"L": [{"S": f"s{step}"}]},
            },
        )
    item = ddb.get_item(TableName="parsed-once", Key={"id": {"S": "a"}})["Item"]
    assert item["n"] == {"N": "3"} and item["h"] == {"L": [{"S": "s1"}, {"S": "s2"}]}
    refused = "SET #k = :v"
    for _ in range(2):
        with pytest.raises(ClientError, match="ValidationException"):
            ddb.update_item(
                TableName="parsed-once",
                Key={"id": {"S": "a"}},
                UpdateExpression=refused,
                ExpressionAttributeNames={"#k": "id"},
                ExpressionAttributeValues={":v": {"S": "b"}},
            )
    assert moto_patches._parsed.cache_info().hits >= 2


def test_clients_share_their_sessions_aliased_event_names(aws: None) -> None:
    session = boto3.Session()
    first, second = session.client("sqs"), session.client("sqs")
    events: tuple[Any, Any] = (first.meta.events, second.meta.events)
    names = events[0]._alias_name_cache
    assert names is events[1]._alias_name_cache
    first.list_queues()  # emits events whose aliased names are now known to the second client too
    assert names and events[1]._alias_event_name("before-call.sqs.ListQueues") == "before-call.sqs.ListQueues"


def test_dispatch_works_its_names_out_once_and_still_finds_every_action(aws: None) -> None:
    import moto.core.responses

    core_responses: Any = moto.core.responses
    sqs = boto3.client("sqs")
    for _ in range(2):
        url = sqs.create_queue(QueueName="dispatched")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="x")
    assert core_responses.camelcase_to_underscores.cache_info().hits > 0
    # The class's methods as moto lists them, the patched StartMessageMoveTask included.
    assert core_responses.method_names_from_class(SQSResponse) == [
        name for name, _ in inspect.getmembers(SQSResponse, predicate=inspect.isfunction)
    ]
    assert "start_message_move_task" in core_responses.method_names_from_class(SQSResponse)
