"""The deploy pipeline's properties that matter (docs/pipeline.md): only one repository's environment
can assume a deploy role, no workflow holds a long-lived key, only deploy jobs can ask for an OIDC
token and each runs in its GitHub environment, and every samconfig.toml environment is deployed.
`make lint` checks the files themselves (actionlint on the workflows, cfn-lint on the template)."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.sam_template import REPO_ROOT, read_template

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
PIPELINE_TEMPLATE = REPO_ROOT / "pipeline" / "template.yaml"
OIDC = "token.actions.githubusercontent.com"


def workflows() -> dict[str, dict[str, Any]]:
    return {path.name: yaml.safe_load(path.read_text()) for path in sorted(WORKFLOWS.glob("*.yml"))}


def jobs() -> dict[str, dict[str, Any]]:
    return {f"{name}:{job_id}": job for name, doc in workflows().items() for job_id, job in doc["jobs"].items()}


def samconfig_environments() -> list[str]:
    config = tomllib.loads((REPO_ROOT / "samconfig.toml").read_text())
    return [name for name, value in config.items() if isinstance(value, dict)]


def resolve_sub(value: Any, names: dict[str, str]) -> str:
    """A `!Sub` string with the parameters in `names` (and the pseudo parameters) filled in."""
    text = value["Fn::Sub"] if isinstance(value, dict) else value
    assert isinstance(text, str), value
    pseudo = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"}
    for name, filled in {**pseudo, **names}.items():
        text = text.replace("${" + name + "}", filled)
    return text


@pytest.fixture(scope="module")
def pipeline() -> dict[str, Any]:
    return read_template(PIPELINE_TEMPLATE)


def statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in role["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def test_the_deploy_role_trusts_only_the_repositorys_environment(pipeline: dict[str, Any]) -> None:
    (trust,) = pipeline["Resources"]["DeployRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Effect"] == "Allow"
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert set(trust["Principal"]) == {"Federated"}
    # Exact matches only: no StringLike, no other operator that could widen the subject.
    assert set(trust["Condition"]) == {"StringEquals"}
    conditions = trust["Condition"]["StringEquals"]
    assert conditions == {f"{OIDC}:aud": "sts.amazonaws.com", f"{OIDC}:sub": conditions[f"{OIDC}:sub"]}
    subject = resolve_sub(
        conditions[f"{OIDC}:sub"], {"GitHubRepository": "my-org/my-repo", "GitHubEnvironment": "prod"}
    )
    assert subject == "repo:my-org/my-repo:environment:prod"
    assert "*" not in subject and "?" not in subject


def test_the_oidc_provider_is_githubs_for_sts(pipeline: dict[str, Any]) -> None:
    provider = pipeline["Resources"]["GitHubOidcProvider"]["Properties"]
    assert provider["Url"] == f"https://{OIDC}"
    assert provider["ClientIdList"] == ["sts.amazonaws.com"]


def test_the_deploy_role_passes_only_the_execution_role_to_cloudformation(pipeline: dict[str, Any]) -> None:
    passing = [s for s in statements(pipeline["Resources"]["DeployRole"]) if "iam:PassRole" in str(s)]
    assert passing == [
        {
            "Sid": "PassOnlyTheExecutionRole",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": {"Fn::GetAtt": ["ExecutionRole", "Arn"]},
            "Condition": {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}},
        }
    ]


def test_the_execution_role_cannot_change_the_pipelines_own_roles(pipeline: dict[str, Any]) -> None:
    """Its IAM permissions are for the stack's roles (<stack>-*): were the pipeline's roles named so,
    the execution role could rewrite its own policy, or the deploy role's trust."""
    names = {"StackName": "nowtoprint-webhooks"}
    own = [
        resolve_sub(pipeline["Resources"][role]["Properties"]["RoleName"], names)
        for role in ("DeployRole", "ExecutionRole")
    ]
    iam = [s for s in statements(pipeline["Resources"]["ExecutionRole"]) if "iam:" in str(s.get("Action"))]
    assert iam
    for statement in iam:
        for resource in statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]:
            pattern = resolve_sub(resource, names)
            for name in own:
                assert not fnmatch.fnmatchcase(f"arn:aws:iam::123456789012:role/{name}", pattern), (name, pattern)


def test_no_workflow_holds_a_long_lived_key() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        text = path.read_text()
        for key in ("aws-access-key-id", "aws-secret-access-key", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert key not in text, f"{path.name} names {key}"


def test_only_deploy_jobs_may_ask_for_an_oidc_token_and_each_runs_in_an_environment() -> None:
    for name, doc in workflows().items():
        assert "id-token" not in (doc.get("permissions") or {}), f"{name}: id-token at the workflow level"
    asking = {job_id: job for job_id, job in jobs().items() if (job.get("permissions") or {}).get("id-token")}
    assert asking, "no deploy job"
    for job_id, job in asking.items():
        assert job["permissions"] == {"id-token": "write", "contents": "read"}, job_id
        assert job.get("environment"), f"{job_id} asks for an OIDC token outside a GitHub environment"
        steps = job["steps"]
        assert any(str(step.get("uses", "")).startswith("aws-actions/configure-aws-credentials@") for step in steps)


def test_each_samconfig_environment_has_a_deploy_job_of_the_one_build() -> None:
    deploy = workflows()["deploy.yml"]["jobs"]
    by_environment = {job["environment"]: job for job in deploy.values() if job.get("environment")}
    environments = samconfig_environments()
    assert environments == ["default", "prod"]  # deploy.yml's jobs are written for these
    assert set(by_environment) == set(environments)
    for environment, job in by_environment.items():
        assert job["env"]["CONFIG_ENV"] == environment
        runs = "\n".join(str(step.get("run", "")) for step in job["steps"])
        # The build job's artifact, deployed as make deploy deploys it, with the execution role.
        assert any(str(step.get("uses", "")).startswith("actions/download-artifact@") for step in job["steps"])
        assert "make build" not in runs and "sam build" not in runs and "make deploy" not in runs
        assert "-m devtools.deploy" in runs and "--role-arn" in runs
    assert "make build" in str(deploy["build"]["steps"])
    # prod after default: a change reaches production only after it deployed to the first environment.
    assert by_environment["prod"]["needs"] == next(j for j, job in deploy.items() if job is by_environment["default"])


def test_deploys_do_not_overlap_and_follow_the_tests() -> None:
    deploy = workflows()["deploy.yml"]
    assert deploy["concurrency"]["cancel-in-progress"] is False
    assert deploy["jobs"]["build"]["needs"] == "test"
    assert deploy["jobs"]["test"]["uses"] == "./.github/workflows/test.yml"
    test: dict[Any, Any] = workflows()["test.yml"]
    triggers: dict[str, Any] = test["on"] if "on" in test else test[True]  # PyYAML reads the key `on` as True
    assert {"pull_request", "workflow_call"} <= set(triggers)
    (job,) = test["jobs"].values()
    assert "make test" in str(job["steps"])


def test_the_docs_name_the_variables_the_workflow_reads() -> None:
    text = (REPO_ROOT / "docs" / "pipeline.md").read_text()
    workflow = (WORKFLOWS / "deploy.yml").read_text()
    for variable in ("AWS_DEPLOY_ROLE_ARN", "AWS_CFN_EXECUTION_ROLE_ARN", "PIPELINE_DEPLOY"):
        assert f"vars.{variable}" in workflow
        assert variable in text
    assert Path("pipeline/template.yaml").as_posix() in text
