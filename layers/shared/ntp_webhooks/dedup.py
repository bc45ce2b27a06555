"""Accept-once semantics for event IDs: Powertools idempotency on the DynamoDB dedup table.

Powertools implements the claim protocol this needs: a conditional PutItem claims the ID (status
INPROGRESS, with a lease as long as the invocation's remaining time), the work runs, then the record
is marked COMPLETED; if the work raises, the claim is deleted so the sender's retry can succeed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

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


def _mark_duplicate(response: Any, idempotent_data: DataRecord) -> Any:
    # Powertools calls this only when it returns a response stored by an earlier delivery.
    return {**response, "duplicate": True}


class Dedup:
    """Runs `work` once per event ID; a repeat gets the first run's result with `duplicate: True`."""

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
            response_hook=_mark_duplicate,
        )
        self._run = idempotent_function(
            data_keyword_argument="claim",
            persistence_store=self.persistence,
            config=self.config,
            key_prefix=KEY_PREFIX,
        )(self._call)

    @staticmethod
    def _call(*, claim: dict[str, Any], work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        return work()

    def once(
        self,
        event_id: str,
        content: dict[str, Any],
        work: Callable[[], dict[str, Any]],
        context: LambdaContext,
    ) -> dict[str, Any]:
        """`content` is the parsed envelope: the same ID with other content is a conflict, while the
        same content serialized differently is a plain duplicate."""
        # The claim's lease is the invocation's remaining time: a crash leaves a short-lived claim.
        self.config.register_lambda_context(context)
        # Powertools deep-copies the claim; a digest keeps that cheap for a 256 KiB body.
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        claim = {"id": event_id, "content": hashlib.sha256(canonical.encode()).hexdigest()}
        result: dict[str, Any] = self._run(claim=claim, work=work)
        return result
