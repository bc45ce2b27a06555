"""Signing-key rotation, driven step by step exactly as Secrets Manager would, against moto."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any

import pytest

from devtools.lambda_events import LambdaContext, signed_event
from devtools.pipeline import reused_client
from devtools.provision import Stack
from devtools.rotation_service import RotationService
from ntp.deliveries import LOCAL_DEV_SECRET, envelope
from ntp_webhooks import signature
from ntp_webhooks.keyring import CURRENT, PENDING, PREVIOUS, Keyring
from ntp_webhooks.rotation import STEPS, RotationError, Rotator, is_well_formed
from tests.conftest import TEMPLATE, AwsCalls, JsonLogs, function_env, load_function_module


@pytest.fixture
def rotation_handler(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    function_env(stack, TEMPLATE, "RotationFunction", monkeypatch)
    return load_function_module(TEMPLATE, "RotationFunction")


@pytest.fixture
def service(stack: Stack, rotation_handler: ModuleType) -> RotationService:
    return RotationService(
        stack.refs["WebhookSigningSecret"], lambda event: rotation_handler.lambda_handler(event, LambdaContext())
    )


@pytest.fixture
def notices(stack: Stack) -> Callable[[], list[dict[str, Any]]]:
    """Messages published to RotationNoticesTopic, read through an SQS subscription."""
    sqs, sns = reused_client("sqs"), reused_client("sns")
    url = sqs.create_queue(QueueName="notices")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=stack.refs["RotationNoticesTopic"], Protocol="sqs", Endpoint=arn)

    def read() -> list[dict[str, Any]]:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

    return read


def stages(stack: Stack) -> dict[str, list[str]]:
    described = reused_client("secretsmanager").describe_secret(SecretId=stack.refs["WebhookSigningSecret"])
    return {vid: sorted(s) for vid, s in described["VersionIdsToStages"].items()}


def value(stack: Stack, **selector: str) -> str:
    secret: str = reused_client("secretsmanager").get_secret_value(
        SecretId=stack.refs["WebhookSigningSecret"], **selector
    )["SecretString"]
    return secret


def deliver(handler: ModuleType, secret: str, event: str = "order.created") -> int:
    return int(handler.lambda_handler(signed_event(envelope(event), secret=secret), LambdaContext())["statusCode"])


# --- the four steps ---------------------------------------------------------------------------------


def test_full_rotation_and_retried_steps(
    stack: Stack, service: RotationService, notices: Callable[[], list[dict[str, Any]]]
) -> None:
    old_version = next(vid for vid, s in stages(stack).items() if CURRENT in s)
    token = service.start()
    assert stages(stack)[token] == [PENDING]

    service.step("createSecret", token)
    new_key = value(stack, VersionId=token)
    assert is_well_formed(new_key) and len(new_key) == 64 and new_key.isalnum()
    service.step("createSecret", token)  # retried by Secrets Manager: same key
    assert value(stack, VersionId=token) == new_key

    service.step("setSecret", token)
    (notice,) = notices()
    assert token in notice["Message"] and stack.refs["WebhookSigningSecret"] in notice["Message"]
    assert new_key not in json.dumps(notice)

    service.step("testSecret", token)
    service.step("testSecret", token)
    service.step("finishSecret", token)
    after = stages(stack)
    assert CURRENT in after[token] and after[old_version] == [PREVIOUS]
    assert value(stack, VersionStage=CURRENT) == new_key
    assert value(stack, VersionStage=PREVIOUS) == LOCAL_DEV_SECRET

    for step in STEPS:  # every step again, after the fact: returns early, changes nothing
        service.step(step, token)
    assert stages(stack) == after
    assert value(stack, VersionStage=CURRENT) == new_key


def test_contract_checks(stack: Stack, service: RotationService) -> None:
    with pytest.raises(RotationError, match="not enabled"):
        service.step("createSecret", "00000000-0000-0000-0000-000000000000")
    token = service.start()
    with pytest.raises(RotationError, match="not a version"):
        service.step("createSecret", "00000000-0000-0000-0000-000000000000")
    current = next(vid for vid, s in stages(stack).items() if CURRENT in s)
    service.step("finishSecret", current)  # already AWSCURRENT: returns early
    with pytest.raises(RotationError, match="unknown rotation step"):
        service.step("dropSecret", token)


# --- zero dropped deliveries ----------------------------------------------------------------------


def test_no_correct_delivery_is_rejected_around_a_rotation(
    stack: Stack, service: RotationService, ingest_handler: ModuleType, aws_calls: AwsCalls
) -> None:
    assert deliver(ingest_handler, LOCAL_DEV_SECRET) == 202  # warms the key cache
    pending: list[str] = []
    statuses: list[tuple[str, str, int]] = []

    def interleave(step: str) -> None:
        if not pending:
            pending.append(value(stack, VersionStage=PENDING))
        # The sender may still use the old key, or may already have switched: both must pass.
        statuses.append((step, "old", deliver(ingest_handler, LOCAL_DEV_SECRET)))
        statuses.append((step, "new", deliver(ingest_handler, pending[0])))
        statuses.append((step, "old", deliver(ingest_handler, LOCAL_DEV_SECRET, "quote.received")))

    service.rotate(between_steps=interleave)
    assert [s for s in statuses if s[2] != 202] == []
    assert len(statuses) == 12


@dataclass
class Clock:
    """Wall clock and cache clock that move together, injected through Keyring's constructor."""

    now: datetime
    ticks: float = 0.0

    def utcnow(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.ticks

    def advance(self, delta: timedelta) -> None:
        self.now += delta
        self.ticks += delta.total_seconds()


def verifies(keyring: Keyring, secret: str) -> str | None:
    """The stage of the key that verifies a body signed with `secret`, as the ingest function checks."""
    body = b'{"id":"evt_clock"}'
    digest = signature.parse_header(signature.sign(body, secret.encode()))
    assert digest is not None
    return signature.verify(body, digest, keyring.accepted_keys())


def test_stage_that_verified_is_logged_and_counted(
    stack: Stack, service: RotationService, ingest_handler: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    token = service.start()
    service.step("createSecret", token)
    assert deliver(ingest_handler, value(stack, VersionId=token)) == 202
    printed = capsys.readouterr().out
    assert '"AcceptedWithPendingKey"' in printed


# --- failed rotations leave the old key working ---------------------------------------------------


class UnreachableRegistrar:
    def register(self, secret_arn: str, version_id: str, key: str) -> None:
        raise ConnectionError("notice topic unreachable")


@pytest.mark.parametrize("failing_step", ["setSecret", "testSecret"])
def test_failed_rotation_keeps_the_old_key(stack: Stack, ingest_handler: ModuleType, failing_step: str) -> None:
    secrets = reused_client("secretsmanager")
    if failing_step == "setSecret":
        rotator = Rotator(secrets, UnreachableRegistrar())
    else:  # a key that testSecret must refuse
        rotator = Rotator(secrets, _SilentRegistrar(), new_key=lambda: " short ")
    service = RotationService(
        stack.refs["WebhookSigningSecret"],
        lambda event: rotator.handle(event["Step"], event["SecretId"], event["ClientRequestToken"]),
    )
    current_before = next(vid for vid, s in stages(stack).items() if CURRENT in s)
    token = service.start()
    service.step("createSecret", token)
    failure = RotationError if failing_step == "testSecret" else ConnectionError
    with pytest.raises(failure):
        for step in STEPS[1:]:
            service.step(step, token)
    assert CURRENT in stages(stack)[current_before]
    assert value(stack, VersionStage=CURRENT) == LOCAL_DEV_SECRET
    assert deliver(ingest_handler, LOCAL_DEV_SECRET) == 202


class _SilentRegistrar:
    def register(self, secret_arn: str, version_id: str, key: str) -> None:
        pass


# --- abuse ----------------------------------------------------------------------------------------


def test_a_flood_of_bad_signatures_makes_at_most_two_secrets_manager_calls(
    ingest_handler: ModuleType, aws_calls: AwsCalls
) -> None:
    assert deliver(ingest_handler, LOCAL_DEV_SECRET) == 202  # warm
    aws_calls.reset()
    for i in range(200):
        assert deliver(ingest_handler, f"attacker-guess-{i}") == 401
    assert aws_calls.count("secrets-manager") <= 2
    assert aws_calls.count() == aws_calls.count("secrets-manager")  # nothing claimed, nothing sent


def test_new_key_is_learned_on_the_first_miss(
    stack: Stack, service: RotationService, ingest_handler: ModuleType
) -> None:
    """Receiver pitfall 9: the sender's switch is noticed at once, not when the 5-minute cache expires."""
    assert deliver(ingest_handler, LOCAL_DEV_SECRET) == 202
    token = service.start()
    service.step("createSecret", token)
    assert deliver(ingest_handler, value(stack, VersionId=token)) == 202


# --- operator commands ----------------------------------------------------------------------------


def _deployed_ingest_function(env: dict[str, str]) -> str:
    """IngestFunction as moto's Lambda knows it (configuration only: invoking would need Docker)."""
    iam, lam = reused_client("iam"), reused_client("lambda")
    role = iam.create_role(RoleName="ingest", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam.create_function(
        FunctionName="nowtoprint-webhooks-IngestFunction",
        Runtime="python3.13",
        Role=role,
        Handler="ingest_handler.lambda_handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        Environment={"Variables": env},
    )
    return "nowtoprint-webhooks-IngestFunction"


def test_emergency_rotation_refuses_the_leaked_key_at_once(
    stack: Stack, service: RotationService, ingest_handler: ModuleType, ingest_env: dict[str, str]
) -> None:
    from ntp.operations import EPOCH_VARIABLE, emergency_rotate

    leaked = LOCAL_DEV_SECRET
    assert deliver(ingest_handler, leaked) == 202
    function = _deployed_ingest_function(ingest_env)
    secrets, lam = reused_client("secretsmanager"), reused_client("lambda")

    result = emergency_rotate(secrets, lam, stack.refs["WebhookSigningSecret"], function, rotate=service.rotate)

    assert PREVIOUS not in json.dumps(stages(stack))
    variables = lam.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
    assert variables[EPOCH_VARIABLE] == result["epoch"]
    assert {k: v for k, v in variables.items() if k != EPOCH_VARIABLE} == ingest_env
    # The configuration change replaces every environment: a fresh one refuses the leaked key.
    recycled = load_function_module(TEMPLATE, "IngestFunction")
    assert deliver(recycled, leaked) == 401
    assert deliver(recycled, value(stack, VersionStage=CURRENT)) == 202


def test_install_the_secret_nowtoprint_issued(stack: Stack, ingest_handler: ModuleType) -> None:
    from ntp.operations import OperationError, install_secret

    secrets = reused_client("secretsmanager")
    with pytest.raises(OperationError):
        install_secret(secrets, stack.refs["WebhookSigningSecret"], "issued with a newline\n")
    issued = "whsec_" + "N0wT0Pr1nt" * 4
    version = install_secret(secrets, stack.refs["WebhookSigningSecret"], issued)
    assert CURRENT in stages(stack)[version]
    assert deliver(ingest_handler, issued) == 202  # learned on the first miss
    assert deliver(ingest_handler, LOCAL_DEV_SECRET) == 202  # previous, within its grace period


def test_the_secret_rule_is_the_same_on_every_route(aws: None, json_logs: JsonLogs) -> None:
    """`ntp install-secret` refuses what the keyring could never verify with, and the keyring warns
    about such a value stored another way (`aws secretsmanager put-secret-value`)."""
    from ntp import operations
    from ntp_webhooks.keyring import Keyring, secret_problem

    secrets = reused_client("secretsmanager")
    arn = secrets.create_secret(Name="rule", SecretString="initial-secret-value")["ARN"]
    for bad in ("", " padded", "pasted-with-newline\n"):
        assert secret_problem(bad) is not None
        with pytest.raises(operations.OperationError):
            operations.install_secret(secrets, arn, bad)
    operations.install_secret(secrets, arn, "short")  # NowToPrint's choice: accepted...
    assert operations.secret_warnings("short") and not operations.secret_warnings("x" * 32)  # ...with a warning
    secrets.put_secret_value(SecretId=arn, SecretString="stored-by-hand\n")  # the other route
    Keyring(secrets, arn).accepted_keys()
    assert any("looks wrong" in r["message"] and "whitespace" in r["problem"] for r in json_logs.records())
