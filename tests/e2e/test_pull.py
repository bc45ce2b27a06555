"""`ntp pull` (issue 29, item 4): a deployed stack's archived events to the laptop, as files for `ntp send`
or sent into the local stack re-signed with its secret. The "deployed" stack here is a local stack too:
the command reads it through its outputs and AWS APIs exactly as it reads one on AWS."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from devtools.local_stack.stack import DevStack
from ntp import cli
from ntp.deliveries import encode, envelope
from tests.e2e.local_stacks import eventually, ntp, post


@pytest.fixture
def deployed_is_the_local_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    resolve = cli.resolve_target

    def resolve_target(args: Any) -> cli.Target:
        if args.local:
            return resolve(args)
        assert args.stack == "receiver-prod"
        target = resolve(type(args)(local=True, port=None, stack=None))
        return cli.Target(
            outputs=target.outputs, endpoint_url=target.endpoint_url, region=target.region, stack_name=args.stack
        )

    monkeypatch.setattr(cli, "resolve_target", resolve_target)


@pytest.mark.usefixtures("deployed_is_the_local_stack")
def test_pulled_events_become_files_and_local_deliveries(
    fresh: tuple[DevStack, io.StringIO, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stack, _, state_dir = fresh
    sent = envelope("order.confirmed", data={"orderId": "ord_pulled"})
    assert post(stack.webhook_url, encode(sent))[0] == 202
    pull = ("pull", "--stack", "receiver-prod")

    def archived() -> bool:  # the archive gets it once the consumer ran
        code = ntp(state_dir, monkeypatch, capsys, *pull, "--event-id", sent["id"], "--out", str(tmp_path / "x"))[0]
        return code == 0 and (tmp_path / "x" / f"{sent['id']}.json").exists()

    eventually(archived)

    # Files: the exact bytes received, named by event ID.
    assert (tmp_path / "x" / f"{sent['id']}.json").read_bytes() == encode(sent)

    # Into the local stack, re-signed with its secret: the same ID is a duplicate there, --fresh is new.
    since = "--since", sent["timestamp"][:16]
    code, out, _ = ntp(state_dir, monkeypatch, capsys, "pull", "--stack", "receiver-prod", *since, "--to-local")
    assert code == 0 and f"order.confirmed {sent['id']} -> 200" in out and '"duplicate"' in out, out
    code, out, _ = ntp(
        state_dir, monkeypatch, capsys, "pull", "--stack", "receiver-prod", *since, "--to-local", "--fresh"
    )
    assert (
        code == 0
        and "-> 202" in out
        and json.loads(out.split("-> 202 ", 1)[1].splitlines()[0])["eventId"] != sent["id"]
    )

    # Bounded: more matches than --limit is refused in one line.
    code, _, err = ntp(
        state_dir, monkeypatch, capsys, "pull", "--stack", "receiver-prod", *since, "--to-local", "--limit", "0"
    )
    assert code == 2 and "--limit must be at least 1" in err


def test_without_credentials_pull_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import boto3

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"):
        monkeypatch.setenv(name, str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    code = cli.main(["pull", "--stack", "receiver-prod", "--event-id", "evt_1", "--out", str(tmp_path / "x")])
    _, err = capsys.readouterr()
    assert code == 2 and err.startswith("ntp: no AWS credentials") and err.count("\n") == 1, err
    assert not (tmp_path / "x").exists()
