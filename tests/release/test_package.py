"""`make deploy` can succeed on AWS (make release-check, which CI runs after make test): `sam package` of
the build (the command `make deploy` runs, with the bucket named, against moto's S3) leaves every
artifact in S3, and CloudFormation's SAM transform accepts what it wrote, after the language extensions,
at each samconfig.toml environment."""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from devtools import deploy
from devtools.local_stack.stack import EmbeddedMoto
from devtools.sam_template import REPO_ROOT, read_template
from ntp.operations import VERSION_TAG
from ntp_webhooks import __version__

BUCKET = "partner-deploy-artifacts"


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], Any]]:
    """The packaged template, and an S3 client to the bucket that holds its artifacts."""
    if not deploy.BUILT.exists():
        subprocess.run(["make", "build"], cwd=REPO_ROOT, check=True)
    moto = EmbeddedMoto("127.0.0.1", 0)
    endpoint = "http://{}:{}".format(*moto.address)
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        output = tmp_path_factory.mktemp("package") / "packaged.yaml"
        env = {**deploy.sam_environment(), "AWS_ENDPOINT_URL": endpoint}
        done = subprocess.run(
            deploy.package_command(bucket=BUCKET, output=output), env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr[-2000:]
        yield read_template(output), s3
    finally:
        moto.stop()


def artifacts(template: dict[str, Any]) -> dict[str, Any]:
    return {f"{place}.{name}": value for place, name, value in deploy._artifacts(template["Resources"])}


def test_every_artifact_is_uploaded_to_s3_the_loops_consumer_too(packaged: tuple[dict[str, Any], Any]) -> None:
    template, s3 = packaged
    found = artifacts(template)
    consumer = "Resources.Fn::ForEach::Families.${Family}ConsumerFunction.CodeUri"
    # ingest, the consumers' loop, rotation, the shared layer, the partner's layer
    assert consumer in found and len(found) == 5
    for place, uri in found.items():
        assert isinstance(uri, str) and uri.startswith(f"s3://{BUCKET}/"), place
        key = uri.removeprefix(f"s3://{BUCKET}/")
        names = zipfile.ZipFile(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())).namelist()
        if place == consumer:
            assert "consumer_handler.py" in names and "business_logic.py" not in names
        if place.startswith("Resources.PartnerLayer."):
            assert "python/business_logic.py" in names  # Lambda extracts it to /opt/python
    assert deploy.problems(template) == []


def test_the_version_tag_joins_the_tags_given_or_samconfigs() -> None:
    tag = f"{VERSION_TAG}={__version__}"
    assert deploy.with_version_tag(["--no-confirm-changeset"]) == ["--no-confirm-changeset", "--tags", tag]
    assert deploy.with_version_tag(["--tags", "team=print", "-x"]) == ["-x", "--tags", f"team=print {tag}"]
    assert deploy.with_version_tag(["--tags=team=print"])[-1] == f"team=print {tag}"


@pytest.mark.parametrize("env", ["default", "prod"])
@pytest.mark.parametrize("door", ["HttpApi", "FunctionUrl"])
def test_the_sam_transform_accepts_the_packaged_template(
    packaged: tuple[dict[str, Any], Any], env: str, door: str
) -> None:
    template, _ = packaged
    assert deploy.problems(template, {**deploy.parameter_overrides(env), "FrontDoor": door}) == []


def test_a_loop_artifact_left_local_is_refused_as_cloudformation_would(packaged: tuple[dict[str, Any], Any]) -> None:
    """What `sam package` wrote when the loop iterated a parameter (aws-sam-cli #9117): the check must fail."""
    template = copy.deepcopy(packaged[0])
    consumer = template["Resources"]["Fn::ForEach::Families"][2]["${Family}ConsumerFunction"]["Properties"]
    consumer["CodeUri"] = "QuoteConsumerFunction"
    found = deploy.problems(template)
    assert found[0].startswith("Resources.Fn::ForEach::Families.${Family}ConsumerFunction: CodeUri is")
    assert sum("'CodeUri' is not a valid S3 Uri" in line for line in found) == 3  # one per family


def test_make_deploy_stops_before_cloudformation_when_the_package_would_be_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deploy command is never run after a bad package: the partner reads why, not a rollback."""
    ran: list[list[str]] = []
    packaged_file = tmp_path / "packaged.yaml"
    packaged_file.write_text(
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  F:\n    Type: AWS::Serverless::Function\n"
        "    Properties: {CodeUri: F, Handler: h.h, Runtime: python3.13}\n"
    )
    monkeypatch.setattr(deploy, "PACKAGED", packaged_file)

    def run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        ran.append(command)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.setitem(os.environ, "AWS_REGION", "us-east-1")
    assert deploy.main([]) == 1
    assert [command[1] for command in ran] == ["package"]


def test_where_and_as_whom_artifacts_go_reach_sam_package_as_well_as_sam_deploy(
    packaged: tuple[dict[str, Any], Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make deploy ARGS='--region ... --profile ...'`: the code is uploaded where the stack is created,
    and the check judges the template at the parameters the deploy is given."""
    ran: list[list[str]] = []
    packaged_file = tmp_path / "packaged.yaml"
    packaged_file.write_text(json.dumps(packaged[0]))
    monkeypatch.setattr(deploy, "PACKAGED", packaged_file)

    def run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        ran.append(command)
        return subprocess.CompletedProcess(command, 0)

    judged: list[dict[str, str]] = []
    monkeypatch.setattr(subprocess, "run", run)

    def problems(_: dict[str, Any], parameters: dict[str, str]) -> list[str]:
        judged.append(parameters)
        return []

    monkeypatch.setattr(deploy, "problems", problems)
    given = ["--region", "eu-west-1", "--profile=partner", "--s3-bucket", "b"]
    assert deploy.main(["--", *given, "--parameter-overrides", "FrontDoor=FunctionUrl"]) == 0
    assert judged == [{"EnvironmentName": "dev", "FrontDoor": "FunctionUrl"}]  # samconfig's, then the deploy's
    package, sam_deploy = ran
    assert sam_deploy[1] == "deploy" and sam_deploy[-9:-2] == [*given, "--parameter-overrides", "FrontDoor=FunctionUrl"]
    assert sam_deploy[-2:] == ["--tags", f"{VERSION_TAG}={__version__}"]  # the stack says its release
    assert package[package.index("--region") + 1] == "eu-west-1" and "--profile" in package
    assert package[package.index("--s3-bucket") + 1] == "b" and "--resolve-s3" not in package
