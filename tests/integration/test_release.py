"""The deployed stack says which release it runs: `make deploy` tags it (tests/release/test_package.py,
and `make deploy-check` reads the tag back from LocalStack), and `ntp status` shows the tag."""

from __future__ import annotations

import json

import boto3
import pytest

from ntp.cli import Target
from ntp.operations import VERSION_TAG
from ntp_webhooks import __version__

TEMPLATE = json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}})


@pytest.mark.parametrize(("tags", "shown"), [({VERSION_TAG: "0.1.9"}, "0.1.9"), ({}, "unknown")])
def test_status_shows_the_release_the_stack_is_tagged_with(aws: None, tags: dict[str, str], shown: str) -> None:
    cloudformation = boto3.client("cloudformation")
    cloudformation.create_stack(
        StackName="receiver", TemplateBody=TEMPLATE, Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
    )
    target = Target(outputs={}, region="us-east-1", stack_name="receiver")
    assert target.release().startswith(shown)


def test_a_local_stack_runs_this_checkouts_release() -> None:
    assert Target(outputs={}, endpoint_url="http://127.0.0.1:4566").release() == f"{__version__} (this checkout)"


def test_one_version_the_changelog_leads_with_and_ntp_reports() -> None:
    """ntp_webhooks.__version__ is the one place: pyproject reads it, CHANGELOG.md's newest release is it."""
    import re
    import tomllib

    from devtools.sam_template import REPO_ROOT
    from ntp.cli import main

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]
    newest = re.search(r"^## \[(\d+\.\d+\.\d+)\]", (REPO_ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert newest is not None and newest[1] == __version__
    with pytest.raises(SystemExit) as printed:
        main(["--version"])
    assert printed.value.code == 0
