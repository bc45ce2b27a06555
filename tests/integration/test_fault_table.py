"""A fault at every AWS call of the ingest and consumer functions: nothing is lost, and the generated
table in docs/reliability.md is current."""

from __future__ import annotations

import pytest

from devtools.sam_template import SamTemplate
from tools import fault_table
from tools.edge_scenarios import Edge


@pytest.fixture(scope="module")
def rows(template: SamTemplate) -> list[tuple[fault_table.CallPoint, str, fault_table.Outcome]]:
    return fault_table.generate(template)


def test_every_call_of_both_functions_is_faulted(
    rows: list[tuple[fault_table.CallPoint, str, fault_table.Outcome]],
) -> None:
    points = {(point.function, point.service, point.operation) for point, _, _ in rows}
    for expected in [
        ("ingest", "secretsmanager", "GetSecretValue"),
        ("ingest", "dynamodb", "PutItem"),
        ("ingest", "sqs", "SendMessage"),
        ("ingest", "dynamodb", "UpdateItem"),
        ("consumer", "dynamodb", "UpdateItem"),
        ("consumer", "firehose", "PutRecordBatch"),
        ("consumer", "dynamodb", "BatchWriteItem"),
    ]:
        assert expected in points
    kinds = {kind for _, kind, _ in rows}
    assert set(fault_table.KINDS) <= kinds


def test_no_fault_loses_the_event_or_runs_a_recorded_handler_again(
    rows: list[tuple[fault_table.CallPoint, str, fault_table.Outcome]],
) -> None:
    for point, kind, outcome in rows:
        where = f"{point.label} / {kind}"
        assert outcome.sender_sees.endswith("202"), where
        assert outcome.final_state == "stored, handlers recorded, queues empty", where
        # The completion write is retried within the invocation: no fault runs a handler twice.
        assert outcome.handler_runs == 1, where
        assert outcome.messages == (2 if (point.operation, kind) == ("SendMessage", "lost response") else 1), where


@pytest.fixture(scope="module")
def edges(template: SamTemplate) -> dict[str, Edge]:
    by_name = {"copies": 0, "stale": 1, "junk": 2, "hung": 3}
    found = fault_table.edge_rows(template)
    return {name: found[index] for name, index in by_name.items()}


def test_two_environments_processing_one_record_at_once_run_its_handler_once(edges: dict[str, Edge]) -> None:
    """Finding 7: the copy that loses the claim fails its record; redelivered after the first
    finished, it runs nothing."""
    assert edges["copies"].figures == {
        "handler_runs": 1,
        "first_failed": 0,
        "second_failed": 1,
        "redelivered_failed": 0,
    }


def test_a_revoked_key_is_refused_once_the_keys_are_stale_under_a_failing_refresh(edges: dict[str, Edge]) -> None:
    """Finding 2: cached keys serve until KeyMaxStaleSeconds, each failed refresh an ERROR line and a
    KeyRefreshFailed metric; past it 503 + Retry-After (not the old stage map for hours); once
    Secrets Manager answers, the revoked key is refused."""
    figures = edges["stale"].figures
    assert figures["statuses"] == {
        "previous key, in its grace": 202,
        "past max_age, refresh failing": 202,
        "past KeyMaxStaleSeconds": 503,
        "refreshed: the revoked key": 401,
        "refreshed: the new key": 202,
    }
    assert figures["retry_after"] == "10"
    assert figures["error_lines"] == figures["refresh_failed_metrics"] == 2  # one per failed refresh


def test_junk_cannot_delay_a_new_key_and_costs_about_one_call_a_second(edges: dict[str, Edge]) -> None:
    """Finding 3: a key the rotation function adds is accepted within 2 s whatever junk arrives, and
    a flood of bad signatures costs at most one DescribeSecret a second (plus the cold start's)."""
    figures = edges["junk"].figures
    assert figures["junk"] == 201 and figures["junk_statuses"] == [401]
    assert figures["new_key_accepted_after_s"] is not None and figures["new_key_accepted_after_s"] <= 2.0
    assert figures["describe_secret_calls"] <= 10 + 1  # one a second, and the first request's full load


def test_hung_calls_end_in_a_json_503_before_the_timeout(edges: dict[str, Edge]) -> None:
    """Finding 11: attempts that could not finish before the timeout, less the reserve, are not started."""
    figures = edges["hung"].figures
    assert (figures["status"], figures["error"], figures["retry_after"]) == (503, "unavailable", "10")
    assert figures["answered_at_s"] <= figures["timeout_s"] - figures["reserve_s"]
    assert (figures["send_attempts"], figures["release_attempts"]) == (2, 1)  # both SDK attempts, then no room
    assert figures["error_codes"] == ["DeadlineExceeded"]


def test_the_committed_table_is_current(
    rows: list[tuple[fault_table.CallPoint, str, fault_table.Outcome]], edges: dict[str, Edge]
) -> None:
    page = fault_table.render(rows, list(edges.values()))
    assert fault_table.DOC.read_text() == page, "run `make reliability` and commit"
