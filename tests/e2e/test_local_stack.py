"""`make run`'s local stack, end to end over real HTTP, and the `ntp` CLI against it.

One stack for the module, on free loopback ports; stopping it must leave no thread or port behind.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO, cast

import pytest

from devtools import cli
from devtools.deliveries import LOCAL_DEV_SECRET, encode, envelope
from devtools.local_stack.functions import TimestampedLog
from devtools.local_stack.stack import DevStack
from devtools.operations import read_state
from devtools.sam_template import REPO_ROOT
from ntp_webhooks.signature import sign


@pytest.fixture(scope="module")
def function_log() -> io.StringIO:
    """What `make run` writes to .aws-sam/local-stack-<port>.log."""
    return io.StringIO()


@pytest.fixture(scope="module")
def local(
    tmp_path_factory: pytest.TempPathFactory, function_log: io.StringIO
) -> Iterator[tuple[DevStack, io.StringIO, Path]]:
    threads_before = set(threading.enumerate())
    state_dir = tmp_path_factory.mktemp("local-stacks")
    console = io.StringIO()
    stack = DevStack(
        port=0,
        moto_port=0,
        retry_delay=0,
        wait_seconds=1,
        console=console,
        log=cast(TextIO, TimestampedLog(function_log)),
        state_dir=state_dir,
    )
    stack.start()
    ports = [int(stack.webhook_url.rsplit(":", 1)[1].split("/")[0]), int(stack.endpoint_url.rsplit(":", 1)[1])]
    try:
        assert stack.state_file is not None and stack.state_file.parent == state_dir
        yield stack, console, state_dir
    finally:
        stack.stop()
    leaked = [t.name for t in set(threading.enumerate()) - threads_before if t.is_alive()]
    assert leaked == [], leaked
    for port in ports:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open"
    assert list(state_dir.iterdir()) == []


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[DevStack, io.StringIO, Path]]:
    """A stack of its own, for tests that rotate its key: the module's stack keeps its key."""
    console, state_dir = io.StringIO(), tmp_path / "stacks"
    # moto's backends are per process: a fresh stack needs resource names of its own.
    stack = DevStack(
        port=0,
        moto_port=0,
        retry_delay=0,
        wait_seconds=1,
        console=console,
        state_dir=state_dir,
        name_prefix=f"fresh{uuid.uuid4().hex[:8]}",
    )
    try:
        stack.start()
        yield stack, console, state_dir
    finally:
        stack.stop()


def post(url: str, body: bytes, secret: str = LOCAL_DEV_SECRET) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "X-Webhook-Signature": sign(body, secret.encode())},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def eventually(check: Callable[[], bool], timeout: float = 45.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"not reached within {timeout} s")


def depth(stack: DevStack, queue: str) -> int:
    attributes = stack.client("sqs").get_queue_attributes(QueueUrl=stack.stack.refs[queue], AttributeNames=["All"])  # type: ignore[union-attr]
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"]) + int(
        attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"]
    )


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


def test_behind_a_function_url_the_function_answers_every_path(tmp_path: Path) -> None:
    console = io.StringIO()
    stack = DevStack(
        port=0,
        moto_port=0,
        console=console,
        state_dir=tmp_path,
        name_prefix=f"url{uuid.uuid4().hex[:8]}",
        parameter_overrides={"FrontDoor": "FunctionUrl"},
    )
    with stack:
        assert stack.front_door == "FunctionUrl"
        base = stack.webhook_url.rsplit("/", 1)[0]
        for url, method, status, error in (
            (f"{base}/other", "POST", 404, "not_found"),
            (stack.webhook_url, "GET", 405, "method_not_allowed"),
        ):
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(urllib.request.Request(url, data=b"{}", method=method), timeout=5)
            assert (caught.value.code, json.loads(caught.value.read())["error"]) == (status, error)


# --- the ntp CLI ----------------------------------------------------------------------------------


def ntp(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    monkeypatch.setenv("NTP_LOCAL_STATE_DIR", str(state_dir))
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    # The stack's functions run in this process too: keep only what the CLI printed.
    out = "".join(
        line for line in captured.out.splitlines(keepends=True) if not line.startswith(('{"level"', '{"_aws"'))
    )
    return code, out, captured.err


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
    assert out.splitlines()[0].split() == ["family", "queued", "in", "flight", "dead"]
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


def test_cli_rotate_locally_keeps_deliveries_flowing(
    fresh: tuple[DevStack, io.StringIO, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stack, _, state_dir = fresh
    code, out, _ = ntp(state_dir, monkeypatch, capsys, "rotate", "--local")
    assert code == 0 and json.loads(out)["rotated"] is True
    assert post(stack.webhook_url, encode(envelope("order.created")))[0] == 202  # old key, now AWSPREVIOUS
    code, out, _ = ntp(state_dir, monkeypatch, capsys, "send", "order.created", "--local")  # the new AWSCURRENT
    assert code == 0 and "-> 202" in out, out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["send", "order.created", "--url", "http://127.0.0.1:9/webhooks", "--secret", "s"], "cannot reach"),
        (["send", "order.created", "--url", "ftp://example.invalid/x", "--secret", "s"], "not an http(s) URL"),
        (["send", "order.created", "--url", "http://127.0.0.1:9/webhooks"], "no secret"),
        (["send", "no-such-file.json", "--url", "http://127.0.0.1:9/w", "--secret", "s"], "no such file"),
        (["send", "Not An Event", "--url", "http://127.0.0.1:9/w", "--secret", "s"], "neither an event name"),
        (["status", "--local"], "no local stack is running"),
        (["send", "order.created", "--keep-id", "--url", "http://127.0.0.1:9/w", "--secret", "s"], "apply to a file"),
        (["send", "{dir}", "--url", "http://127.0.0.1:9/w", "--secret", "s"], "is a directory"),
        (["send", "{no_event}", "--url", "http://127.0.0.1:9/w", "--secret", "s"], "invalid envelope: event"),
        (["send", "{no_id}", "--keep-id", "--url", "http://127.0.0.1:9/w", "--secret", "s"], "invalid envelope: id"),
        (["send", "{latin1}", "--url", "http://127.0.0.1:9/w", "--secret", "s"], "not UTF-8 text"),
    ],
)
def test_cli_errors_are_one_line_without_traceback(
    argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv(cli.SECRET_ENV, raising=False)
    # Invalid files fail before anything is sent: the URL is a closed port, so a send would say so.
    files = {
        "dir": tmp_path,
        "no_event": tmp_path / "no-event.json",
        "no_id": tmp_path / "no-id.json",
        "latin1": tmp_path / "latin1.json",
    }
    files["no_event"].write_text(json.dumps({k: v for k, v in envelope().items() if k != "event"}))
    files["no_id"].write_text(json.dumps({k: v for k, v in envelope().items() if k != "id"}))
    files["latin1"].write_bytes(json.dumps(envelope(data={"name": "Müller"}), ensure_ascii=False).encode("latin-1"))
    argv = [arg.format(**{name: str(path) for name, path in files.items()}) for arg in argv]
    code, out, err = ntp(tmp_path / "no-stacks", monkeypatch, capsys, *argv)
    assert code == 2
    assert message in err and "Traceback" not in err + out
    assert len(err.strip().splitlines()) == 1


def test_a_busy_port_is_a_clear_error_not_a_hang(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        stack = DevStack(port=0, moto_port=port, console=io.StringIO(), state_dir=tmp_path)
        with pytest.raises(OSError, match="in use"):
            stack.start()
        stack.stop()
    assert list(tmp_path.iterdir()) == []


def test_a_failing_handler_shows_its_exception_next_to_failed(
    local: tuple[DevStack, io.StringIO, Path], isolated_subscriptions: None
) -> None:
    from ntp_webhooks.subscriptions import on

    stack, console, _ = local
    attempts: list[str] = []

    @on("order.shipped", name="carrier-api")
    def carrier_down(event: Any) -> None:
        attempts.append(event.id)
        if len(attempts) == 1:
            raise ConnectionError("carrier API unreachable")

    shipped = envelope("order.shipped", data={"orderId": "ord_console"})
    assert post(stack.webhook_url, encode(shipped))[0] == 202
    eventually(lambda: f"{shipped['id']} processed" in console.getvalue())
    (failed,) = [line for line in console.getvalue().splitlines() if shipped["id"] in line and "FAILED" in line]
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


def test_ntp_secret_prints_the_current_key_after_a_rotation(
    fresh: tuple[DevStack, io.StringIO, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stack, console, state_dir = fresh
    code, before, _ = ntp(state_dir, monkeypatch, capsys, "secret", "--local")
    assert code == 0 and before.strip() == stack.current_secret()
    assert ntp(state_dir, monkeypatch, capsys, "rotate", "--local")[0] == 0
    code, after, _ = ntp(state_dir, monkeypatch, capsys, "secret", "--local")
    assert code == 0 and after.strip() != before.strip()
    assert f"signing secret  {after.strip()}" in console.getvalue()  # the banner shows the new key too


README = Path(__file__).resolve().parents[2] / "README.md"


def readme_block(marker: str) -> str:
    return README.read_text().split(f"<!-- {marker} -->", 2)[1].split("```bash", 1)[1].split("```", 1)[0]


def run_as_written(script: str, cwd: Path, state_dir: Path) -> subprocess.CompletedProcess[str]:
    """A README block run by bash in a fresh directory whose `.venv` is the project's, as a newcomer
    at the repository's root runs it (the files it creates land in `cwd`)."""
    (cwd / ".venv").symlink_to(REPO_ROOT / ".venv")
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env={**os.environ, "NTP_LOCAL_STATE_DIR": str(state_dir)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_readmes_send_recipes_run_as_written(fresh: tuple[DevStack, io.StringIO, Path], tmp_path: Path) -> None:
    stack, _, state_dir = fresh
    result = run_as_written(readme_block("send-recipes"), tmp_path, state_dir)
    assert result.returncode == 0, result.stderr
    statuses = [line.split(" -> ")[1][:3] for line in result.stdout.splitlines() if " -> " in line]
    assert statuses == ["202", "200", "202", "202", "202", "202", "200", "202"], result.stdout
    assert json.loads((tmp_path / "my-event.json").read_text())["event"] == "order.created"
    assert json.loads((tmp_path / "sent.json").read_bytes())["event"] == "quote.received"
    signature, secret = result.stdout.strip().splitlines()[-2:]
    assert signature == f"X-Webhook-Signature: {sign(b'{"id":"evt_1"}', b's')}"
    assert secret == stack.current_secret()


def test_the_readmes_curl_and_openssl_recipe_works_on_a_pretty_printed_file(
    fresh: tuple[DevStack, io.StringIO, Path], tmp_path: Path
) -> None:
    """The recipe as written in the README (only the port is this stack's), run by bash."""
    stack, _, state_dir = fresh
    recipe = readme_block("curl-recipe")
    assert "URL=http://127.0.0.1:3000/webhooks" in recipe  # `make run`'s default port
    result = run_as_written(recipe.replace("http://127.0.0.1:3000/webhooks", stack.webhook_url), tmp_path, state_dir)
    assert result.returncode == 0, result.stderr
    assert "\n  " in (tmp_path / "body.json").read_text()  # pretty-printed: curl -d would have broken it
    assert '"status":"accepted"' in result.stdout, result.stdout


def test_two_local_stacks_side_by_side(
    local: tuple[DevStack, io.StringIO, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    first, _, state_dir = local
    # A file left by a crashed stack: its process is gone. It must be ignored and cleaned up.
    crashed = state_dir / "1.json"
    crashed.write_text(json.dumps({"pid": 2**22 + 12345, "port": 1, "webhook_url": "http://127.0.0.1:1/webhooks"}))
    second = DevStack(
        port=0, moto_port=0, console=io.StringIO(), state_dir=state_dir, name_prefix=f"second{uuid.uuid4().hex[:8]}"
    )
    try:
        second.start()
        port = int(second.webhook_url.rsplit(":", 1)[1].split("/")[0])
        code, _, err = ntp(state_dir, monkeypatch, capsys, "status", "--local")
        assert code == 2 and "several local stacks are running" in err and str(port) in err
        code, out, _ = ntp(state_dir, monkeypatch, capsys, "status", "--local", "--port", str(port))
        assert code == 0 and out.startswith("family")
        assert not crashed.exists()
    finally:
        second.stop()
    code, out, _ = ntp(state_dir, monkeypatch, capsys, "status", "--local")  # the first one, still up
    assert code == 0 and out.startswith("family")
    assert first.state_file is not None and first.state_file.exists()


def test_reload_picks_up_a_code_change_and_keeps_the_emulated_state(tmp_path: Path) -> None:
    """`make run ARGS=--reload`, as a user runs it (its own process), on a copy of the functions."""
    root = REPO_ROOT
    shutil.copy(root / "template.yaml", tmp_path / "template.yaml")
    shutil.copytree(root / "functions", tmp_path / "functions")
    marker = tmp_path / "marker.txt"
    state_dir = tmp_path / "stacks"
    console = (tmp_path / "console.txt").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devtools.local_stack",
            "--reload",
            "--port",
            "0",
            "--moto-port",
            "0",
            "--retry-delay",
            "0",
            "--template",
            str(tmp_path / "template.yaml"),
        ],
        cwd=root,
        env={**os.environ, "NTP_LOCAL_STATE_DIR": str(state_dir), "MARKER": str(marker)},
        stdout=console,
        stderr=subprocess.STDOUT,
    )
    try:
        eventually(lambda: any(state_dir.glob("*.json")), timeout=60)
        (state_file,) = state_dir.glob("*.json")
        state = json.loads(state_file.read_text())
        first = envelope("order.created", data={"orderId": "ord_before_reload"})
        assert post(state["webhook_url"], encode(first))[0] == 202
        log = tmp_path / "console.txt"
        eventually(lambda: f"{first['id']} processed" in log.read_text())

        business_logic = tmp_path / "functions" / "consumers" / "business_logic.py"
        business_logic.write_text(
            business_logic.read_text()
            + '\n\n@on("order.created", name="reload-marker")\n'
            + "def mark(event: object) -> None:\n"
            + '    import os, pathlib\n    pathlib.Path(os.environ["MARKER"]).write_text(str(getattr(event, "id")))\n'
        )
        eventually(lambda: "reloaded the functions (business_logic.py changed)" in log.read_text())
        second = envelope("order.created", data={"orderId": "ord_after_reload"})
        assert post(state["webhook_url"], encode(second))[0] == 202
        eventually(lambda: marker.exists() and marker.read_text() == second["id"])

        # The emulated AWS state survived: the first event is still a duplicate, not a new one.
        assert post(state["webhook_url"], encode(first))[0] == 200
    finally:
        process.terminate()
        process.wait(timeout=30)
        console.close()
    assert not any(state_dir.glob("*.json"))


def test_a_port_left_in_time_wait_by_a_stopped_stack_is_free_a_port_in_use_is_not() -> None:
    from devtools.local_stack.stack import _ensure_free

    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug and moto bind
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server side closes first: its end of the connection waits in TIME_WAIT
    client.close()
    server.close()
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))  # what the old probe did: "Address already in use"
    _ensure_free("127.0.0.1", port)  # probed as the servers bind: free
    with socket.socket() as listening:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(("127.0.0.1", port))
        listening.listen()
        with pytest.raises(OSError):
            _ensure_free("127.0.0.1", port)


# --- the first hour: what `ntp` answers to a newcomer's mistakes ------------------------------------


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


def test_an_unregistered_event_name_needs_a_flag_for_a_deployed_stack(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    closed = ["--url", "http://127.0.0.1:9/webhooks", "--secret", "s"]  # nothing listens: nothing is delivered
    code, _, err = ntp(tmp_path, monkeypatch, capsys, "send", "order.shiped", *closed)
    assert code == 2 and err.strip() == (
        "ntp: order.shiped is not a documented event type (did you mean order.shipped?); "
        "to send it to a deployed stack anyway, add --unregistered"
    )
    code, _, err = ntp(tmp_path, monkeypatch, capsys, "send", "order.shiped", "--unregistered", *closed)
    assert code == 2 and "cannot reach http://127.0.0.1:9/webhooks" in err  # sent (with the warning)
    assert "warning: order.shiped is not a documented event type" in err


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


@pytest.mark.parametrize("route", ["stdin", "value"])
def test_install_secret_refuses_surrounding_whitespace_on_both_routes(
    route: str,
    fresh: tuple[DevStack, io.StringIO, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stack, _, state_dir = fresh
    before = stack.current_secret()

    def install(value: str) -> tuple[int, str, str]:
        if route == "value":
            return ntp(state_dir, monkeypatch, capsys, "install-secret", "--local", "--value", value)
        monkeypatch.setattr(sys, "stdin", io.StringIO(value))
        return ntp(state_dir, monkeypatch, capsys, "install-secret", "--local")

    issued = "whsec_" + "N0wT0Pr1nt" * 4
    for bad in (f" {issued}", f"{issued} ", f"\t{issued}"):
        code, _, err = install(bad)
        assert code == 2 and "whitespace" in err and len(err.strip().splitlines()) == 1
    assert stack.current_secret() == before
    # From stdin, the line ending that ends the input (`echo`, a file's last line) is not the value.
    code, out, _ = install(issued + "\n" if route == "stdin" else issued)
    assert code == 0 and "installed as AWSCURRENT" in out
    assert stack.current_secret() == issued


# --- the archive and `ntp replay` -------------------------------------------------------------------


def test_ntp_replay_reruns_the_named_handler_from_the_archive(
    fresh: tuple[DevStack, io.StringIO, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stack, console, state_dir = fresh
    payload = envelope("order.confirmed", data={"orderId": "ord_replay_cli"})
    assert post(stack.webhook_url, encode(payload))[0] == 202
    eventually(lambda: f"{payload['id']} processed" in console.getvalue())
    # Archived byte for byte in the local stack too.
    from ntp_webhooks.archive import PREFIX, records_in

    (record,) = [
        r
        for r in records_in(stack.client("s3"), stack.outputs()["ArchiveBucketName"], [PREFIX])
        if r.event_id == payload["id"]
    ]
    assert record.body.encode() == encode(payload)

    handler = "business_logic.start_production"
    code, _, err = ntp(
        state_dir, monkeypatch, capsys, "replay", "--local", "--event-id", payload["id"], "--handler", "nope"
    )
    assert code == 2 and err.startswith("ntp: unknown handler nope (known: ") and len(err.strip().splitlines()) == 1
    code, out, _ = ntp(
        state_dir,
        monkeypatch,
        capsys,
        "replay",
        "--local",
        "--event-id",
        payload["id"],
        "--handler",
        handler,
        "--dry-run",
    )
    assert code == 0 and f"would replay order.confirmed {payload['id']}" in out and "1 events would be replayed" in out
    assert f"{payload['id']} replayed" not in console.getvalue()  # a dry run sends nothing
    code, out, err = ntp(
        state_dir, monkeypatch, capsys, "replay", "--local", "--event-id", payload["id"], "--handler", handler
    )
    assert code == 0 and f"replayed 1 events into {handler}" in out and "replayed 1 of 1" in err
    eventually(lambda: f"{payload['id']} replayed; handlers run: {handler}" in console.getvalue())
    since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    code, out, _ = ntp(
        state_dir,
        monkeypatch,
        capsys,
        "replay",
        "--local",
        "--since",
        since,
        "--event",
        "order.shipped",
        "--handler",
        handler,
    )
    assert code == 1 and "nothing in the archive matches" in out
