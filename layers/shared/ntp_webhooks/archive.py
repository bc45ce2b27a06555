"""The evidence archive: every accepted delivery, exactly as received, with who sent it and which key
verified it, in the stack's S3 bucket.

A record is a line of JSON metadata (with the body's length), then the body's bytes as they came,
then a newline. The body is not a JSON string inside the metadata: escaping would change what is
stored and grow it (a 4 KB body would pass Firehose's 5 KB billing step).

The consumers put each event on a Firehose stream once (a step of its `handled#` record, like the
projection; the records of one SQS batch in one call), and Firehose writes batched objects under
`events/YYYY/MM/DD/HH/`: the UTC hour of the approximate arrival of the **oldest** record in the
object, not of each record. A record can therefore sit in an object of the hour before it arrived
(the buffer interval is up to 900 s), one object can hold records of two hours, and Firehose may
deliver a record twice. So:
- the step's name keeps the hour the consumer put the record (read after PutRecordBatch returned,
  so Firehose had it by then): its object is under that hour or the one before (`object_prefixes`), and
  the state item stores it as `archiveHour`;
- a time range is read from the hour before its start (`hour_prefixes`), and each record is kept or
  not by its own receive time, each event once.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_firehose import FirehoseClient

#: Where Firehose writes (its `Prefix` in template.yaml); it adds YYYY/MM/DD/HH/.
PREFIX = "events/"
#: The archive step in a `handled#` record's `done` set: `#archive:YYYY/MM/DD/HH`.
STEP = "#archive"
_HOUR = "%Y/%m/%d/%H"
GZIP_MAGIC = b"\x1f\x8b"


class ArchiveFormatError(ValueError):
    """An archive object that is not a sequence of records."""


@dataclass(frozen=True)
class ArchiveRecord:
    """One accepted delivery. `body` is the webhook's exact text (valid UTF-8, as ingest accepted it),
    so its bytes are `body.encode()`."""

    event_id: str
    event_type: str
    family: str
    received_at: str
    sender_request_id: str
    api_request_id: str
    key_stage: str
    key_version: str
    body: str

    def encode(self) -> bytes:
        """Metadata line, body bytes, newline: Firehose concatenates records as they are."""
        body = self.body.encode()
        meta = {name: value for name, value in asdict(self).items() if name != "body"} | {"body_bytes": len(body)}
        return json.dumps(meta, separators=(",", ":")).encode() + b"\n" + body + b"\n"


def decode_all(data: bytes) -> Iterator[ArchiveRecord]:
    """The records of one archive object, in order."""
    position = 0
    while position < len(data):
        end = data.find(b"\n", position)
        if end < 0:
            raise ArchiveFormatError(f"metadata without its body at byte {position}")
        meta: dict[str, Any] = json.loads(data[position:end])
        length = int(meta.pop("body_bytes"))
        body = data[end + 1 : end + 1 + length]
        if len(body) != length or data[end + 1 + length : end + 2 + length] != b"\n":
            raise ArchiveFormatError(f"a body shorter than its {length} bytes at byte {end + 1}")
        fields = {name: str(meta.get(name, "")) for name in ArchiveRecord.__dataclass_fields__ if name != "body"}
        yield ArchiveRecord(**fields, body=body.decode())
        position = end + 2 + length


def hour_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_HOUR)


def step_name(hour: str) -> str:
    return f"{STEP}:{hour}"


def archived_hour(done: Iterable[str]) -> str | None:
    """The hour of the archive step in a `done` set, or None if the event is not archived yet."""
    return next((name.split(":", 1)[1] for name in done if name.startswith(f"{STEP}:")), None)


def hour_prefixes(since: datetime, until: datetime) -> list[str]:
    """The object prefixes that can hold records that arrived between `since` and `until`: from the
    hour before `since` (an object is named by its oldest record, at most a buffer interval, 900 s, older)."""
    hour = (since.astimezone(UTC) - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    prefixes = []
    while hour <= until.astimezone(UTC):
        prefixes.append(f"{PREFIX}{hour.strftime(_HOUR)}/")
        hour += timedelta(hours=1)
    return prefixes


class Archive:
    def __init__(
        self, client: FirehoseClient, stream_name: str, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._client = client
        self._stream = stream_name
        self._clock = clock

    def put_all(self, records: list[ArchiveRecord]) -> list[str | Exception]:
        """Archive `records` with one PutRecordBatch per Firehose limit's worth (500 records, 4 MiB).
        For each record, in order: the hour (`YYYY/MM/DD/HH`) it was put, read once Firehose has it
        (its object is under that hour's prefix or the one before, `object_prefixes`); or why it is
        not archived: the error of its call, or Firehose's refusal of it in the answer (FailedPutCount)."""
        results: list[str | Exception] = []
        for chunk in _chunks([record.encode() for record in records]):
            try:
                answer = self._client.put_record_batch(
                    DeliveryStreamName=self._stream, Records=[{"Data": data} for data in chunk]
                )
            except Exception as exc:  # this call's records only: the other calls' are archived
                results += [exc] * len(chunk)
                continue
            hour = hour_of(self._clock())
            entries = answer["RequestResponses"] if answer.get("FailedPutCount") else [{}] * len(chunk)
            results += [ArchiveRefused(entry["ErrorCode"]) if entry.get("ErrorCode") else hour for entry in entries]
        return results


class ArchiveRefused(RuntimeError):
    """Firehose refused this record in its batch's answer (its error code; the others were archived)."""


#: PutRecordBatch's limits: records and bytes per call.
BATCH_RECORDS, BATCH_BYTES = 500, 4 * 1024 * 1024


def _chunks(encoded: list[bytes]) -> Iterator[list[bytes]]:
    """The records of each PutRecordBatch call, in order, within its limits."""
    chunk, size = list[bytes](), 0
    for data in encoded:
        if chunk and (len(chunk) == BATCH_RECORDS or size + len(data) > BATCH_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(data)
        size += len(data)
    if chunk:
        yield chunk


def object_prefixes(put_hour: str) -> list[str]:
    """Where the object holding a record put in `put_hour` is: that hour's prefix, or the one before
    when the object's oldest record arrived then (its buffer began in the previous hour)."""
    hour = datetime.strptime(put_hour, _HOUR).replace(tzinfo=UTC)
    return [f"{PREFIX}{(hour - timedelta(hours=1)).strftime(_HOUR)}/", f"{PREFIX}{put_hour}/"]


def records_in(s3: Any, bucket: str, prefixes: Iterable[str]) -> Iterator[ArchiveRecord]:
    """Every record under `prefixes`, oldest object first (for `ntp replay` and `ntp status`)."""
    paginator = s3.get_paginator("list_objects_v2")
    for prefix in prefixes:
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for listed in sorted(page.get("Contents", []), key=lambda o: (o["LastModified"], o["Key"])):
                body = s3.get_object(Bucket=bucket, Key=listed["Key"])["Body"].read()
                if body[:2] == GZIP_MAGIC:  # Firehose's GZIP objects (moto writes them as they came)
                    body = gzip.decompress(body)
                yield from decode_all(body)
