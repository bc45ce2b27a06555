"""A record that fails: it alone comes back (ReportBatchItemFailures), until SQS moves it to the
family's dead-letter queue after maxReceiveCount receives; `ntp redrive` brings it back and the
consumer completes it without running again a step recorded as done.

Failing exactly one record needs no partner code: the consumer's `handled#<event id>` claim
(ntp_webhooks.handler_runs). The suite writes a claim held by another copy before sending the event,
so each receive of its record fails with ClaimHeld and comes back. Failed records return after the
queue's VisibilityTimeout (240 s in the template): the suite sets it to NTP_E2E_VISIBILITY_TIMEOUT
(default: the batching window + 15 s) while this runs and restores it in a finally block."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ntp_webhooks.archive import archived_hour
from ntp_webhooks.family_queues import ATTR_EVENT_ID
from ntp_webhooks.handler_runs import KEY_ATTRIBUTE, KEY_PREFIX, PROJECTION_STEP
from tests.deployed.harness import (
    Delivery,
    Ledger,
    Run,
    Sender,
    Settings,
    Stack,
    done_steps,
    eventually,
    ntp,
    subscribed_handlers,
    wait_processed,
)

FAMILY = "order"
#: The token of the claim the suite holds; a consumer's own tokens are random hex.
HELD_TOKEN = "e2e-held-by-the-suite"


def dead_letters(stack: Stack, event_id: str) -> dict[str, Any] | None:
    """The family DLQ's message of `event_id`, if it is there; received with VisibilityTimeout 0, so
    it stays visible (to a redrive, and to the next look)."""
    sqs, url = stack.sqs, stack.dead_letter_queue_url(FAMILY)
    for _ in range(3):  # each receive samples the queue
        for message in sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        ).get("Messages", []):
            if _event_id(message) == event_id:
                return dict(message)
    return None


def _event_id(message: Any) -> str:
    attribute: dict[str, Any] = message.get("MessageAttributes", {}).get(ATTR_EVENT_ID, {})
    return str(attribute.get("StringValue", ""))


def delete_dead_letters(stack: Stack, run: Run) -> set[str]:
    """Delete this run's messages from the family DLQ; returns their event IDs."""
    sqs, url = stack.sqs, stack.dead_letter_queue_url(FAMILY)
    deleted: set[str] = set()
    for _ in range(5):
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        ).get("Messages", [])
        for message in messages:
            event_id = _event_id(message)
            if event_id.startswith(run.event_prefix):
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                deleted.add(event_id)
            else:  # not ours: visible again at once
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return deleted


@dataclass(frozen=True)
class DeadLettered:
    failing: Delivery
    passing: Delivery
    held: dict[str, Any]  # the claim the suite wrote
    message: dict[str, Any]  # the failing record's message in the DLQ
    failing_item: dict[str, Any] | None  # its handled# record then
    passing_first: dict[str, Any]  # the passing record's handled# record once processed
    passing_last: dict[str, Any] | None  # ... once the failing one was dead-lettered, and a cycle later
    passing_dead: bool
    seconds: float  # from sending to the DLQ
    max_receives: int
    visibility: int


@pytest.fixture(scope="module")
def dead_lettered(stack: Stack, sender: Sender, run: Run, ledger: Ledger, settings: Settings) -> Iterator[DeadLettered]:
    sqs, queue = stack.sqs, stack.queue_url(FAMILY)
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["VisibilityTimeout", "RedrivePolicy"])[
        "Attributes"
    ]
    policy = json.loads(attributes["RedrivePolicy"])
    dlq_arn = sqs.get_queue_attributes(QueueUrl=stack.dead_letter_queue_url(FAMILY), AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    assert policy["deadLetterTargetArn"] == dlq_arn, (policy, dlq_arn)
    window = int(stack.parameter("ConsumerBatchingWindowSeconds", "10"))
    # Longer than a batch is held (its window, then the invocation): a record still being processed
    # must not come back to another poller meanwhile (a second copy of the passing record).
    original, visibility = attributes["VisibilityTimeout"], settings.visibility_timeout or window + 15

    failing, passing = run.delivery("order.confirmed"), run.delivery("order.confirmed")
    now = time.time()
    held = {
        KEY_ATTRIBUTE: {"S": KEY_PREFIX + failing.event_id},
        "claimToken": {"S": HELD_TOKEN},
        "claimUntil": {"N": f"{now + 7200:.3f}"},  # outlives the record's receives even at 240 s each
        "expiration": {"N": str(int(now) + 86400)},
    }
    ledger.held.add(failing.event_id)
    stack.dynamodb.put_item(
        TableName=stack.output("StateTableName"), Item=held, ConditionExpression="attribute_not_exists(pk)"
    )
    try:
        sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": str(visibility)})
        # Read back at once; SQS may take up to a minute to apply it everywhere (NTP_E2E_DLQ_TIMEOUT allows it).
        eventually(
            lambda: (
                sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["VisibilityTimeout"])["Attributes"][
                    "VisibilityTimeout"
                ]
                == str(visibility)
            ),
            60,
            "the queue's new VisibilityTimeout",
        )
        started = time.monotonic()
        for delivery in (failing, passing):  # back to back: one batch, within the batching window
            answer = sender.send(delivery)
            assert answer.status == 202, answer
        passing_first = wait_processed(stack, passing, settings.process_timeout)
        message = eventually(
            lambda: dead_letters(stack, failing.event_id),
            settings.dead_letter_timeout,
            f"{failing.event_id} in the {FAMILY} dead-letter queue",
            interval=2,
        )
        seconds = time.monotonic() - started
        failing_item = stack.handled_item(failing.event_id)
        time.sleep(visibility + window + 5)  # a record failed with its batch would come back once more
        passing_last = stack.handled_item(passing.event_id)
        passing_dead = dead_letters(stack, passing.event_id) is not None
    finally:
        sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": original})
    yield DeadLettered(
        failing,
        passing,
        held,
        message,
        failing_item,
        passing_first,
        passing_last,
        passing_dead,
        seconds,
        int(policy["maxReceiveCount"]),
        visibility,
    )
    # Left in the DLQ (the redrive test did not run, or failed): nothing will process it now.
    for event_id in delete_dead_letters(stack, run):
        ledger.held.discard(event_id)
        ledger.dropped.add(event_id)


def test_a_failing_record_alone_comes_back_until_the_dead_letter_queue(
    stack: Stack, dead_lettered: DeadLettered
) -> None:
    failing, passing = dead_lettered.failing, dead_lettered.passing
    print(
        f"dead-lettered after {dead_lettered.seconds:.0f} s (maxReceiveCount {dead_lettered.max_receives}, "
        f"VisibilityTimeout {dead_lettered.visibility} s)"
    )
    assert dead_lettered.message["Body"].encode() == failing.body, "the DLQ holds other bytes than were sent"
    assert dead_lettered.failing_item == dead_lettered.held, "a step ran for the record whose claim was held"
    # It came back maxReceiveCount times, a visibility timeout apart, before SQS moved it.
    assert dead_lettered.seconds >= (dead_lettered.max_receives - 1) * dead_lettered.visibility

    # The other record of its batch: processed in that batch, never again, never dead-lettered. Every copy
    # that reaches a consumer rewrites the handled# record (claim, TTL in whole seconds), so it is unchanged
    # from its first processing until a cycle after the failing record reached the DLQ.
    done = done_steps(dead_lettered.passing_first)
    assert {PROJECTION_STEP, *subscribed_handlers(passing)} <= done and archived_hour(done), done
    assert dead_lettered.passing_last == dead_lettered.passing_first, "the passing record was processed again"
    assert not dead_lettered.passing_dead, "the passing record was dead-lettered with the failing one"
    assert stack.state_item(passing.state_key) is not None
    assert stack.state_item(failing.state_key) is None


def test_redrive_completes_the_record_without_rerunning_a_step_done(
    stack: Stack, dead_lettered: DeadLettered, ledger: Ledger, settings: Settings
) -> None:
    """The claim is released as its holder would, with `#projection` recorded done (as if that copy had
    projected the event before failing). After `ntp redrive`, the consumer completes the record (its
    archive step and handlers recorded) and does not project it: the event has an entity of its own,
    so its state item appears only if the projection ran again."""
    failing = dead_lettered.failing
    stack.dynamodb.update_item(
        TableName=stack.output("StateTableName"),
        Key={KEY_ATTRIBUTE: {"S": KEY_PREFIX + failing.event_id}},
        UpdateExpression="REMOVE claimToken, claimUntil ADD done :done",
        ConditionExpression="claimToken = :held",
        ExpressionAttributeValues={":done": {"SS": [PROJECTION_STEP]}, ":held": {"S": HELD_TOKEN}},
    )
    ledger.held.discard(failing.event_id)

    result = ntp(stack, "redrive", FAMILY)
    assert result.returncode == 0, result.stdout + result.stderr
    done = done_steps(wait_processed(stack, failing, settings.process_timeout))
    assert {PROJECTION_STEP, *subscribed_handlers(failing)} <= done and archived_hour(done), done
    assert stack.state_item(failing.state_key) is None, "the projection, recorded done, ran again"
    assert dead_letters(stack, failing.event_id) is None, "still in the dead-letter queue"
