"""Operator actions on a deployed stack (and on the local stack, through the same AWS APIs)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from ntp_webhooks.keyring import CURRENT, PENDING, PREVIOUS, secret_problem

#: Changing this variable makes Lambda replace every warm execution environment of the function.
EPOCH_VARIABLE = "KEYRING_EPOCH"


class OperationError(Exception):
    """A user-facing failure: printed without a traceback."""


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    try:
        (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except NoCredentialsError:
        raise  # the caller knows where else to look (a running local stack)
    except (ClientError, BotoCoreError) as exc:
        raise OperationError(f"cannot read stack {stack_name!r}: {exc}") from None
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


#: The stack tag that says which release it runs: `make deploy` sets it, `ntp status` shows it.
VERSION_TAG = "nowtoprint-webhooks-version"


def stack_release(cloudformation: Any, stack_name: str) -> str | None:
    """The release a deployed stack runs (its VERSION_TAG), or None when it was deployed without it."""
    try:
        (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except (ClientError, BotoCoreError) as exc:
        raise OperationError(f"cannot read stack {stack_name!r}: {exc}") from None
    return next((tag["Value"] for tag in stack.get("Tags", []) if tag["Key"] == VERSION_TAG), None)


def version_stages(secrets: Any, secret_id: str) -> dict[str, list[str]]:
    described = secrets.describe_secret(SecretId=secret_id)
    return {vid: list(stages) for vid, stages in described.get("VersionIdsToStages", {}).items()}


def start_rotation(secrets: Any, secret_id: str) -> str:
    """Ask Secrets Manager to rotate now with the configured RotationFunction; returns the new version ID."""
    token: str = secrets.rotate_secret(SecretId=secret_id, RotateImmediately=True)["VersionId"]
    return token


def wait_until_current(secrets: Any, secret_id: str, version_id: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stages = version_stages(secrets, secret_id).get(version_id, [])
        if CURRENT in stages:
            return
        if PENDING not in stages:
            raise OperationError(f"rotation to {version_id} failed; see the RotationFunction logs")
        time.sleep(2)
    raise OperationError(f"rotation to {version_id} did not finish in {timeout:.0f} s")


def install_secret(secrets: Any, secret_id: str, value: str) -> str:
    """Make `value` (the secret NowToPrint issued) AWSCURRENT; the old one becomes AWSPREVIOUS.

    The rule is the keyring's, whatever the route (this, or `aws secretsmanager put-secret-value`):
    the value is used exactly as stored, so it must be non-empty with no surrounding whitespace."""
    problem = secret_problem(value)
    if problem:
        raise OperationError(problem)
    version: str = secrets.put_secret_value(SecretId=secret_id, SecretString=value, VersionStages=[CURRENT])[
        "VersionId"
    ]
    return version


def revoke_previous(secrets: Any, secret_id: str) -> str | None:
    """Stop accepting the AWSPREVIOUS key by removing the label; returns the version it was on."""
    for version_id, stages in version_stages(secrets, secret_id).items():
        if PREVIOUS in stages:
            secrets.update_secret_version_stage(
                SecretId=secret_id, VersionStage=PREVIOUS, RemoveFromVersionId=version_id
            )
            return version_id
    return None


def recycle_environments(lambda_client: Any, function_name: str) -> str:
    """Replace every warm environment of the function, and so every cached key, at once."""
    config = lambda_client.get_function_configuration(FunctionName=function_name)
    variables = dict(config.get("Environment", {}).get("Variables", {}))
    variables[EPOCH_VARIABLE] = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    lambda_client.update_function_configuration(FunctionName=function_name, Environment={"Variables": variables})
    epoch: str = variables[EPOCH_VARIABLE]
    return epoch


def emergency_rotate(
    secrets: Any,
    lambda_client: Any,
    secret_id: str,
    ingest_function: str,
    *,
    rotate: Callable[[], str] | None = None,
    wait: Callable[[str], None] | None = None,
) -> dict[str, str | None]:
    """After a leak: rotate now, refuse the old key at once, and drop every cached copy of it."""
    token = (rotate or (lambda: start_rotation(secrets, secret_id)))()
    (wait or (lambda t: wait_until_current(secrets, secret_id, t)))(token)
    revoked = revoke_previous(secrets, secret_id)
    epoch = recycle_environments(lambda_client, ingest_function)
    return {"new_version": token, "revoked_version": revoked, "epoch": epoch}


def redrive(sqs: Any, dlq_url: str) -> str:
    """Move dead letters back to the queue they came from (StartMessageMoveTask); returns what was
    done, for the user."""
    arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    handle = sqs.start_message_move_task(SourceArn=arn)["TaskHandle"]
    return f"StartMessageMoveTask started ({handle}): the dead letters go back to their queue"


#: Below this, a shared secret is weak; NowToPrint's choice, so a warning, not a refusal.
RECOMMENDED_SECRET_LENGTH = 32


def secret_warnings(value: str) -> list[str]:
    if 0 < len(value) < RECOMMENDED_SECRET_LENGTH:
        return [f"the secret has {len(value)} characters; {RECOMMENDED_SECRET_LENGTH} or more are recommended"]
    return []


def read_state(client: Any, table_name: str, entity_type: str, entity_id: str) -> dict[str, Any] | None:
    """An entity's projection as plain Python values (`ntp status`): the stored attributes, the
    history expanded to `{seq, timestamp, event, id}`, and the latest event's name and timestamp (its
    body is in the archive, under the hour prefix `archiveHour` or the one before: Firehose names an
    object by its oldest record)."""
    from boto3.dynamodb.types import TypeDeserializer

    from ntp_webhooks.ordering import HistoryEntry
    from ntp_webhooks.projection import KEY_ATTRIBUTE, state_key  # imports Powertools: only when read

    key = {KEY_ATTRIBUTE: {"S": state_key(entity_type, entity_id)}}
    item = client.get_item(TableName=table_name, Key=key).get("Item")
    if item is None:
        return None
    deserialize = TypeDeserializer().deserialize
    values = {name: deserialize(value) for name, value in item.items()}
    history = [HistoryEntry.decode(text) for text in values["history"]]
    newest = next(h for h in history if h.id == values["lastEventId"]) if history else None
    return {
        **values,
        "entityType": entity_type,
        "entityId": entity_id,
        "lastEvent": newest.event if newest else None,
        "lastEventTimestamp": newest.timestamp.isoformat() if newest else None,
        "history": [
            {"seq": h.seq, "timestamp": h.timestamp.isoformat(), "event": h.event, "id": h.id} for h in history
        ],
    }
