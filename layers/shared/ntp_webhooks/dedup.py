"""Accept-once semantics for event IDs: Powertools idempotency on the DynamoDB dedup table.

The ingest function decorates its one enqueue step with `Dedup.once`, as Powertools' docs show.

Powertools implements the claim protocol this needs: a conditional PutItem claims the ID (status
INPROGRESS, with a lease as long as the invocation's remaining time), the work runs, then the record
is marked COMPLETED; if the work raises, the claim is deleted so the sender's retry can succeed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.serialization.dataclass import DataclassSerializer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_dynamodb import DynamoDBClient

#: Namespace of every dedup key. A constant, not the function or handler name (receiver pitfall 7), so
#: dedup history survives stack updates, second stacks and refactors. Never change it.
KEY_PREFIX = "nowtoprint-event"
#: Attribute the table's TimeToLiveSpecification must name (the infrastructure tests check it).
TTL_ATTRIBUTE = "expiration"
KEY_ATTRIBUTE = "id"


@dataclass(frozen=True)
class Enqueued:
    """What accepting an event produced; stored in its dedup record and returned to duplicates."""

    message_id: str
    duplicate: bool = False


def _as_duplicate(response: Enqueued, idempotent_data: DataRecord) -> Enqueued:
    # Powertools calls this only when it returns a response stored by an earlier delivery.
    return replace(response, duplicate=True)


def claim_of(event_id: str, content: dict[str, Any]) -> dict[str, str]:
    """What the dedup record is keyed and validated on: the event ID, and a digest of the parsed
    envelope, so the same content serialized differently is a duplicate and other content a conflict.
    A digest, because Powertools deep-copies what it hashes (cheap at 256 KiB this way)."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return {"id": event_id, "content": hashlib.sha256(canonical.encode()).hexdigest()}


class Dedup:
    """Powertools idempotency on the dedup table, configured once per execution environment."""

    def __init__(self, client: DynamoDBClient, table_name: str, retention_seconds: int) -> None:
        self.persistence = DynamoDBPersistenceLayer(
            table_name=table_name,
            key_attr=KEY_ATTRIBUTE,
            expiry_attr=TTL_ATTRIBUTE,
            boto3_client=client,
        )
        self.config = IdempotencyConfig(
            event_key_jmespath="id",
            payload_validation_jmespath="content",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=retention_seconds,
            response_hook=_as_duplicate,
        )

    def once[F: Callable[..., Enqueued]](self, function: F) -> F:
        """`function(claim=..., ...)` made idempotent on its `claim` (see `claim_of`)."""
        decorated: F = idempotent_function(
            data_keyword_argument="claim",
            persistence_store=self.persistence,
            config=self.config,
            key_prefix=KEY_PREFIX,
            output_serializer=DataclassSerializer(Enqueued),
        )(function)
        return decorated

    def lease_for(self, context: LambdaContext) -> None:
        """A claim's lease is the invocation's remaining time: a crash leaves a short-lived claim."""
        self.config.register_lambda_context(context)
