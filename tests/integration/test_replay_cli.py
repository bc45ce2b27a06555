"""`ntp replay`'s arguments (issue 27, item 3): a range or a type that cannot be meant is refused in
one line, with exit status 2, before any AWS call; the hours to list are said before they are listed;
`--dry-run` counts only the events a named handler would run for."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from devtools.pipeline import reused_client
from devtools.provision import Stack
from ntp import cli, replay
from ntp_webhooks import archive
from ntp_webhooks.archive import ArchiveRecord

HANDLER = "business_logic.start_production"  # subscribes to order.confirmed only


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    def resolve_target(args: Any) -> cli.Target:
        raise AssertionError("an AWS call before the arguments were checked")

    monkeypatch.setattr(cli, "resolve_target", resolve_target)


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert cli.main(["replay", "--handler", HANDLER, *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("ntp: "), err
    return err


@pytest.mark.usefixtures("no_aws")
def test_impossible_ranges_are_refused_in_one_line_before_any_aws_call(capsys: pytest.CaptureFixture[str]) -> None:
    now = datetime.now(UTC)
    assert "ArchiveRetentionDays is 90" in refused(capsys, "--since", "1900-01-01")
    assert "ArchiveRetentionDays" in refused(capsys, "--since", "1970-01-01", "--local")
    assert "is after --until" in refused(capsys, "--since", "2026-11-30T10:00Z", "--until", "2026-11-30T09:00Z")
    assert "in the future" in refused(capsys, "--since", (now + timedelta(days=1)).isoformat())
    # The retention bound follows the stack's value when it is given.
    assert "ArchiveRetentionDays is 7" in refused(
        capsys, "--since", (now - timedelta(days=8)).isoformat(), "--retention-days", "7"
    )


@pytest.mark.usefixtures("no_aws")
def test_a_misspelt_or_unsubscribed_event_type_is_refused_with_the_nearest_type(
    capsys: pytest.CaptureFixture[str],
) -> None:
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert "did you mean order.confirmed?" in refused(capsys, "--since", since, "--event", "order.confirmd")
    assert "does not subscribe to order.created" in refused(capsys, "--since", since, "--event", "order.created")
    assert "is not an event type" in refused(capsys, "--since", since, "--event", "Order Confirmed")


def test_the_retention_bound_is_the_templates_default(template: Any) -> None:
    assert int(template.parameter_defaults()["ArchiveRetentionDays"]) == replay.RETENTION_DAYS


@pytest.fixture
def mid_hour() -> Iterator[None]:
    """The clock half an hour from an hour's end: the test and the CLI count the same hours."""
    with time_machine.travel(datetime.now(UTC).replace(minute=30), tick=True):
        yield


@pytest.mark.usefixtures("mid_hour")
def test_the_hours_are_announced_before_listing_with_progress_and_dry_run_counts_only_what_would_run(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    s3, bucket = reused_client("s3"), stack.refs["ArchiveBucket"]
    now = datetime.now(UTC)
    for event_id, event_type in (("evt_confirmed", "order.confirmed"), ("evt_created", "order.created")):
        record = ArchiveRecord(event_id, event_type, "order", now.isoformat(), "", "", "AWSCURRENT", "v", "{}")
        s3.put_object(Bucket=bucket, Key=f"events/{now:%Y/%m/%d/%H}/{event_id}", Body=record.encode())
    monkeypatch.setattr(cli, "resolve_target", lambda args: cli.Target(outputs={"ArchiveBucketName": bucket}))
    monkeypatch.setattr(replay, "records_in", _marking(archive.records_in))

    since = now - timedelta(days=3)
    assert cli.main(["replay", "--handler", HANDLER, "--since", since.isoformat(), "--dry-run"]) == 0
    out, err = capsys.readouterr()
    hours = len(archive.hour_prefixes(since, now))  # from the hour before `since` to now: 74
    assert err.splitlines()[:2] == [f"listing {hours} hours of the archive", "(first listing)"]
    assert f"listed {hours} of {hours} hours (2 events found)" in err
    assert len([line for line in err.splitlines() if line.startswith("listed ")]) >= 10
    assert "would replay order.confirmed evt_confirmed" in out and "evt_created" not in out
    assert (
        out.splitlines()[-1] == f"1 event would be replayed into {HANDLER}; 1 event skipped: {HANDLER} not subscribed"
    )


def _marking(records_in: Any) -> Any:
    """records_in that writes a line to stderr at its first call: the first S3 listing."""
    calls: list[int] = []

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not calls:
            print("(first listing)", file=sys.stderr)
        calls.append(1)
        return records_in(*args, **kwargs)

    return wrapped
