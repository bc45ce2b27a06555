"""What `sam build` produces is what we test: handlers imported from .aws-sam/build with only the
standard library and boto3, as in the Lambda python3.13 runtime, and invoked against moto's server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pydantic_core
import pytest

from devtools.lambda_events import signed_event
from devtools.local_stack.stack import EmbeddedMoto
from devtools.pipeline import reused_client
from devtools.provision import Provisioner, Stack
from devtools.sam_template import PARTNER_LAYER, REPO_ROOT, SamTemplate
from ntp.deliveries import LOCAL_DEV_SECRET, envelope
from tests.conftest import STAND_IN_PARTNER

BUILD_DIR = REPO_ROOT / ".aws-sam" / "build"
RUNTIME_DIR = REPO_ROOT / ".aws-sam" / "lambda-runtime"
LAYER_DIR = BUILD_DIR / "SharedLayer" / "python"

# Runs under `python -S`: no site-packages at all, then exactly the paths Lambda would have.
INVOKE = r"""
import importlib, json, sys, time
paths = json.loads(sys.argv[1])
sys.path[:0] = paths
module_name, function_name = sys.argv[2].rsplit(".", 1)
started = time.perf_counter()
module = importlib.import_module(module_name)
import_ms = (time.perf_counter() - started) * 1000

class Context:
    function_name = "IngestFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:IngestFunction"
    aws_request_id = "build-output-test"
    def __init__(self):
        self.deadline = time.monotonic() + 10
    def get_remaining_time_in_millis(self):
        return int((self.deadline - time.monotonic()) * 1000)

responses = [getattr(module, function_name)(event, Context()) for event in json.loads(sys.stdin.read())]
origins = {name: getattr(sys.modules.get(name), "__file__", None)
           for name in ("boto3", "botocore", "aws_lambda_powertools", "pydantic", "pydantic_core", "ntp_webhooks")}
print(json.dumps({"responses": responses, "origins": origins, "import_ms": import_ms}))
"""


def _build() -> None:
    if not (BUILD_DIR / "template.yaml").exists() or not (RUNTIME_DIR / "boto3").exists():
        subprocess.run(["make", "build"], cwd=REPO_ROOT, check=True)


@pytest.fixture(scope="module")
def built() -> Path:
    _build()
    return BUILD_DIR


@pytest.fixture(scope="module")
def native_shim(tmp_path_factory: pytest.TempPathFactory, built: Path) -> Path:
    """The layer's pydantic_core is an aarch64 binary; this x86_64 host loads the same version natively."""
    shim = tmp_path_factory.mktemp("native-shim")
    (shim / "pydantic_core").symlink_to(Path(pydantic_core.__file__).parent)
    return shim


@pytest.fixture
def moto_server() -> Iterator[str]:
    server = EmbeddedMoto("127.0.0.1", 0)
    host, port = server.address
    url = f"http://{host}:{port}"
    # Backends live in this process, shared by every server (a local stack test on this worker may
    # have left its resources): start from nothing, and leave nothing behind.
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()
    try:
        yield url
    finally:
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()
        server.stop()


def installed_versions(directory: Path) -> dict[str, str]:
    versions = {}
    for info in directory.glob("*.dist-info"):
        name, version = info.name.removesuffix(".dist-info").rsplit("-", 1)
        versions[name.lower().replace("_", "-")] = version
    return versions


def test_layer_carries_the_pinned_requirements(built: Path) -> None:
    versions = installed_versions(LAYER_DIR)
    for line in (REPO_ROOT / "layers/shared/requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            assert versions.get(name) == version, f"{name} in layer: {versions.get(name)}, pinned {version}"
    assert (LAYER_DIR / "ntp_webhooks" / "ingest.py").exists()
    assert "boto3" not in versions, "boto3 comes from the Lambda runtime"


def test_layer_binaries_are_for_arm64(built: Path) -> None:
    binaries = list(LAYER_DIR.rglob("*.so"))
    assert binaries, "pydantic_core should ship a compiled extension"
    for binary in binaries:
        assert "aarch64" in binary.name, binary
        assert binary.read_bytes()[18] == 0xB7  # ELF e_machine EM_AARCH64 (low byte)


def test_host_loads_the_same_pydantic_core_version(built: Path) -> None:
    assert installed_versions(LAYER_DIR)["pydantic-core"] == pydantic_core.__version__


def test_build_ships_bytecode(built: Path) -> None:
    """Lambda's code directories are read-only: without shipped .pyc every cold start recompiles."""
    missing = [
        source
        for source in [*LAYER_DIR.rglob("*.py"), *(built / "IngestFunction").glob("*.py")]
        if not (source.parent / "__pycache__" / f"{source.stem}.{sys.implementation.cache_tag}.pyc").exists()
    ]
    assert missing == [], f"{len(missing)} modules without bytecode, e.g. {missing[:3]}: run `make build`"
    # PEP 552 flags: hash-based and unchecked, so zip's 2-second mtimes cannot invalidate them.
    handler_pyc = next((built / "IngestFunction" / "__pycache__").glob("*.pyc"))
    assert int.from_bytes(handler_pyc.read_bytes()[4:8], "little") == 0b01


def test_function_code_is_only_the_handler(built: Path, template: SamTemplate) -> None:
    spec = template.function("IngestFunction")
    files = sorted(p.name for p in (built / "IngestFunction").iterdir() if p.name != "__pycache__")
    # requirements.txt is a comment saying why it is empty: no dependency was installed next to it.
    assert files == [f"{spec.module}.py", "requirements.txt"]


def provision(template: SamTemplate, client: Any, function: str) -> Stack:
    """What `function` references, in moto's server: no alarms or dashboard (3 s of requests), which
    the built code never calls."""
    secrets = {"WebhookSigningSecret": LOCAL_DEV_SECRET}
    return Provisioner(template, client, secret_values=secrets, operations=False, functions=[function]).provision()


def invoke_built(
    template: SamTemplate, logical_id: str, env: dict[str, str], events: list[dict[str, Any]], shim: Path
) -> dict[str, Any]:
    spec = template.function(logical_id)
    # /opt/python: a later layer's files win, so it comes first here; the partner's is our stand-in.
    layers = [
        STAND_IN_PARTNER if layer["Ref"] == PARTNER_LAYER else BUILD_DIR / layer["Ref"] / "python"
        for layer in spec.layers
    ]
    paths = [str(BUILD_DIR / logical_id), str(shim), *map(str, reversed(layers)), str(RUNTIME_DIR)]
    result = subprocess.run(
        [sys.executable, "-S", "-c", INVOKE, json.dumps(paths), spec.handler],
        input=json.dumps(events),
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], **env},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return output


def test_built_ingest_handler_accepts_a_signed_delivery(
    built: Path, native_shim: Path, moto_server: str, template: SamTemplate
) -> None:
    client = partial(reused_client, endpoint_url=moto_server, region_name="us-east-1")
    stack = provision(template, client, "IngestFunction")
    env = {
        **stack.function_environment(template, "IngestFunction"),
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_LAMBDA_FUNCTION_NAME": "IngestFunction",
    }
    payload = envelope("order.created")
    output = invoke_built(
        template,
        "IngestFunction",
        env,
        [signed_event(payload), signed_event(payload), signed_event(payload, secret="wrong")],
        native_shim,
    )
    assert [r["statusCode"] for r in output["responses"]] == [202, 200, 401]
    origins = output["origins"]
    for name in ("aws_lambda_powertools", "ntp_webhooks"):
        assert origins[name].startswith(str(LAYER_DIR)), origins
    assert origins["pydantic_core"].startswith(str(native_shim)), origins
    for name in ("boto3", "botocore"):
        assert origins[name].startswith(str(RUNTIME_DIR)), origins
    sqs = client("sqs")
    received = sqs.receive_message(QueueUrl=stack.refs["OrderEventsQueue"], MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"])["id"] for m in received] == [payload["id"]]


def test_built_consumer_handler_projects_a_batch(
    built: Path, native_shim: Path, moto_server: str, template: SamTemplate
) -> None:
    from devtools.event_source import lambda_sqs_record

    client = partial(reused_client, endpoint_url=moto_server, region_name="us-east-1")
    stack = provision(template, client, "OrderConsumerFunction")
    env = {
        **stack.function_environment(template, "OrderConsumerFunction"),
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    sqs = client("sqs")
    url = stack.refs["OrderEventsQueue"]
    payload = envelope("order.confirmed", data={"orderId": "ord_built"})
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(payload))
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    arn = stack.attributes[("OrderEventsQueue", "Arn")]
    event = {"Records": [lambda_sqs_record(m, arn, "us-east-1") for m in messages]}
    poison_id = next(m["MessageId"] for m in messages if m["Body"] == "poison")

    output = invoke_built(template, "OrderConsumerFunction", env, [event], native_shim)

    assert output["responses"] == [{"batchItemFailures": [{"itemIdentifier": poison_id}]}]
    assert output["origins"]["pydantic"].startswith(str(LAYER_DIR))
    item = client("dynamodb").get_item(TableName=stack.refs["StateTable"], Key={"pk": {"S": "order#ord_built"}})
    assert item["Item"]["status"] == {"S": "confirmed"}


def test_built_rotation_handler_rotates(
    built: Path, native_shim: Path, moto_server: str, template: SamTemplate
) -> None:
    from devtools.rotation_service import RotationService
    from ntp_webhooks.rotation import STEPS

    client = partial(reused_client, endpoint_url=moto_server, region_name="us-east-1")
    stack = provision(template, client, "RotationFunction")
    secret = stack.refs["WebhookSigningSecret"]
    token = RotationService(secret, invoke=lambda event: None).start()  # labels the value-less AWSPENDING
    env = {
        **stack.function_environment(template, "RotationFunction"),
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    events = [{"Step": step, "SecretId": secret, "ClientRequestToken": token} for step in STEPS]
    assert invoke_built(template, "RotationFunction", env, events, native_shim)["responses"] == [None] * 4
    stages = client("secretsmanager").describe_secret(SecretId=secret)["VersionIdsToStages"]
    assert "AWSCURRENT" in stages[token]
