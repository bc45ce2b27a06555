"""Keyring against moto's Secrets Manager, with a controllable clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from moto import mock_aws

from ntp_webhooks.keyring import CURRENT, PENDING, PREVIOUS, Keyring, KeyringUnavailable


class Clock:
    def __init__(self) -> None:
        self.mono = 1000.0
        self.wall = datetime.now(UTC)

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += timedelta(seconds=seconds)


@pytest.fixture
def sm() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("secretsmanager")
        client.create_secret(Name="signing", SecretString="key-one")
        yield client


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def calls(sm: Any) -> list[str]:
    seen: list[str] = []
    sm.meta.events.register(
        "before-call.secrets-manager.*", lambda event_name, **_: seen.append(event_name.split(".")[-1])
    )
    return seen


def make(sm: Any, clock: Clock, **kwargs: Any) -> Keyring:
    return Keyring(sm, "signing", monotonic=lambda: clock.mono, utcnow=lambda: clock.wall, **kwargs)


def add_pending(sm: Any, value: str, token: str = "token-2-aaaaaaaaaaaaaaaaaaaaaaaaaaaa") -> str:
    sm.put_secret_value(SecretId="signing", SecretString=value, VersionStages=[PENDING], ClientRequestToken=token)
    return token


def promote(sm: Any, version_id: str) -> None:
    current = next(
        vid for vid, stages in sm.describe_secret(SecretId="signing")["VersionIdsToStages"].items() if CURRENT in stages
    )
    sm.update_secret_version_stage(
        SecretId="signing", VersionStage=CURRENT, MoveToVersionId=version_id, RemoveFromVersionId=current
    )
    sm.update_secret_version_stage(SecretId="signing", VersionStage=PENDING, RemoveFromVersionId=version_id)


def secrets_by_stage(keyring: Keyring) -> dict[str, bytes]:
    return {key.stage: key.secret for key in keyring.accepted_keys()}


def test_current_key_only(sm: Any, clock: Clock) -> None:
    assert secrets_by_stage(make(sm, clock)) == {CURRENT: b"key-one"}


def test_warm_reads_make_no_calls(sm: Any, clock: Clock, calls: list[str]) -> None:
    keyring = make(sm, clock)
    keyring.accepted_keys()
    first = len(calls)
    for _ in range(100):
        clock.advance(2)
        keyring.accepted_keys()
    assert first == 2  # DescribeSecret + GetSecretValue of the one version
    assert len(calls) == first


def test_the_init_load_is_one_call_and_the_first_miss_completes_the_stage_map(
    sm: Any, clock: Clock, calls: list[str]
) -> None:
    version = add_pending(sm, "key-two")
    promote(sm, version)  # key-one is now AWSPREVIOUS, within its grace
    keyring = make(sm, clock)
    calls.clear()
    keyring.load_current()
    assert calls == ["GetSecretValue"] and secrets_by_stage(keyring) == {CURRENT: b"key-two"}
    assert keyring.refresh_after_miss()  # a delivery signed with the previous key: never rate-limited
    assert calls[1:] == ["DescribeSecret", "GetSecretValue"]  # the current value stays cached
    assert secrets_by_stage(keyring) == {CURRENT: b"key-two", PREVIOUS: b"key-one"}


def test_refresh_after_max_age_reads_only_the_stage_map(sm: Any, clock: Clock, calls: list[str]) -> None:
    keyring = make(sm, clock)
    keyring.accepted_keys()
    calls.clear()
    clock.advance(300)
    keyring.accepted_keys()
    assert calls == ["DescribeSecret"]


def test_pending_and_previous_are_accepted(sm: Any, clock: Clock) -> None:
    keyring = make(sm, clock)
    version = add_pending(sm, "key-two")
    clock.advance(300)
    assert secrets_by_stage(keyring) == {CURRENT: b"key-one", PENDING: b"key-two"}
    promote(sm, version)
    clock.advance(300)
    assert secrets_by_stage(keyring) == {CURRENT: b"key-two", PREVIOUS: b"key-one"}
    assert [k.stage for k in keyring.accepted_keys()] == [CURRENT, PREVIOUS]


def test_previous_expires_after_grace(sm: Any, clock: Clock) -> None:
    version = add_pending(sm, "key-two")
    promote(sm, version)
    created = sm.get_secret_value(SecretId="signing", VersionStage=CURRENT)["CreatedDate"]
    clock.wall = created + timedelta(hours=71, minutes=59)
    keyring = make(sm, clock, previous_grace=timedelta(hours=72))
    assert PREVIOUS in secrets_by_stage(keyring)
    clock.wall = created + timedelta(hours=72)
    assert secrets_by_stage(keyring) == {CURRENT: b"key-two"}


def test_pending_label_without_a_value_is_skipped(sm: Any, clock: Clock) -> None:
    """What RotateSecret does before createSecret: a version with only the AWSPENDING label.

    moto cannot create a version without a value, so the label is added to DescribeSecret's answer;
    GetSecretValue for that version then fails with ResourceNotFoundException, as on AWS.
    """

    def add_valueless_pending(parsed: dict[str, Any], **_: Any) -> None:
        parsed["VersionIdsToStages"]["token-without-value-000000000000000"] = [PENDING]

    sm.meta.events.register("after-call.secrets-manager.DescribeSecret", add_valueless_pending)
    assert secrets_by_stage(make(sm, clock)) == {CURRENT: b"key-one"}


def test_forced_refresh_is_rate_limited_to_once_a_second(sm: Any, clock: Clock, calls: list[str]) -> None:
    keyring = make(sm, clock)
    keyring.accepted_keys()
    clock.advance(1)
    calls.clear()
    assert keyring.refresh_after_miss() is True
    assert keyring.refresh_after_miss() is False
    clock.advance(0.9)
    assert keyring.refresh_after_miss() is False
    assert calls == ["DescribeSecret"]
    clock.advance(0.1)
    assert keyring.refresh_after_miss() is True
    assert calls == ["DescribeSecret", "DescribeSecret"]


def test_junk_cannot_delay_a_new_key_and_costs_one_call_a_second(sm: Any, clock: Clock, calls: list[str]) -> None:
    """Bad signatures every 50 ms for 20 s; rotation adds a pending key at 7.3 s. The sender signs
    with it from then on: its first delivery that a refresh lets through is within the 1 s interval."""
    from ntp_webhooks import signature

    keyring = make(sm, clock)
    keyring.accepted_keys()
    calls.clear()
    new_key_at: float | None = None
    first_accepted: float | None = None
    body = b'{"id":"evt_1"}'
    for step in range(400):
        now = step * 0.05
        if new_key_at is None and now >= 7.3:
            add_pending(sm, "key-two")
            new_key_at = now
        # junk
        if signature.verify(body, "0" * 64, keyring.accepted_keys()) is None:
            keyring.refresh_after_miss()
        # the sender, once it has the new key
        if new_key_at is not None and first_accepted is None:
            digest = signature.sign(body, b"key-two").removeprefix("sha256=")
            stage = signature.verify(body, digest, keyring.accepted_keys())
            if stage is None and keyring.refresh_after_miss():
                stage = signature.verify(body, digest, keyring.accepted_keys())
            if stage is not None:
                first_accepted = now
        clock.advance(0.05)
    assert new_key_at is not None and first_accepted is not None
    assert first_accepted - new_key_at <= 1.0  # the budget is 2 s
    assert calls.count("DescribeSecret") <= 21  # one a second, over 20 s


def test_forced_refresh_finds_a_new_key(sm: Any, clock: Clock) -> None:
    keyring = make(sm, clock)
    keyring.accepted_keys()
    add_pending(sm, "key-two")
    assert PENDING not in secrets_by_stage(keyring)
    clock.advance(1)
    assert keyring.refresh_after_miss() is True
    assert secrets_by_stage(keyring)[PENDING] == b"key-two"


def _fail(**_: Any) -> None:
    raise EndpointConnectionError(endpoint_url="https://secretsmanager")


def test_unreachable_on_first_load_is_unavailable(sm: Any, clock: Clock) -> None:
    sm.meta.events.register("before-call.secrets-manager.*", _fail)
    with pytest.raises(KeyringUnavailable):
        make(sm, clock).accepted_keys()


def test_unreachable_later_keeps_the_cached_keys_until_they_are_stale(
    sm: Any, clock: Clock, calls: list[str], json_logs: Any
) -> None:
    keyring = make(sm, clock, max_age=300, max_staleness=600)
    keyring.accepted_keys()
    sm.meta.events.register("before-call.secrets-manager.*", _fail)
    clock.advance(300)
    assert secrets_by_stage(keyring) == {CURRENT: b"key-one"}
    calls.clear()
    clock.advance(0.5)
    keyring.accepted_keys()
    assert calls == []  # backs off instead of calling on every request
    with pytest.raises(KeyringUnavailable):  # a miss cannot be ruled out as the sender's new key
        keyring.refresh_after_miss()
    assert keyring.refresh_after_miss() is False  # misses are rate-limited too
    clock.advance(298.5)
    assert secrets_by_stage(keyring) == {CURRENT: b"key-one"}  # 599 s old: still used
    clock.advance(2)
    with pytest.raises(KeyringUnavailable, match="may have been revoked"):  # 601 s: no key is trusted
        keyring.accepted_keys()
    failures = [r for r in json_logs.records() if r["message"] == "signing key refresh failed"]
    assert len(failures) == 4 and all(r["level"] == "ERROR" for r in failures)
    assert failures[0]["error_code"] == "EndpointConnectionError"
    sm.meta.events.unregister("before-call.secrets-manager.*", _fail)
    clock.advance(1)
    assert secrets_by_stage(keyring) == {CURRENT: b"key-one"}  # recovers on the next request


def test_a_revoked_previous_key_is_refused_once_stale(sm: Any, clock: Clock) -> None:
    """A leaked AWSPREVIOUS key: revoked in Secrets Manager while refreshes fail. Past the staleness
    bound nothing is accepted (503 upstream) instead of the old map being trusted for hours."""
    keyring = make(sm, clock, max_age=300, max_staleness=600)
    promote(sm, add_pending(sm, "key-two"))
    assert secrets_by_stage(keyring)[PREVIOUS] == b"key-one"
    sm.meta.events.register("before-call.secrets-manager.*", _fail)
    clock.advance(3600)
    with pytest.raises(KeyringUnavailable):
        keyring.accepted_keys()


def test_missing_current_is_unavailable(sm: Any, clock: Clock) -> None:
    version = sm.describe_secret(SecretId="signing")["VersionIdsToStages"]
    (only,) = version
    sm.update_secret_version_stage(SecretId="signing", VersionStage=CURRENT, RemoveFromVersionId=only)
    with pytest.raises(KeyringUnavailable, match="AWSCURRENT"):
        make(sm, clock).accepted_keys()


def test_secret_is_not_in_repr(sm: Any, clock: Clock) -> None:
    assert "key-one" not in repr(make(sm, clock).accepted_keys())
