"""`ntp` is a real package: the wheel `make dist` builds, installed into a fresh venv, gives a working `ntp`
with its dependencies declared, and carries no maintainer tool, moto or test code."""

from __future__ import annotations

import hashlib
import importlib.metadata
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path

import pytest

from devtools.sam_template import REPO_ROOT
from ntp_webhooks import __version__
from ntp_webhooks.signature import sign

#: PEP 517's build_wheel, called the way pip calls it with --no-build-isolation: the backend pyproject.toml
#: names, from .venv (which meets its setuptools requirement), in a process of its own.
BUILD = """
import importlib, sys, tomllib
backend = tomllib.load(open("pyproject.toml", "rb"))["build-system"]["build-backend"]
print(importlib.import_module(backend).build_wheel(sys.argv[1]))
"""


def run(*command: str | Path, cwd: Path | None = None, stdin: str | None = None) -> str:
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, input=stdin, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def wheelhouse(wheel: Path, cache: Path) -> Path:
    """The wheels pip resolves for `wheel`'s declared dependencies, downloaded once per set of declarations
    (and Python and platform): resolving them is parsing the index pages of boto3, botocore and
    pydantic-core, seconds of CPU at every run, for the same answer. A changed requirement is another set."""
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    declared = sorted(line for line in metadata.splitlines() if line.startswith("Requires-Dist:"))
    key = "\n".join([sys.version, sysconfig.get_platform(), *declared])
    house = cache / f"wheelhouse-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    if not house.is_dir():
        for old in cache.glob("wheelhouse-*"):
            shutil.rmtree(old, ignore_errors=True)
        partial = Path(tempfile.mkdtemp(prefix="partial-", dir=cache))
        run(sys.executable, "-m", "pip", "download", "--quiet", "--dest", partial, wheel)
        (partial / wheel.name).unlink()  # ours is built afresh at every run
        try:
            partial.rename(house)
        except OSError:  # another session filled it first
            shutil.rmtree(partial, ignore_errors=True)
    return house


def test_the_wheel_installs_a_working_ntp_into_a_fresh_venv(tmp_path: Path, pytestconfig: pytest.Config) -> None:
    # The build backend from .venv (pyproject's setuptools requirement, which it meets) rather than one
    # pip installs in an isolated build environment first: the same wheel, in half the time; called
    # directly (BUILD), not through `pip wheel`, which starts a second interpreter to call it. From a copy
    # of the sources: setuptools' build/ in the checkout could carry files of modules since removed.
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    source.mkdir()
    shutil.copy(REPO_ROOT / "pyproject.toml", source / "pyproject.toml")
    shutil.copytree(REPO_ROOT / "layers" / "shared", source / "layers" / "shared", ignore=ignore)
    shutil.copytree(REPO_ROOT / "ntp", source / "ntp", ignore=ignore)
    (tmp_path / "dist").mkdir()
    built = run(sys.executable, "-c", BUILD, tmp_path / "dist", cwd=source).strip().splitlines()[-1]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    assert wheel.name == built
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
    # pip resolves the wheel's declared dependencies as from an index, from a wheelhouse of them
    # (pytest's cache; tmp_path with -p no:cacheprovider): nothing else can be installed.
    pytest_cache = getattr(pytestconfig, "cache", None)  # None with -p no:cacheprovider
    cache = pytest_cache.mkdir("ntp-wheel") if pytest_cache is not None else tmp_path / "cache"
    cache.mkdir(exist_ok=True)
    house = wheelhouse(wheel, cache)
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    pip = (sys.executable, "-m", "pip", "--python", venv / "bin" / "python")
    run(*pip, "install", "--quiet", "--no-compile", "--no-index", "--find-links", house, wheel)
    (site_packages,) = (venv / "lib").glob("python3*/site-packages")
    installed = "\n".join(
        f"{dist.metadata['Name']}=={dist.version}"
        for dist in importlib.metadata.distributions(path=[str(site_packages)])
    )
    assert f"nowtoprint-webhook-receiver=={__version__}" in installed and "boto3==" in installed
    assert "moto" not in installed and "aws-sam-cli" not in installed

    elsewhere = tmp_path / "elsewhere"  # not the checkout: nothing of it on the path
    elsewhere.mkdir()
    ntp = venv / "bin" / "ntp"
    usage = run(ntp, "--help", cwd=elsewhere)
    assert "send" in usage and "replay" in usage
    assert run(ntp, "--version", cwd=elsewhere).strip() == f"ntp {__version__}"
    signed = run(ntp, "sign", "--secret", "s", cwd=elsewhere, stdin='{"id":"evt_1"}')
    assert signed.strip() == f"X-Webhook-Signature: {sign(b'{"id":"evt_1"}', b's')}"
