"""events/: up to date with its generator, and each file behaves as documented when invoked the way
`sam local invoke FUNCTION -e FILE --env-vars events/env.json` would (handler path and CodeUri from
the template, environment from env.json, the local stack's resources in moto)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devtools.lambda_events import LambdaContext, acting_as
from devtools.pipeline import reused_client
from devtools.provision import Provisioner
from devtools.rotation_service import RotationService
from devtools.sam_template import SamTemplate
from ntp.deliveries import LOCAL_DEV_SECRET
from tests.conftest import load_function_module
from tools.sample_events import EVENTS_DIR, PREFIX, ROTATION_TOKEN, WIDE_WINDOW, generate, render

pytestmark = pytest.mark.families  # events/ is regenerated for every family

FILES, OUTCOMES = generate()


@pytest.mark.parametrize("relative", sorted(FILES))
def test_committed_file_is_up_to_date(relative: str) -> None:
    path = EVENTS_DIR / relative
    assert path.exists(), f"{relative} missing: run `make events`"
    assert path.read_text() == render(FILES[relative]), f"{relative} is out of date: run `make events`"


def test_no_stray_files() -> None:
    on_disk = {str(p.relative_to(EVENTS_DIR)) for p in EVENTS_DIR.rglob("*.json")}
    assert on_disk == set(FILES)


def test_env_json_matches_what_the_template_gives_each_function(template: SamTemplate, aws: None) -> None:
    stack = Provisioner(template, reused_client, name_prefix=PREFIX).provision()
    env = json.loads((EVENTS_DIR / "env.json").read_text())
    assert set(env) == set(template.functions())
    for logical_id, variables in env.items():
        expected = stack.function_environment(template, logical_id)
        documented = {"AWS_ENDPOINT_URL", *(WIDE_WINDOW if logical_id == "IngestFunction" else ())}
        differing = {k for k in expected if expected[k] != variables.get(k)}
        if logical_id == "IngestFunction":  # moto's secret ARN has a random suffix; env.json names it
            assert variables["SIGNING_SECRET_ARN"] == f"{PREFIX}-WebhookSigningSecret"
            differing.discard("SIGNING_SECRET_ARN")
        assert differing <= documented, differing
        assert set(variables) - set(expected) <= documented


def test_every_file_has_its_documented_outcome(
    template: SamTemplate, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    Provisioner(
        template, reused_client, name_prefix=PREFIX, secret_values={"WebhookSigningSecret": LOCAL_DEV_SECRET}
    ).provision()
    env = json.loads((EVENTS_DIR / "env.json").read_text())
    modules: dict[str, Any] = {}

    def handler(logical_id: str) -> Any:
        if logical_id not in modules:
            for name, value in env[logical_id].items():
                if name != "AWS_ENDPOINT_URL":  # moto is in-process here
                    monkeypatch.setenv(name, value)
            modules[logical_id] = load_function_module(template, logical_id)
        spec = template.function(logical_id)
        return getattr(modules[logical_id], spec.function_name)

    rotation = RotationService(f"{PREFIX}-WebhookSigningSecret", invoke=lambda e: None)
    for outcome in OUTCOMES:
        event = json.loads(Path(EVENTS_DIR / outcome["file"]).read_text())
        if outcome["file"] == "rotation/createSecret.json":
            rotation.start(token=ROTATION_TOKEN)  # what RotateSecret does before the first step
        with acting_as(outcome["function"]):  # its calls are checked against its role (tests/conftest.py)
            result = handler(outcome["function"])(event, LambdaContext(function_name=outcome["function"]))
        if "statusCode" in outcome:
            assert result["statusCode"] == outcome["statusCode"], (outcome, result)
        else:
            assert result == outcome["response"], (outcome, result)

    stages = reused_client("secretsmanager").describe_secret(SecretId=f"{PREFIX}-WebhookSigningSecret")
    assert "AWSCURRENT" in stages["VersionIdsToStages"][ROTATION_TOKEN]
