"""docs/reference.md's `sam local invoke` recipe, run as written in a fresh clone's layout, on a machine
without Docker or an AWS account: it must get past the template to asking for a container runtime."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from devtools.sam_template import REPO_ROOT
from tests.conftest import TEMPLATE
from tests.e2e.local_stacks import doc_block
from tests.infrastructure.test_doc_commands import commands

#: What a fresh clone has that `sam local invoke` reads: the template, its code, the sample events.
CLONE = ("template.yaml", "samconfig.toml", "events", "functions", "layers", "partner", ".venv")
#: No container runtime, whatever the machine has: the recipe must get as far as asking for one.
NO_DOCKER = "unix:///nonexistent/docker.sock"
NEEDS_DOCKER = "requires a container runtime"


#: No AWS account either: neither tests/conftest.py's fake credentials nor this machine's. With credentials,
#: `sam local invoke` first asks STS for the account id, and without a network botocore retries that for
#: about 8 s before sam goes on ("No current session found"); without any, it goes on at once.
NO_AWS_ACCOUNT = {
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws/credentials",
    "AWS_CONFIG_FILE": "/nonexistent/aws/config",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def sam_env() -> dict[str, str]:
    """The shell a newcomer has: none of `make`'s SAM settings, no AWS account, and no Docker."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("SAM_CLI_", "AWS_"))}
    return kept | NO_AWS_ACCOUNT | {"DOCKER_HOST": NO_DOCKER}


#: A `sam local invoke` line of the recipe: the lines differ only in the function and its event file.
INVOKE = re.compile(r"\.venv/bin/sam local invoke (\w+) -e (\S+) --env-vars events/env\.json")


def test_the_sam_local_invoke_recipe_gets_past_the_template_to_docker(tmp_path: Path) -> None:
    """docs/reference.md's recipe in a fresh clone's layout: a `sam local invoke` line, after the
    block's `export`, reads the template (its `Fn::ForEach` needs SAM_CLI_ENABLE_LANGUAGE_EXTENSIONS)
    and stops only for want of Docker. Without the export the same line fails on the template, which
    is the traceback a newcomer met. `make build` is skipped: it is `make test`'s own step, and the
    built template keeps the same transform, so sam reads either the same way.

    sam runs the first line only (each run is seconds of CPU): the others are the same command with
    another function and event file, and sam checks neither name before it asks for Docker, so this
    test checks that each function is the template's and each event file is there."""
    recipe = commands(doc_block("sam-local-invoke"))
    exports = [line for line in recipe if line.startswith("export ")]
    invokes = [line for line in recipe if line.startswith(".venv/bin/sam local invoke ")]
    assert set(recipe) == {*exports, *invokes, "make build"}, recipe
    assert any("SAM_CLI_ENABLE_LANGUAGE_EXTENSIONS=1" in line for line in exports)
    for line in invokes:
        found = INVOKE.fullmatch(line)
        assert found, f"{line}: not the recipe's one command with another function and event file"
        function, event_file = found.groups()
        assert function in TEMPLATE.functions(), line
        assert (REPO_ROOT / event_file).is_file(), line
    for name in CLONE:
        (tmp_path / name).symlink_to(REPO_ROOT / name)

    script = "\n".join([*exports, invokes[0]])
    without_export = "export SAM_CLI_TELEMETRY=0\n" + invokes[0]
    running = {
        source: subprocess.Popen(
            ["bash", "-c", source],
            cwd=tmp_path,
            env=sam_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for source in (script, without_export)
    }
    said = {source: process.communicate(timeout=110)[0] for source, process in running.items()}

    assert NEEDS_DOCKER in said[script], f"{invokes[0]}\n{said[script][-3000:]}"
    assert "Traceback" not in said[script] and "unexpected error" not in said[script], said[script][-3000:]
    assert NEEDS_DOCKER not in said[without_export], said[without_export][-3000:]
    assert "unexpected error" in said[without_export] or "Traceback" in said[without_export]
