"""Function configuration, parsed once from the environment that template.yaml sets.

A missing or inconsistent variable fails the cold start loudly instead of a request deep inside.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Replay guard: a fixed margin so the dedup record always outlives the oldest acceptable event.
MIN_RETENTION_MARGIN_HOURS = 24


class IngestSettings(BaseModel):
    """Environment of the ingest function (names as in template.yaml)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    signature_header: str = Field(alias="SIGNATURE_HEADER", min_length=1)
    max_body_bytes: int = Field(alias="MAX_BODY_BYTES", gt=0)
    event_max_age_hours: int = Field(alias="EVENT_MAX_AGE_HOURS", gt=0)
    dedup_retention_days: int = Field(alias="DEDUP_RETENTION_DAYS", gt=0)
    dedup_table_name: str = Field(alias="DEDUP_TABLE_NAME", min_length=1)
    signing_secret_id: str = Field(alias="SIGNING_SECRET_ARN", min_length=1)
    quote_queue_url: str = Field(alias="QUOTE_QUEUE_URL", min_length=1)
    order_queue_url: str = Field(alias="ORDER_QUEUE_URL", min_length=1)
    workflow_queue_url: str = Field(alias="WORKFLOW_QUEUE_URL", min_length=1)
    previous_key_grace_hours: int = Field(alias="PREVIOUS_KEY_GRACE_HOURS", default=72, ge=0)
    #: Seconds a sender should wait before retrying an in-flight or unavailable delivery.
    retry_after_seconds: int = Field(alias="RETRY_AFTER_SECONDS", default=10, gt=0)

    @model_validator(mode="after")
    def _retention_outlives_max_age(self) -> IngestSettings:
        # Pitfall 8: once a dedup record expires, a captured delivery could be replayed unless it is
        # already too old to be accepted.
        if self.dedup_retention_days * 24 < self.event_max_age_hours + MIN_RETENTION_MARGIN_HOURS:
            raise ValueError(
                "DEDUP_RETENTION_DAYS must exceed EVENT_MAX_AGE_HOURS by at least "
                f"{MIN_RETENTION_MARGIN_HOURS} hours, or old deliveries could be replayed"
            )
        return self

    @property
    def queue_urls(self) -> dict[str, str]:
        return {
            "quote": self.quote_queue_url,
            "order": self.order_queue_url,
            "workflow": self.workflow_queue_url,
        }


def load_ingest_settings(environ: Mapping[str, str] | None = None) -> IngestSettings:
    return IngestSettings.model_validate(dict(os.environ if environ is None else environ))
