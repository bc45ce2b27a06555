"""`make run`'s local stack, end to end over real HTTP, and the `ntp` CLI against it.

One stack for the module (`local`), on free loopback ports; stopping it must leave no thread or port
behind. The tests that need a stack of their own are in test_local_stack_own.py.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from devtools.local_stack.stack import DevStack
from devtools.sam_template import REPO_ROOT
from ntp.deliveries import encode, envelope
from ntp.operations import read_state
from ntp_webhooks import __version__
from tests.e2e.local_stacks import depth, eventually, ntp, post, quick_stack


def test_every_family_over_http_to_the_projection(
    local: tuple[DevStack, io.StringIO, Path], function_log: io.StringIO
) -> None:
    stack, console, _ = local
    order = [envelope(n, data={"orderId": "ord_http"}) for n in ("order.created", "order.confirmed", "order.shipped")]
    quote = envelope("quote.received", data={"rfqId": "rfq_http", "quoteId": "quote_http"})
    signal = envelope("workflow.preflight_completed", data={"jobId": "job_http"})
    statuses = [post(stack.webhook_url, encode(p))[0] for p in [order[2], order[0], quote, signal, order[1]]]
    assert statuses == [202] * 5
    duplicate_status, duplicate_body = post(stack.webhook_url, encode(order[1]))
    assert (duplicate_status, duplicate_body["status"]) == (200, "duplicate")
    assert post(stack.webhook_url, encode(order[0]), secret="wrong")[0] == 401

    stack.client("sqs").send_message(QueueUrl=stack.stack.refs["OrderEventsQueue"], MessageBody="poison")  # type: ignore[union-attr]

    ddb, table = stack.client("dynamodb"), stack.stack.refs["StateTable"]  # type: ignore[union-attr]

    def settled() -> bool:
        item = read_state(ddb, table, "order", "ord_http")
        return (
            item is not None
            and len(item["history"]) == 3
            and depth(stack, "OrderEventsDeadLetterQueue") == 1
            and all(depth(stack, q) == 0 for q in ("OrderEventsQueue", "QuoteEventsQueue", "WorkflowEventsQueue"))
            and read_state(ddb, table, "quote", "quote_http") is not None
            and read_state(ddb, table, "workflow", signal["id"]) is not None
        )

    eventually(settled)
    item = read_state(ddb, table, "order", "ord_http")
    assert item is not None and item["status"] == "shipped"
    assert [h["id"] for h in item["history"]] == [p["id"] for p in order]
    lines = console.getvalue().splitlines()
    # Each processed line names the partner handlers that ran (business_logic.py's examples).
    processed = [line for line in lines if "processed; handlers run:" in line]
    confirmed = f"OrderConsumerFunction: order.confirmed {order[1]['id']} processed"
    assert [line for line in processed if order[1]["id"] in line] == [
        f"{confirmed}; handlers run: business_logic.start_production"
    ]
    assert any(order[0]["id"] in line and line.endswith("handlers run: none") for line in processed)
    assert any(signal["id"] in line and line.endswith("business_logic.record_signal") for line in processed)
    # The poison message: five failed receives, and the last one says where it goes and how it comes back.
    failures = [line for line in lines if line.startswith("OrderConsumerFunction: unparseable body FAILED")]
    assert [line.split("FAILED ")[1].split(")")[0] for line in failures] == [f"(receive {n} of 5" for n in range(1, 6)]
    last = lines.index(failures[-1])
    assert lines[last + 1] == (
        "  -> last receive: SQS moves it to the dead-letter queue OrderEventsDeadLetterQueue; "
        "after the fix, `ntp redrive order --local` sends it back"
    )
    assert any(line.startswith("POST /webhooks -> 200 duplicate") for line in lines)
    # The function log: every line timestamped, handler output included.
    logged = function_log.getvalue().splitlines()
    assert logged and all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ", line) for line in logged)
    assert any("start_production" in line or "order.confirmed" in line for line in logged)


def test_not_found_and_bad_requests_are_json(local: tuple[DevStack, io.StringIO, Path]) -> None:
    stack, console, _ = local
    assert stack.front_door == "HttpApi"  # the template's default door
    base = stack.webhook_url.rsplit("/", 1)[0]
    for url, method in ((f"{base}/other", "GET"), (stack.webhook_url, "GET"), (stack.webhook_url, "PUT")):
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=5)
        # API Gateway answers a request no route matches itself: the function does not run.
        assert (caught.value.code, json.loads(caught.value.read())) == (404, {"message": "Not Found"})
    assert "GET /other -> 404 no route (only POST /webhooks)" in console.getvalue()
    status, body = post(stack.webhook_url, b"not json")
    assert (status, body["error"]) == (400, "invalid_envelope")


def test_cli_send_sample_and_duplicate(
    local: tuple[DevStack, io.StringIO, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, state_dir = local
    code, out, _ = ntp(state_dir, monkeypatch, capsys, "send", "order.shipped", "--local", "--duplicate")
    assert code == 0
    first, second = out.strip().splitlines()
    assert "-> 202" in first and second.startswith("duplicate") and "-> 200" in second


def test_cli_send_file_keeps_what_it_is_asked_to(
    local: tuple[DevStack, io.StringIO, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    _, _, state_dir = local
    path = tmp_path / "event.json"
    path.write_text(json.dumps(envelope("quote.updated", event_id="evt_from_file", data={"quoteId": "q_file"})))
    code, out, _ = ntp(state_dir, monkeypatch, capsys, "send", str(path), "--local", "--keep-id", "--repeat", "2")
    assert code == 0
    assert out.count("quote.updated evt_from_file ->") == 2 and "-> 202" in out and "-> 200" in out


def test_cli_status_shows_depths_and_the_projection(
    local: tuple[DevStack, io.StringIO, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stack, _, state_dir = local
    ddb, table = stack.client("dynamodb"), stack.stack.refs["StateTable"]  # type: ignore[union-attr]
    post(stack.webhook_url, encode(envelope("order.created", data={"orderId": "ord_status", "copies": 250})))
    eventually(lambda: read_state(ddb, table, "order", "ord_status") is not None)
    code, out, _ = ntp(state_dir, monkeypatch, capsys, "status", "--local", "--order", "ord_status")
    assert code == 0
    assert out.splitlines()[0] == f"release {__version__} (this checkout)"
    assert out.splitlines()[1].split() == ["family", "queued", "in", "flight", "dead"]
    assert '"pk": "order#ord_status"' in out
    assert '"copies": 250' in out  # the newest event's data, read from the archive


def test_cli_redrive_moves_dead_letters_back(
    local: tuple[DevStack, io.StringIO, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stack, console, state_dir = local
    sqs = stack.client("sqs")
    dlq = stack.stack.refs["WorkflowEventsDeadLetterQueue"]  # type: ignore[union-attr]
    fixed = envelope("workflow.redriven", data={"jobId": "job_redrive"})
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(fixed))  # a message whose cause was fixed
    code, out, _ = ntp(state_dir, monkeypatch, capsys, "redrive", "workflow", "--local")
    assert code == 0 and "StartMessageMoveTask started" in out
    eventually(lambda: f"{fixed['id']} processed" in console.getvalue())
    assert depth(stack, "WorkflowEventsDeadLetterQueue") == 0


def test_a_failing_handler_shows_its_exception_next_to_failed(
    local: tuple[DevStack, io.StringIO, Path], isolated_subscriptions: None
) -> None:
    from ntp_webhooks.subscriptions import on

    stack, console, _ = local
    attempts: list[str] = []
    shipped = envelope("order.shipped", data={"orderId": "ord_console"})

    @on("order.shipped", name="carrier-api")
    def carrier_down(event: Any) -> None:
        # Only this test's event: an order.shipped another test of the module sent (`ntp send
        # order.shipped --local`) may still reach the consumer now, and took this failure once.
        if event.id != shipped["id"]:
            return
        attempts.append(event.id)
        if len(attempts) == 1:
            raise ConnectionError("carrier API unreachable")

    assert post(stack.webhook_url, encode(shipped))[0] == 202
    eventually(lambda: f"{shipped['id']} processed" in console.getvalue())
    lines = [line for line in console.getvalue().splitlines() if shipped["id"] in line]
    failed_lines = [line for line in lines if "FAILED" in line]
    assert len(failed_lines) == 1, console.getvalue()[-3000:]
    (failed,) = failed_lines
    assert "carrier-api (ConnectionError: carrier API unreachable)" in failed
    assert attempts == [shipped["id"], shipped["id"]]


# --- a newcomer's first hour ----------------------------------------------------------------------


def test_sending_your_own_file_twice_is_a_duplicate_not_a_conflict(
    local: tuple[DevStack, io.StringIO, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    _, _, state_dir = local
    path = tmp_path / "my-event.json"
    path.write_text(json.dumps(envelope("order.created", event_id="evt_my_file"), indent=2) + "\n")
    first = ntp(state_dir, monkeypatch, capsys, "send", str(path), "--local", "--keep-id")
    second = ntp(state_dir, monkeypatch, capsys, "send", str(path), "--local", "--keep-id")
    assert first[0] == 0 and "evt_my_file -> 202" in first[1]
    assert second[0] == 0 and "evt_my_file -> 200" in second[1] and "duplicate" in second[1]


def test_keep_timestamp_alone_sends_a_fresh_id_with_the_files_timestamp(
    local: tuple[DevStack, io.StringIO, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    _, _, state_dir = local
    path = tmp_path / "event.json"
    path.write_text(json.dumps(envelope("order.created", event_id="evt_kept_ts")))
    code, out, _ = ntp(state_dir, monkeypatch, capsys, "send", str(path), "--local", "--keep-timestamp")
    assert code == 0 and "-> 202" in out and "evt_kept_ts" not in out


def test_an_unknown_event_name_warns_with_a_suggestion_and_is_still_sent(
    local: tuple[DevStack, io.StringIO, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, state_dir = local
    code, out, err = ntp(state_dir, monkeypatch, capsys, "send", "order.create", "--local")
    assert code == 0 and "-> 202" in out
    assert "order.create is not a documented event type (did you mean order.created?)" in err


def test_two_local_stacks_side_by_side(
    local: tuple[DevStack, io.StringIO, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    first, _, state_dir = local
    # A file left by a crashed stack: its process is gone. It must be ignored and cleaned up.
    crashed = state_dir / "1.json"
    crashed.write_text(json.dumps({"pid": 2**22 + 12345, "port": 1, "webhook_url": "http://127.0.0.1:1/webhooks"}))
    second = quick_stack(io.StringIO(), state_dir, name="second")
    try:
        second.start()
        port = int(second.webhook_url.rsplit(":", 1)[1].split("/")[0])
        code, _, err = ntp(state_dir, monkeypatch, capsys, "status", "--local")
        assert code == 2 and "several local stacks are running" in err and str(port) in err
        code, out, _ = ntp(state_dir, monkeypatch, capsys, "status", "--local", "--port", str(port))
        assert code == 0 and out.splitlines()[1].startswith("family")  # after the release line
        assert not crashed.exists()
    finally:
        second.stop()
    code, out, _ = ntp(state_dir, monkeypatch, capsys, "status", "--local")  # the first one, still up
    assert code == 0 and out.splitlines()[1].startswith("family")
    assert first.state_file is not None and first.state_file.exists()


def test_an_event_too_old_to_accept_says_how_to_send_it_anyway(
    local: tuple[DevStack, io.StringIO, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    _, _, state_dir = local
    path = tmp_path / "my-event.json"
    path.write_text(json.dumps({**envelope("quote.received"), "timestamp": "2026-04-16T10:00:00.000Z"}, indent=2))
    code, out, err = ntp(state_dir, monkeypatch, capsys, "send", str(path), "--local", "--keep-id")
    assert code == 1 and "-> 400" in out and "older than" in out
    assert "leave out --keep-id and --keep-timestamp" in err
    code, out, _ = ntp(state_dir, monkeypatch, capsys, "send", str(path), "--local")  # as the hint says
    assert code == 0 and "-> 202" in out


def test_an_explicitly_empty_secret_is_an_error(
    local: tuple[DevStack, io.StringIO, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, state_dir = local
    for argv in (["send", "order.created", "--local", "--secret", ""], ["sign", "--local", "--secret", ""]):
        code, out, err = ntp(state_dir, monkeypatch, capsys, *argv)
        assert (code, out) == (2, "") and err.strip() == (
            "ntp: --secret is empty: pass the signing secret, or leave --secret out to use the stack's"
        )


def test_without_credentials_a_running_local_stack_is_suggested(local: tuple[DevStack, io.StringIO, Path]) -> None:
    stack, _, state_dir = local
    port = int(stack.webhook_url.rsplit(":", 1)[1].split("/")[0])
    keep = ("PATH", "LANG", "SYSTEMROOT")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env |= {
        "HOME": str(state_dir),  # no ~/.aws
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_REGION": "us-east-1",
        "NTP_LOCAL_STATE_DIR": str(state_dir),
    }
    result = subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "ntp"), "send", "order.created"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"ntp: no AWS credentials for a deployed stack; a local stack is running (port {port}): add --local"
    )
