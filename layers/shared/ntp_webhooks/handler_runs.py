"""Which steps of an event's processing have succeeded: the projection and each partner handler.

One item per event ID in the state table (`handled#<event id>`), with a string set of step names and a
TTL no shorter than the ingest's dedup retention. The consumer reads it before it runs anything and
adds to it once after, so the normal path costs one read and one write whatever the number of
handlers, and a redelivery, a second copy of the message or a redrive re-runs only what failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

KEY_ATTRIBUTE = "pk"
#: Attribute the state table's TimeToLiveSpecification names (the infrastructure tests check it).
TTL_ATTRIBUTE = "expiration"
KEY_PREFIX = "handled#"
#: The projection's own step; handler names are `module.function` or chosen names without a '#'.
PROJECTION_STEP = "#projection"


class HandlerRuns:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        retention_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._table = table_name
        self._retention = retention_seconds
        self._clock = clock

    def completed(self, event_id: str) -> frozenset[str]:
        """The steps that already succeeded for `event_id` (strongly consistent)."""
        item = self._client.get_item(
            TableName=self._table,
            Key={KEY_ATTRIBUTE: {"S": KEY_PREFIX + event_id}},
            ConsistentRead=True,
            ProjectionExpression="done",
        ).get("Item")
        return frozenset(item["done"]["SS"]) if item and "done" in item else frozenset()

    def record(self, event_id: str, steps: Iterable[str]) -> None:
        """Add `steps` to the event's completed set; the TTL restarts with each write."""
        names = sorted(set(steps))
        if not names:
            return
        self._client.update_item(
            TableName=self._table,
            Key={KEY_ATTRIBUTE: {"S": KEY_PREFIX + event_id}},
            UpdateExpression="ADD done :steps SET #ttl = :ttl",
            ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
            ExpressionAttributeValues={
                ":steps": {"SS": names},
                ":ttl": {"N": str(int(self._clock()) + self._retention)},
            },
        )
