"""`make run` in a process of its own, as a user starts it: `--reload` picks up a code change, and a
partner module that does not import stops the start with one line (make release-check: each start is
a process importing boto3 and moto, seconds of CPU; the stack in-process is tests/e2e)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.sam_template import REPO_ROOT
from ntp.checkout import PARTNER_DIR_VARIABLE
from ntp.deliveries import encode, envelope
from tests.conftest import STAND_IN_PARTNER
from tests.e2e.local_stacks import eventually, post


def test_reload_picks_up_a_code_change_and_keeps_the_emulated_state(tmp_path: Path) -> None:
    """`make run ARGS=--reload`, as a user runs it (its own process), on a copy of the functions."""
    root = REPO_ROOT
    shutil.copy(root / "template.yaml", tmp_path / "template.yaml")
    shutil.copytree(root / "functions", tmp_path / "functions")
    partner = shutil.copytree(STAND_IN_PARTNER, tmp_path / "partner")
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
        env={
            **os.environ,
            "NTP_LOCAL_STATE_DIR": str(state_dir),
            "MARKER": str(marker),
            PARTNER_DIR_VARIABLE: str(partner),
        },
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

        business_logic = partner / "business_logic.py"
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
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()  # the failure stands; the stack does not outlive the test
            raise
        finally:
            console.close()
    assert not any(state_dir.glob("*.json"))


@pytest.mark.parametrize(
    ("mistake", "expected"),
    [
        (
            ('@on("order.confirmed")', '@on("order.confirmd")'),
            "ValueError: unknown event type 'order.confirmd'",
        ),
        (("def start_production(", "def start_production(:"), "SyntaxError: "),
    ],
)
def test_a_partner_module_that_does_not_import_stops_the_start_with_one_line(
    tmp_path: Path, mistake: tuple[str, str], expected: str
) -> None:
    """Issue 27, item 6: `make run` with a typo in `@on(...)` or a syntax error in business_logic.py
    says it in one line, as `--reload` does for the same mistake, instead of a traceback."""
    shutil.copy(REPO_ROOT / "template.yaml", tmp_path / "template.yaml")
    shutil.copytree(REPO_ROOT / "functions", tmp_path / "functions")
    partner = shutil.copytree(STAND_IN_PARTNER, tmp_path / "partner")
    business_logic = partner / "business_logic.py"
    text = business_logic.read_text()
    assert mistake[0] in text
    business_logic.write_text(text.replace(mistake[0], mistake[1], 1))
    line = text[: text.index(mistake[0])].count("\n") + 1
    # main() as `make run` calls it, with its log under tmp_path instead of .aws-sam/.
    script = (
        "import sys, pathlib, devtools.local_stack.__main__ as m; m.LOG_DIR = pathlib.Path(sys.argv[1]); "
        "raise SystemExit(m.main(sys.argv[2:]))"
    )
    argv = ["--port", "0", "--moto-port", "0", "--template", str(tmp_path / "template.yaml")]
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "logs"), *argv],
        check=False,
        cwd=REPO_ROOT,
        env={**os.environ, "NTP_LOCAL_STATE_DIR": str(tmp_path / "stacks"), PARTNER_DIR_VARIABLE: str(partner)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    (said,) = output.strip().splitlines()
    assert said.startswith("local stack: cannot start: the functions' code does not import: " + expected), said
    assert f"business_logic.py, line {line})" in said
