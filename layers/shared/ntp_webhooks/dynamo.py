"""Small DynamoDB helpers shared by the modules that write to the tables."""

from __future__ import annotations

from botocore.exceptions import ClientError


def is_condition_failure(exc: ClientError) -> bool:
    """True when a conditional write was refused because its condition did not hold."""
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
