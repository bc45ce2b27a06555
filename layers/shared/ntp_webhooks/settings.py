"""Function configuration, validated once from the environment that template.yaml sets.

A missing or inconsistent variable fails the cold start loudly instead of a request later. Validated
with pydantic-core directly, for the same cold-start reason as `envelope`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any

from pydantic_core import SchemaValidator

#: Replay guard: the dedup record must outlive the oldest acceptable event by this margin.
MIN_RETENTION_MARGIN_HOURS = 24

_TEXT = {"type": "str", "min_length": 1}
_POSITIVE = {"type": "int", "gt": 0}


@dataclass(frozen=True)
class IngestSettings:
    """Environment of the ingest function; each field's variable is its name in upper case."""

    signature_header: str
    max_body_bytes: int
    event_max_age_hours: int
    dedup_retention_days: int
    dedup_table_name: str
    signing_secret_arn: str
    quote_queue_url: str
    order_queue_url: str
    workflow_queue_url: str
    previous_key_grace_hours: int = 72
    #: Seconds a sender should wait before retrying an in-flight or unavailable delivery.
    retry_after_seconds: int = 10

    @property
    def queue_urls(self) -> dict[str, str]:
        return {"quote": self.quote_queue_url, "order": self.order_queue_url, "workflow": self.workflow_queue_url}


@dataclass(frozen=True)
class ConsumerSettings:
    """Environment of the quote, order and workflow consumer functions."""

    event_family: str
    state_table_name: str
    #: Partner handlers' completion records live at least as long as the ingest's dedup records.
    dedup_retention_days: int
    #: History entries kept per state item (the item stays within one write unit at the default).
    state_history_length: int = 8


def env_name(attribute: str) -> str:
    return attribute.upper()


def _validator(settings: type[Any], schemas: dict[str, dict[str, Any]]) -> SchemaValidator:
    return SchemaValidator(
        {
            "type": "typed-dict",
            "extra_behavior": "ignore",
            "fields": {
                env_name(f.name): {
                    "type": "typed-dict-field",
                    "required": f.default is MISSING,
                    "schema": schemas.get(f.name, _TEXT if f.type == "str" else _POSITIVE),
                }
                for f in fields(settings)
            },
        }
    )


def _load[T](settings: type[T], validator: SchemaValidator, environ: Mapping[str, str] | None) -> T:
    values = validator.validate_python(dict(os.environ if environ is None else environ))
    names = {f.name: env_name(f.name) for f in fields(settings)}  # type: ignore[arg-type]
    return settings(**{name: values[env] for name, env in names.items() if env in values})


_INGEST = _validator(IngestSettings, {"previous_key_grace_hours": {"type": "int", "ge": 0}})
_CONSUMER = _validator(
    ConsumerSettings, {"event_family": {"type": "literal", "expected": ["quote", "order", "workflow"]}}
)


def load_ingest_settings(environ: Mapping[str, str] | None = None) -> IngestSettings:
    """Raises `pydantic_core.ValidationError` (naming the variable) or `ValueError`."""
    settings = _load(IngestSettings, _INGEST, environ)
    # Receiver pitfall 8: once a dedup record expires, a captured delivery could be replayed unless it is
    # already too old to be accepted.
    if settings.dedup_retention_days * 24 < settings.event_max_age_hours + MIN_RETENTION_MARGIN_HOURS:
        raise ValueError(
            "DEDUP_RETENTION_DAYS must exceed EVENT_MAX_AGE_HOURS by at least "
            f"{MIN_RETENTION_MARGIN_HOURS} hours, or old deliveries could be replayed"
        )
    return settings


def load_consumer_settings(environ: Mapping[str, str] | None = None) -> ConsumerSettings:
    return _load(ConsumerSettings, _CONSUMER, environ)
