"""A fault at every AWS call of the ingest and consumer functions: nothing is lost, and the generated
table in docs/reliability.md is current."""

from __future__ import annotations

import pytest

from devtools.sam_template import SamTemplate
from tools import fault_table


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
        ("consumer", "dynamodb", "GetItem"),
        ("consumer", "dynamodb", "UpdateItem"),
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


def test_the_committed_table_is_current(rows: list[tuple[fault_table.CallPoint, str, fault_table.Outcome]]) -> None:
    assert fault_table.DOC.read_text() == fault_table.render(rows), "run `make reliability` and commit"
