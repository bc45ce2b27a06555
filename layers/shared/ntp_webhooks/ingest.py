"""The ingest pipeline: raw bytes -> signature -> envelope -> dedup -> family queue -> response."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyInconsistentStateError,
    IdempotencyPersistenceLayerError,
    IdempotencyValidationError,
)
from botocore.exceptions import BotoCoreError, ClientError
from pydantic_core import SchemaValidator, ValidationError

from ntp_webhooks import signature
from ntp_webhooks.aws_clients import Deadline, deadline
from ntp_webhooks.dedup import Enqueued, claim_of
from ntp_webhooks.envelope import EnvelopeError, check_age, parse_envelope
from ntp_webhooks.errors import aws_error, error_code
from ntp_webhooks.family_queues import FamilyQueues, MessageAttributes
from ntp_webhooks.keyring import PENDING, PREVIOUS, Keyring, KeyringUnavailable, SigningKey
from ntp_webhooks.observability import count, logger, trace_id
from ntp_webhooks.responses import Rejection, json_response, source_not_allowed, unauthorized
from ntp_webhooks.routing import family_of
from ntp_webhooks.source_allowlist import allowed, source_ip

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from ntp_webhooks.dedup import Dedup
    from ntp_webhooks.settings import IngestSettings

SENDER_REQUEST_ID_HEADER = "x-request-id"
#: The one route. An HTTP API routes only this here; a function URL passes every request on.
WEBHOOK_PATH = "/webhooks"
#: Which key verified each accepted delivery: operators see when the sender switched keys.
#: Only the keys of a rotation in progress get a metric: an accepted delivery is counted by SQS
#: (NumberOfMessagesSent of the family queues), so the normal path writes no metric log line at all.
ACCEPTED_BY_STAGE = {
    PENDING: "AcceptedWithPendingKey",
    PREVIOUS: "AcceptedWithPreviousKey",
}
_MAX_LOGGED_HEADER = 128


def _optional(schema: dict[str, Any], *, nullable: bool = False) -> dict[str, Any]:
    field = {"type": "nullable", "schema": schema} if nullable else schema
    return {"type": "typed-dict-field", "required": False, "schema": field}


def _text(*, nullable: bool = False) -> dict[str, Any]:
    return _optional({"type": "str", "strict": True}, nullable=nullable)


def _object(fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "typed-dict", "extra_behavior": "ignore", "fields": fields}


#: The fields of a Lambda event the ingest reads, with the types API Gateway (payload 2.0) and a
#: function URL give them; every other field is left out. pydantic-core, as `envelope`, for the same
#: cold-start reason. An event no front door sends (a misconfigured integration, a hand-made test
#: event: `requestContext: null`, a header value or a body that is not a string) is answered 400.
_LAMBDA_EVENT = SchemaValidator(
    _object(
        {
            "rawPath": _text(nullable=True),
            "requestContext": _optional(
                _object(
                    {
                        "http": _optional(_object({"method": _text(nullable=True), "sourceIp": _text(nullable=True)})),
                        # Payload 1.0's place for the address: the ingest answers it 404, allowed or not.
                        "identity": _optional(_object({"sourceIp": _text(nullable=True)}), nullable=True),
                        "requestId": _text(nullable=True),
                    }
                )
            ),
            "headers": _optional(
                {
                    "type": "dict",
                    "keys_schema": {"type": "str", "strict": True},
                    "values_schema": {"type": "str", "strict": True},
                },
                nullable=True,
            ),
            "body": _text(nullable=True),
            "isBase64Encoded": _optional({"type": "bool", "strict": True}, nullable=True),
        }
    )
)


def lambda_event(event: object) -> dict[str, Any]:
    """`event`'s fields the ingest reads, checked (`_LAMBDA_EVENT`); else a 400 that names the fields
    at fault, never their values (a body or a header may be one of them)."""
    try:
        checked: dict[str, Any] = _LAMBDA_EVENT.validate_python(event)
    except ValidationError as exc:
        where = sorted({str(error["loc"][0]) for error in exc.errors(include_input=False) if error["loc"]})
        detail = ", ".join(where) if where else "the event is not an object"
        raise Rejection(400, "invalid_request", f"not an API Gateway event: {detail}") from None
    return checked


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def raw_body(event: Mapping[str, Any], max_bytes: int) -> bytes:
    """The body exactly as the sender sent it, decoding API Gateway's base64 when it says so."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        # Cheap bound before decoding: base64 is 4 characters per 3 bytes.
        if len(body) > (max_bytes + 2) // 3 * 4:
            raise Rejection(413, "payload_too_large", f"body exceeds {max_bytes} bytes")
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise Rejection(400, "invalid_body", "body is not valid base64") from None
    else:
        try:
            raw = body.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (`\ud800`): API Gateway passed bytes that are not UTF-8
            raise Rejection(400, "invalid_body", "body is not valid UTF-8 text") from None
    if len(raw) > max_bytes:
        raise Rejection(413, "payload_too_large", f"body exceeds {max_bytes} bytes")
    return raw


@dataclass(frozen=True)
class Delivery:
    """A verified, valid webhook ready for its family queue."""

    family: str
    body: str
    #: All but `received_at`, set when it is enqueued.
    attributes: MessageAttributes


class Ingest:
    """Turns one API Gateway v2 event into one response. Never raises. `budget`: its AWS calls' time
    budget in each invocation (the clients' own, `build_ingest`)."""

    def __init__(
        self,
        settings: IngestSettings,
        keyring: Keyring,
        dedup: Dedup,
        queues: FamilyQueues,
        *,
        utcnow: Callable[[], datetime] = _utcnow,
        budget: Deadline = deadline,
    ) -> None:
        self._settings = settings
        self._budget = budget
        self._keyring = keyring
        self._dedup = dedup
        self._queues = queues
        self._enqueue_event = dedup.once(self._enqueue)
        self._utcnow = utcnow
        self._max_age = timedelta(hours=settings.event_max_age_hours)
        self._retry_after = {"Retry-After": str(settings.retry_after_seconds)}

    def __call__(self, event: object, context: LambdaContext) -> dict[str, Any]:
        # One INFO line per delivery (accepted, duplicate or rejected) with its outcome and duration.
        started = time.perf_counter()
        try:
            with self._budget.applying(context):
                return self._handle(event, context, started)
        except Rejection as rejection:
            count("Rejected", reason=rejection.code)
            logger.info(
                "delivery rejected",
                extra={
                    "status": rejection.status,
                    "reason": rejection.code,
                    "duration_ms": _since(started),
                    **rejection.logged,
                },
            )
            return rejection.response()
        except Exception:
            count("Rejected", reason="internal_error")
            logger.exception("unexpected error while ingesting a delivery")
            return json_response(500, {"error": "internal_error", "message": "unexpected error"})

    def prepare(self) -> None:
        """Load the current signing key now (Lambda's init), not on the first request."""
        self._keyring.load_current()

    def _handle(self, received: object, context: LambdaContext, started: float) -> dict[str, Any]:
        event = lambda_event(received)
        # First, before the path, the signature or any AWS call: a refused source learns nothing more
        # and costs nothing more. The front door's address, never a header (`source_allowlist`).
        source = source_ip(event)
        if not allowed(self._settings.source_allowlist, source):
            raise source_not_allowed(source)
        http = event.get("requestContext", {}).get("http", {})
        if event.get("rawPath") != WEBHOOK_PATH:
            raise Rejection(404, "not_found", f"POST webhooks to {WEBHOOK_PATH}")
        if http.get("method") != "POST":
            raise Rejection(405, "method_not_allowed", "webhooks are POSTed", {"Allow": "POST"})
        headers: Mapping[str, str] = event.get("headers") or {}
        sender_request_id = signature.find_header(headers, SENDER_REQUEST_ID_HEADER)
        if sender_request_id:
            logger.append_keys(sender_request_id=sender_request_id[:_MAX_LOGGED_HEADER])

        raw = raw_body(event, self._settings.max_body_bytes)
        key = self._verify(raw, signature.find_header(headers, self._settings.signature_header))
        key_stage = key.stage

        try:
            envelope = parse_envelope(raw)
            check_age(envelope, self._utcnow(), self._max_age)
        except EnvelopeError as exc:
            raise Rejection(400, "invalid_envelope", exc.reason) from None
        family = family_of(envelope.event)
        logger.append_keys(event_id=envelope.id, event_type=envelope.event, family=family, key_stage=key_stage)

        attributes = MessageAttributes(
            event_type=envelope.event,
            event_id=envelope.id,
            api_request_id=event.get("requestContext", {}).get("requestId") or "",
            key_stage=key_stage,
            key_version=key.version_id,
            sender_request_id=(sender_request_id or "")[:_MAX_LOGGED_HEADER],
        )

        delivery = Delivery(family, raw.decode("utf-8"), attributes)  # UTF-8: the JSON parser accepted it
        enqueued = self._accept(claim_of(envelope.id, envelope.fields), delivery, context)
        if enqueued.duplicate:
            count("Duplicate")
            logger.info("duplicate delivery, already accepted", extra={"status": 200, "duration_ms": _since(started)})
            return json_response(200, {"status": "duplicate", "eventId": envelope.id})
        if key_stage in ACCEPTED_BY_STAGE:
            count(ACCEPTED_BY_STAGE[key_stage])
        logger.info(
            "delivery accepted",
            extra={
                "status": 202,
                "message_id": enqueued.message_id,
                "duration_ms": _since(started),
                "trace_id": trace_id(),  # the consumer's "event processed" line carries the same
            },
        )
        return json_response(202, {"status": "accepted", "eventId": envelope.id, "family": family})

    def _enqueue(self, *, claim: dict[str, str], delivery: Delivery, sent: _Sent) -> Enqueued:
        """The one step done once per event ID (`Dedup.once`, keyed on `claim` alone): the body to its
        family's queue. `sent` keeps the outcome for the caller, should Powertools' completion write
        fail after it (then Powertools raises instead of returning it)."""
        attributes = replace(delivery.attributes, received_at=self._utcnow().isoformat())
        sent.enqueued = Enqueued(self._queues.send(delivery.family, delivery.body, attributes))
        return sent.enqueued

    def _verify(self, raw: bytes, header_value: str | None) -> SigningKey:
        """The key that signed `raw`; refreshes keys once (rate-limited) on a miss."""
        digest = signature.parse_header(header_value)
        if digest is None:
            raise unauthorized()
        try:
            key = signature.matching_key(raw, digest, self._keyring.accepted_keys())
            if key is None and self._keyring.refresh_after_miss():
                key = signature.matching_key(raw, digest, self._keyring.accepted_keys())
        except KeyringUnavailable as exc:
            logger.error("signing keys unavailable", extra={"reason": str(exc)})
            raise Rejection(503, "unavailable", "signing keys unavailable, retry later", self._retry_after) from None
        if key is None:
            raise unauthorized()
        return key

    def _accept(self, claim: dict[str, str], delivery: Delivery, context: LambdaContext) -> Enqueued:
        """Claim the event ID and enqueue, once; Powertools' outcomes become the sender's answers."""
        self._dedup.lease_for(context)
        sent = _Sent()
        try:
            return self._enqueue_event(claim=claim, delivery=delivery, sent=sent)
        except IdempotencyAlreadyInProgressError:
            raise Rejection(
                409, "in_flight", "this event is being accepted by another delivery, retry later", self._retry_after
            ) from None
        except IdempotencyValidationError:
            logger.warning("event ID reused with a different body; refusing it")
            raise Rejection(409, "id_conflict", "event ID already accepted with a different body") from None
        except (IdempotencyPersistenceLayerError, IdempotencyInconsistentStateError, BotoCoreError, ClientError) as exc:
            if sent.enqueued is not None:
                # Enqueued, but marking the claim done failed. A 503 would make the sender retry and, once
                # the lease ends, enqueue it again; 202 is the truth. The claim expires with its lease, so a
                # re-send after that is enqueued again: the consumers' claims keep its handlers to one run.
                logger.error(
                    "event enqueued but its dedup record was not marked complete: a re-send after the "
                    "lease would be enqueued again (the consumer runs its handlers once)",
                    extra={**aws_error(exc), "message_id": sent.enqueued.message_id},
                )
                return sent.enqueued
            if isinstance(exc, ClientError) and error_code(exc) == "InvalidMessageContents":
                raise Rejection(400, "invalid_body", "body has characters SQS cannot carry") from None
            # The claim was released (or, if even that failed, expires with its lease): a retry succeeds.
            logger.error("AWS call failed while accepting a delivery; answered 503", extra=aws_error(exc))
            raise Rejection(503, "unavailable", "temporarily unavailable, retry later", self._retry_after) from None


@dataclass
class _Sent:
    """What one delivery's enqueue step sent, if it got that far."""

    enqueued: Enqueued | None = None


def build_ingest(
    settings: IngestSettings, *, budget: Deadline = deadline, keyring_clock: Callable[[], float] = time.monotonic
) -> Ingest:
    """Wire the pipeline to real AWS clients (endpoint and region from the usual AWS_* variables).
    `budget`: the time budget of every AWS call; `keyring_clock`: the keyring's monotonic clock."""
    from ntp_webhooks.aws_clients import client
    from ntp_webhooks.dedup import Dedup

    keyring = Keyring(
        client("secretsmanager", budget),
        settings.signing_secret_arn,
        max_age=min(300.0, settings.key_max_stale_seconds / 2),
        max_staleness=float(settings.key_max_stale_seconds),
        previous_grace=timedelta(hours=settings.previous_key_grace_hours),
        monotonic=keyring_clock,
    )
    dedup = Dedup(client("dynamodb", budget), settings.dedup_table_name, settings.dedup_retention_days * 86400)
    queues = FamilyQueues(client("sqs", budget), settings.queue_urls)
    return Ingest(settings, keyring, dedup, queues, budget=budget)
