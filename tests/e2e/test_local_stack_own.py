"""`make run`'s local stack and the `ntp` CLI, in tests that need a stack (or a process) of their own:
rotations, reloads, ports, README recipes. A module of its own so that pytest-xdist runs it
alongside test_local_stack.py."""

from __future__ import annotations

import io
import json
import socket
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devtools.local_stack.stack import DevStack
from ntp import cli
from ntp.deliveries import encode, envelope
from tests.e2e.local_stacks import eventually, ntp, post, quick_stack


def test_behind_a_function_url_the_function_answers_every_path(tmp_path: Path) -> None:
    console = io.StringIO()
    stack = quick_stack(console, tmp_path, name="url", parameter_overrides={"FrontDoor": "FunctionUrl"})
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

    def replay(*argv: str) -> tuple[int, str, str]:
        return ntp(state_dir, monkeypatch, capsys, "replay", "--local", *argv)

    code, _, err = replay("--event-id", payload["id"], "--handler", "nope")
    assert code == 2 and err.startswith("ntp: unknown handler nope (known: ") and len(err.strip().splitlines()) == 1
    code, out, _ = replay("--event-id", payload["id"], "--handler", handler, "--dry-run")
    assert code == 0 and f"would replay order.confirmed {payload['id']}" in out and "1 event would be replayed" in out
    assert f"{payload['id']} replayed" not in console.getvalue()  # a dry run sends nothing
    code, out, err = replay("--event-id", payload["id"], "--handler", handler)
    assert code == 0 and f"replayed 1 event into {handler}" in out and "replayed 1 of 1" in err
    eventually(lambda: f"{payload['id']} replayed; handlers run: {handler}" in console.getvalue())
    since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    code, _, err = replay("--since", since, "--event", "order.shipped", "--handler", handler)
    assert code == 2 and f"{handler} does not subscribe to order.shipped: nothing would run" in err
