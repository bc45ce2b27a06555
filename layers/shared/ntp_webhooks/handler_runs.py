"""Which steps of an event's processing have succeeded (the projection and each partner handler),
and which copy of the event's message may run them now.

One item per event ID in the state table (`handled#<event id>`): a string set `done` of step names,
a claim (`claimToken`, `claimUntil`) and a TTL. Per record, two writes and no read (the second shared
with the batch's other records):
1. `claim`: one conditional UpdateItem takes the claim unless another copy holds an unexpired one,
   and returns `done` (ALL_NEW). The lease ends with the invocation (its remaining time), so a crash
   leaves a claim that is gone long before SQS redelivers (visibility timeout 240 s > 30 s timeout).
2. `finish_all`: once the batch's records are processed, one BatchWriteItem writes each item with every
   step done and without the claim.
A second copy of the message (an SQS duplicate, the ingest's send retried after a lost response)
that arrives while the first is being processed loses the claim: its record fails and SQS
redelivers it after the visibility timeout, when `done` says there is nothing left to run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ntp_webhooks.errors import is_condition_failure

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

KEY_ATTRIBUTE = "pk"
#: Attribute the state table's TimeToLiveSpecification names (the infrastructure tests check it).
TTL_ATTRIBUTE = "expiration"
KEY_PREFIX = "handled#"
#: The projection's own step; handler names are `module.function` or chosen names without a '#'.
PROJECTION_STEP = "#projection"
#: BatchWriteItem's limit of items per call.
BATCH_ITEMS = 25


class ClaimHeld(Exception):
    """Another copy of this event's message is being processed right now."""

    def __init__(self, until: float) -> None:
        super().__init__(f"another copy holds the claim for {max(0.0, until - time.time()):.0f} s more")
        self.until = until


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

    def _key(self, event_id: str) -> dict[str, Any]:
        return {KEY_ATTRIBUTE: {"S": KEY_PREFIX + event_id}}

    def _expiry(self) -> dict[str, str]:
        return {"N": str(int(self._clock()) + self._retention)}

    def claim(self, event_id: str, token: str, lease_seconds: float) -> frozenset[str]:
        """Take the event's claim for `lease_seconds` and return the steps already done. Raises
        `ClaimHeld` while another token's claim is unexpired. Retrying with the same token is safe."""
        now = self._clock()
        try:
            item = self._client.update_item(
                TableName=self._table,
                Key=self._key(event_id),
                UpdateExpression="SET claimToken = :token, claimUntil = :until, #ttl = :ttl",
                ConditionExpression="attribute_not_exists(claimUntil) OR claimUntil < :now OR claimToken = :token",
                ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues={
                    ":token": {"S": token},
                    ":until": {"N": f"{now + lease_seconds:.3f}"},
                    ":now": {"N": f"{now:.3f}"},
                    ":ttl": self._expiry(),
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )["Attributes"]
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            old: dict[str, Any] = exc.response.get("Item", {})  # type: ignore[assignment]  # ALL_OLD
            held = old.get("claimUntil", {}).get("N", "0")
            raise ClaimHeld(float(held)) from None
        return frozenset(item["done"]["SS"]) if "done" in item else frozenset()

    def release(self, event_id: str, token: str) -> None:
        """Give up `token`'s claim, if it took effect, so that a redelivery need not wait for its lease."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(event_id),
                UpdateExpression="REMOVE claimToken, claimUntil",
                ConditionExpression="claimToken = :token",
                ExpressionAttributeValues={":token": {"S": token}},
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise

    def finish_all(self, completions: Mapping[str, Iterable[str]]) -> set[str]:
        """Record each event's completed steps (`completions`: event ID -> every step done, those the
        claim returned and those that succeeded since) and release its claim; the TTL restarts. One
        BatchWriteItem per 25 events, each item written whole: no condition is needed, because no other
        copy can take a claim before its lease ends, and a lease is the invocation's time, within which
        every call finishes (`Deadline`). Returns the IDs DynamoDB left unprocessed (retry them)."""
        expiry = self._expiry()
        unprocessed: set[str] = set()
        requests: list[Any] = [
            {"PutRequest": {"Item": self._completed(event_id, steps, expiry)}}
            for event_id, steps in completions.items()
        ]
        for first in range(0, len(requests), BATCH_ITEMS):
            answer = self._client.batch_write_item(RequestItems={self._table: requests[first : first + BATCH_ITEMS]})
            for left in answer.get("UnprocessedItems", {}).get(self._table, []):
                unprocessed.add(str(left["PutRequest"]["Item"][KEY_ATTRIBUTE]["S"]).removeprefix(KEY_PREFIX))
        return unprocessed

    def _completed(self, event_id: str, steps: Iterable[str], expiry: dict[str, str]) -> dict[str, Any]:
        item: dict[str, Any] = {**self._key(event_id), TTL_ATTRIBUTE: expiry}
        if names := sorted(set(steps)):
            item["done"] = {"SS": names}
        return item
