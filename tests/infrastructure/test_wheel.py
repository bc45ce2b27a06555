"""`ntp` is a real package: the wheel `make dist` builds, installed into a fresh venv, gives a working `ntp`
with its dependencies declared, and carries no maintainer tool, moto or test code."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from devtools.sam_template import REPO_ROOT
from ntp_webhooks import __version__
from ntp_webhooks.signature import sign


def run(*command: str | Path, cwd: Path | None = None, stdin: str | None = None) -> str:
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, input=stdin, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def test_the_wheel_installs_a_working_ntp_into_a_fresh_venv(tmp_path: Path) -> None:
    # The build backend from .venv (pyproject's setuptools requirement, which it meets) rather than one
    # pip installs in an isolated build environment first: the same wheel, in half the time. From a copy
    # of the sources: setuptools' build/ in the checkout could carry files of modules since removed.
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    source.mkdir()
    shutil.copy(REPO_ROOT / "pyproject.toml", source / "pyproject.toml")
    shutil.copytree(REPO_ROOT / "layers" / "shared", source / "layers" / "shared", ignore=ignore)
    shutil.copytree(REPO_ROOT / "ntp", source / "ntp", ignore=ignore)
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--wheel-dir",
        tmp_path / "dist",
        source,
    )
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/", 1)[0] for name in names} == {
        "ntp",
        "ntp_webhooks",
        wheel.name.split("-")[0] + f"-{__version__}.dist-info",
    }
    assert not [name for name in names if "moto" in name or "/test" in name.removeprefix("ntp/testing.py")]
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert {"boto3", "pydantic", "aws-lambda-powertools"} <= {
        line.split(":", 1)[1].strip().split(" ")[0].split("=")[0].split(">")[0]
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:")
    }

    # A venv without pip of its own (ensurepip is most of a venv's creation), filled by this pip; no
    # bytecode compiled ahead of time (botocore's is most of an install): `ntp` compiles what it imports.
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    pip = (sys.executable, "-m", "pip", "--python", venv / "bin" / "python")
    run(*pip, "install", "--quiet", "--no-compile", wheel)
    installed = run(*pip, "list", "--format=freeze")
    assert "moto" not in installed and "aws-sam-cli" not in installed

    elsewhere = tmp_path / "elsewhere"  # not the checkout: nothing of it on the path
    elsewhere.mkdir()
    ntp = venv / "bin" / "ntp"
    assert "send" in run(ntp, "--help", cwd=elsewhere) and "replay" in run(ntp, "--help", cwd=elsewhere)
    assert run(ntp, "--version", cwd=elsewhere).strip() == f"ntp {__version__}"
    signed = run(ntp, "sign", "--secret", "s", cwd=elsewhere, stdin='{"id":"evt_1"}')
    assert signed.strip() == f"X-Webhook-Signature: {sign(b'{"id":"evt_1"}', b's')}"
