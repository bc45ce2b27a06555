from __future__ import annotations

import pytest

from ntp_webhooks.settings import SettingsError, load_consumer_settings, load_ingest_settings

ENV = {
    "SIGNATURE_HEADER": "X-Webhook-Signature",
    "MAX_BODY_BYTES": "262144",
    "EVENT_MAX_AGE_HOURS": "72",
    "DEDUP_RETENTION_DAYS": "7",
    "DEDUP_TABLE_NAME": "dedup",
    "SIGNING_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:s",
    "QUEUE_URL_Quote": "https://q/quote",
    "QUEUE_URL_Order": "https://q/order",
    "QUEUE_URL_Workflow": "https://q/workflow",
    "EVENT_FAMILIES": "Quote,Order,Workflow",
}


def test_loads_the_template_environment() -> None:
    settings = load_ingest_settings(ENV)
    assert settings.max_body_bytes == 262144
    assert settings.queue_urls == {
        "quote": "https://q/quote",
        "order": "https://q/order",
        "workflow": "https://q/workflow",
    }
    assert settings.previous_key_grace_hours == 72


def test_missing_variable_fails_loudly() -> None:
    env = dict(ENV)
    del env["DEDUP_TABLE_NAME"]
    with pytest.raises(SettingsError, match="DEDUP_TABLE_NAME"):
        load_ingest_settings(env)


@pytest.mark.parametrize(
    ("name", "value"), [("MAX_BODY_BYTES", "big"), ("MAX_BODY_BYTES", "0"), ("EVENT_MAX_AGE_HOURS", "")]
)
def test_invalid_numbers_fail_loudly(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_ingest_settings({**ENV, name: value})


def test_consumer_settings_refuse_an_unknown_family() -> None:
    env = {
        "EVENT_FAMILY": "orders",
        "STATE_TABLE_NAME": "t",
        "HANDLED_RETENTION_DAYS": "15",
        "ARCHIVE_STREAM_NAME": "a",
        "EVENT_FAMILIES": "Quote,Order,Workflow",
    }
    with pytest.raises(SettingsError, match="EVENT_FAMILY"):
        load_consumer_settings(env)
    assert load_consumer_settings({**env, "EVENT_FAMILY": "order"}).state_history_length == 8
    assert load_consumer_settings({**env, "EVENT_FAMILY": "Order"}).event_family == "order"  # as the template names it


@pytest.mark.parametrize("families", [None, "Quote,Order"])
def test_the_functions_refuse_to_start_without_the_family_list(families: str | None) -> None:
    """EVENT_FAMILIES unset, or without the catch-all family: the cold start fails, the sender retries."""
    env = {k: v for k, v in ENV.items() if k != "EVENT_FAMILIES"} | ({"EVENT_FAMILIES": families} if families else {})
    with pytest.raises(SettingsError, match="EVENT_FAMILIES"):
        load_ingest_settings(env)


def test_the_ingest_refuses_to_start_without_a_queue_for_every_family() -> None:
    """A family in the list without its queue variable: the cold start fails, the sender retries, nothing is lost."""
    env = {k: v for k, v in ENV.items() if k != "QUEUE_URL_Workflow"}
    with pytest.raises(SettingsError, match="QUEUE_URL_Workflow is not set"):
        load_ingest_settings(env)


@pytest.mark.parametrize(("days", "hours"), [(3, 72), (1, 1), (7, 145)])
def test_dedup_retention_must_outlive_the_acceptance_window(days: int, hours: int) -> None:
    """Receiver pitfall 8: a replay must be too old to accept before its dedup record can expire."""
    with pytest.raises(ValueError, match="DEDUP_RETENTION_DAYS"):
        load_ingest_settings({**ENV, "DEDUP_RETENTION_DAYS": str(days), "EVENT_MAX_AGE_HOURS": str(hours)})
