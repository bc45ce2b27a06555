"""The role check the e2e tests run (tools/permissions.py) decides as IAM would: a missing action or a
wrong ARN in template.yaml is a denied call, wildcards and SAM policy templates are read as AWS reads
them. The e2e tests themselves check every call against the real template (tests/conftest.py)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devtools.lambda_events import LambdaContext, acting_as, signed_event
from devtools.pipeline import hooked, reused_client
from devtools.provision import ACCOUNT_ID, Provisioner, Stack
from devtools.sam_template import SamTemplate
from ntp.deliveries import LOCAL_DEV_SECRET, envelope
from tests.conftest import _warm_session, load_function_module
from tools.permissions import Call, CallRecorder, Ledger, Statement, resource_arn


def edited(template: SamTemplate, change: Callable[[dict[str, Any]], None]) -> SamTemplate:
    copied = copy.copy(template)
    copied.doc = copy.deepcopy(template.doc)
    change(copied.doc["Resources"])
    return copied


def ingest_statements(resources: dict[str, Any]) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = resources["IngestFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"
    ]
    return statements


def ingest_statement(resources: dict[str, Any], sid: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in ingest_statements(resources) if s.get("Sid") == sid)
    return found


@pytest.fixture(scope="module")
def recorded(template: SamTemplate) -> tuple[Stack, list[Call]]:
    """What IngestFunction calls for one accepted webhook, recorded as the e2e tests record it, and the
    stack it called: once for the module (the calls and the stack's names are all the tests read)."""
    recorder = CallRecorder()
    with mock_aws(), pytest.MonkeyPatch.context() as patch:
        boto3.DEFAULT_SESSION = _warm_session()
        secrets = {"WebhookSigningSecret": LOCAL_DEV_SECRET}
        stack = Provisioner(template, reused_client, secret_values=secrets, operations=False).provision()
        for name, value in stack.function_environment(template, "IngestFunction").items():
            patch.setenv(name, value)
        with hooked("before-parameter-build.*.*", recorder.record), acting_as("IngestFunction"):
            module = load_function_module(template, "IngestFunction")
            response = module.lambda_handler(
                signed_event(envelope("order.created")), LambdaContext(function_name="IngestFunction")
            )
    assert response["statusCode"] == 202
    return stack, recorder.take()


@pytest.fixture
def stack(recorded: tuple[Stack, list[Call]]) -> Stack:
    return recorded[0]


@pytest.fixture
def ingest_calls(recorded: tuple[Stack, list[Call]]) -> list[Call]:
    return recorded[1]


def test_the_ingest_calls_are_recorded_with_their_arns(
    template: SamTemplate, ingest_calls: list[Call], stack: Stack
) -> None:
    table = f"arn:aws:dynamodb:us-east-1:{ACCOUNT_ID}:table/{stack.refs['DedupTable']}"
    recorded = {(c.action, c.resource) for c in ingest_calls}
    # Besides, a cold start may list the key versions (DescribeSecret).
    assert recorded - {("secretsmanager:DescribeSecret", stack.refs["WebhookSigningSecret"])} == {
        ("secretsmanager:GetSecretValue", stack.refs["WebhookSigningSecret"]),
        ("dynamodb:PutItem", table),
        ("sqs:SendMessage", stack.attributes[("OrderEventsQueue", "Arn")]),
        ("dynamodb:UpdateItem", table),
    }
    assert Ledger().check(template, [stack], ingest_calls) == []


def test_a_missing_action_is_denied(template: SamTemplate, stack: Stack, ingest_calls: list[Call]) -> None:
    broken = edited(template, lambda r: ingest_statement(r, "DedupTableClaims")["Action"].remove("dynamodb:UpdateItem"))
    denied = Ledger().check(broken, [stack], ingest_calls)
    assert [call.action for call in denied] == ["dynamodb:UpdateItem"]


def test_a_wrong_arn_is_denied(template: SamTemplate, stack: Stack, ingest_calls: list[Call]) -> None:
    def only_the_quote_queue(resources: dict[str, Any]) -> None:  # the order queue's policy, attached to the role
        (statement,) = resources["OrderEnqueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
        statement["Resource"] = {"Fn::GetAtt": ["QuoteEventsQueue", "Arn"]}

    denied = Ledger().check(edited(template, only_the_quote_queue), [stack], ingest_calls)
    assert [call.action for call in denied] == ["sqs:SendMessage"]


def test_an_explicit_deny_wins(template: SamTemplate, stack: Stack, ingest_calls: list[Call]) -> None:
    def deny_sends(resources: dict[str, Any]) -> None:
        ingest_statements(resources).append({"Effect": "Deny", "Action": "sqs:Send*", "Resource": "*"})

    denied = Ledger().check(edited(template, deny_sends), [stack], ingest_calls)
    assert [call.action for call in denied] == ["sqs:SendMessage"]


def test_a_sam_generated_role_with_a_policy_template_and_an_attached_policy(
    template: SamTemplate, stack: Stack, ingest_calls: list[Call]
) -> None:
    """The ingest on SAM's generated role instead (same logical ID): its `Policies`, a SAM policy
    template among them, and the family policies that attach to the role by Ref."""

    def generated_role_with_crud_policy(resources: dict[str, Any]) -> None:
        claims = ingest_statement(resources, "DedupTableClaims")
        claims["Action"] = ["dynamodb:GetItem"]
        del resources["IngestFunction"]["Properties"]["Role"]
        resources["IngestFunction"]["Properties"]["Policies"] = [
            {"Statement": ingest_statements(resources)},
            {"DynamoDBCrudPolicy": {"TableName": {"Ref": "DedupTable"}}},
        ]

    ledger = Ledger()
    assert ledger.check(edited(template, generated_role_with_crud_policy), [stack], ingest_calls) == []
    assert ("IngestFunctionRole/Policies[1]:DynamoDBCrudPolicy/0", "dynamodb:PutItem") in ledger.used
    assert ("IngestFunctionRole/OrderEnqueuePolicy/EnqueueEvents", "sqs:SendMessage") in ledger.used
    assert "IngestFunctionRole/Policies[0]/DedupTableClaims: dynamodb:GetItem" in ledger.unused()


def test_wildcards_match_as_iam_matches() -> None:
    arn = f"arn:aws:sqs:us-east-1:{ACCOUNT_ID}:local-OrderEventsQueue"
    statement = Statement("F", "F/p/0", "Allow", ("SQS:send*",), (f"arn:aws:sqs:us-east-1:{ACCOUNT_ID}:local-????r*",))
    assert statement.action_matching("sqs:SendMessage") == "SQS:send*"  # actions: case-insensitive
    assert statement.action_matching("sqs:ReceiveMessage") is None
    assert statement.covers(arn)
    assert not statement.covers(arn.replace("local-", "LOCAL-"))  # resources: case-sensitive
    assert not statement.covers(arn.replace("OrderEvents", "QuoteEvents"))  # `?` is one character


def test_a_secret_named_without_its_arn_is_authorized_on_its_arn() -> None:
    secret_arn = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT_ID}:secret:local-WebhookSigningSecret-AbC123"
    by_name = resource_arn("secretsmanager", "DescribeSecret", {"SecretId": "local-WebhookSigningSecret"}, "us-east-1")
    statement = Statement("F", "F/p/0", "Allow", ("secretsmanager:DescribeSecret",), (secret_arn,))
    assert statement.covers(by_name)
    assert not statement.covers(by_name.replace("local-", "other-"))


def test_only_a_functions_own_calls_are_recorded(aws: None) -> None:
    recorder = CallRecorder()
    with hooked("before-parameter-build.*.*", recorder.record):
        sqs = reused_client("sqs")
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        with acting_as("OrderConsumerFunction"):
            sqs.receive_message(QueueUrl=url)
    assert recorder.take() == [
        Call("OrderConsumerFunction", "sqs:ReceiveMessage", f"arn:aws:sqs:us-east-1:{ACCOUNT_ID}:q")
    ]


def test_a_call_without_a_resource_rule_is_an_error_not_a_pass() -> None:
    with pytest.raises(ValueError, match="no resource rule for kms:Decrypt"):
        resource_arn("kms", "Decrypt", {"CiphertextBlob": b""}, "us-east-1")
