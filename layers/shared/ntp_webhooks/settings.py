"""Function configuration, read once from the environment that template.yaml sets.

A missing or invalid variable fails the cold start loudly (naming it) instead of a request later.
Each field's variable is its name in upper case.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ntp_webhooks.routing import families, template_name
from ntp_webhooks.source_allowlist import Network, parse_allowlist

#: Replay guard: the dedup record must outlive the oldest acceptable event by this margin.
MIN_RETENTION_MARGIN_HOURS = 24


@dataclass(frozen=True)
class IngestSettings:
    """Environment of the ingest function; each field's variable is its name in upper case."""

    signature_header: str
    max_body_bytes: int
    event_max_age_hours: int
    dedup_retention_days: int
    dedup_table_name: str
    signing_secret_arn: str
    #: family -> its queue's URL, each from `QUEUE_URL_<Family>` (`queue_url_variable`).
    queue_urls: dict[str, str]
    previous_key_grace_hours: int = 72
    #: Past this age of the last successful key load, no key is accepted (503): one may be revoked.
    key_max_stale_seconds: int = 600
    #: Seconds a sender should wait before retrying an in-flight or unavailable delivery.
    retry_after_seconds: int = 10
    #: The ranges deliveries may come from (template parameter SourceAllowlist); empty: any address.
    source_allowlist: tuple[Network, ...] = ()


@dataclass(frozen=True)
class ConsumerSettings:
    """Environment of the quote, order and workflow consumer functions."""

    event_family: str
    state_table_name: str
    #: The Firehose stream that writes the archive bucket.
    archive_stream_name: str
    #: Days a `handled#` record lives after its last write: longer than any message can still be
    #: redelivered or redriven (the DLQ's retention), or a redrive would run handlers again.
    handled_retention_days: int
    #: History entries kept per state item (the item stays within one write unit at the default).
    state_history_length: int = 8


class SettingsError(ValueError):
    """A variable is missing or invalid; the message names it."""


def env_name(attribute: str) -> str:
    return attribute.upper()


def queue_url_variable(family: str) -> str:
    """`QUEUE_URL_Quote`: the family as template.yaml names it, whose lines `make template` writes."""
    return f"QUEUE_URL_{template_name(family)}"


def _text(env: Mapping[str, str], name: str) -> str:
    return _required(env, env_name(name))


def _required(env: Mapping[str, str], variable: str) -> str:
    value = env.get(variable, "")
    if not value:
        raise SettingsError(f"{variable} is not set")
    return value


def _int(env: Mapping[str, str], name: str, default: int | None = None, minimum: int = 1) -> int:
    raw = env.get(env_name(name))
    if raw is None and default is not None:
        return default
    try:
        value = int(raw or "")
    except ValueError:
        raise SettingsError(f"{env_name(name)} must be an integer, not {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{env_name(name)} must be at least {minimum}")
    return value


def _networks(env: Mapping[str, str], name: str) -> tuple[Network, ...]:
    try:
        return parse_allowlist(env.get(env_name(name), ""))
    except ValueError as exc:  # a typo stops the cold start: it never passes as a narrower list, or none
        raise SettingsError(f"{env_name(name)}: {exc}") from None


def _families(env: Mapping[str, str]) -> tuple[str, ...]:
    try:
        return families(env)
    except ValueError as exc:  # unset or without the catch-all: a deployment fault, as a missing variable
        raise SettingsError(str(exc)) from None


def load_ingest_settings(environ: Mapping[str, str] | None = None) -> IngestSettings:
    env = os.environ if environ is None else environ
    settings = IngestSettings(
        signature_header=_text(env, "signature_header"),
        max_body_bytes=_int(env, "max_body_bytes"),
        event_max_age_hours=_int(env, "event_max_age_hours"),
        dedup_retention_days=_int(env, "dedup_retention_days"),
        dedup_table_name=_text(env, "dedup_table_name"),
        signing_secret_arn=_text(env, "signing_secret_arn"),
        # Every family needs its queue: a family missing from the template's list stops the cold start here.
        queue_urls={family: _required(env, queue_url_variable(family)) for family in _families(env)},
        previous_key_grace_hours=_int(env, "previous_key_grace_hours", default=72, minimum=0),
        retry_after_seconds=_int(env, "retry_after_seconds", default=10),
        key_max_stale_seconds=_int(env, "key_max_stale_seconds", default=600, minimum=60),
        source_allowlist=_networks(env, "source_allowlist"),
    )
    # Receiver pitfall 8: once a dedup record expires, a captured delivery could be replayed unless it
    # is already too old to be accepted.
    if settings.dedup_retention_days * 24 < settings.event_max_age_hours + MIN_RETENTION_MARGIN_HOURS:
        raise SettingsError(
            "DEDUP_RETENTION_DAYS must exceed EVENT_MAX_AGE_HOURS by at least "
            f"{MIN_RETENTION_MARGIN_HOURS} hours, or old deliveries could be replayed"
        )
    return settings


def load_consumer_settings(environ: Mapping[str, str] | None = None) -> ConsumerSettings:
    env = os.environ if environ is None else environ
    family = _text(env, "event_family").lower()  # as template.yaml names it: Quote
    if family not in _families(env):
        raise SettingsError(f"EVENT_FAMILY must be one of {', '.join(_families(env))}, not {family!r}")
    return ConsumerSettings(
        event_family=family,
        state_table_name=_text(env, "state_table_name"),
        archive_stream_name=_text(env, "archive_stream_name"),
        handled_retention_days=_int(env, "handled_retention_days"),
        state_history_length=_int(env, "state_history_length", default=8),
    )
