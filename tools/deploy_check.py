"""`make deploy-check`: `make deploy`'s own steps into LocalStack, read back through the AWS APIs, the
end-to-end suite (tests/deployed) against the running stack, an update, a delete, and a broken
template refused (docs/deploy-check.md). What LocalStack only fakes is printed as "not verified
here", never as passed.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import py_compile
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from devtools import deploy as deploy_module
from devtools.sam_template import PARTNER_LAYER, REPO_ROOT, SamTemplate
from ntp import samconfig
from ntp.checkout import PARTNER_DIR_VARIABLE
from ntp.operations import VERSION_TAG
from ntp_webhooks import __version__
from ntp_webhooks.routing import template_name
from tools.permissions import as_list

BUILT_TEMPLATE = deploy_module.BUILT
#: The partner folder as release 0.1.0 shipped it: what the check deploys instead of partner/handlers.
STAND_IN_PARTNER = REPO_ROOT / "tests" / "partner_0_1_0"
#: What is deployed: the packaged template (what `make deploy` sends) with its loops expanded (NOT_VERIFIED).
DEPLOYED_TEMPLATE = deploy_module.PACKAGED_EXPANDED
SAM = deploy_module.SAM
REGION = samconfig.region() or "us-east-1"  # where `make deploy`'s sam deploy creates the stack
HEALTH_TIMEOUT_S = 60
#: Emulated only on the surface by LocalStack's community CloudFormation: created, not checkable.
NOT_VERIFIED = {
    "your handlers (partner/handlers)": (
        "the PartnerLayer deployed here holds the stand-in partner folder (tests/partner_0_1_0); every artifact "
        "of ours is make build's own"
    ),
    "CloudFormation's own AWS::LanguageExtensions transform (Fn::ForEach)": (
        "LocalStack's Fn::ForEach leaves ${Family} in Fn::GetAtt and drops a Fn::Sub's other variables, so the "
        "packaged template is deployed with its loops expanded by SAM CLI's implementation of the transform; "
        "make release-check runs the SAM transform on the packaged template with loops (tests/release/test_package.py)"
    ),
    "requests through the HTTP API (throttling enforced, access log lines written)": (
        "LocalStack community has no API Gateway v2 runtime (the API, its route, integration and stage are read back)"
    ),
    "an update that switches FrontDoor (each door is deployed in a stack of its own instead)": (
        "LocalStack's change-set engine evaluates the Fn::If branch of the removed API and fails"
    ),
    "the SQS event source mapping's record bodies as LocalStack builds them": (
        "it hands the function json.dumps(json.loads(body)); a start-up hook of the plugin hands it the body as "
        "sent, as AWS does (the archive's byte-exact test depends on it)"
    ),
    "AWS::SecretsManager::RotationSchedule": (
        "LocalStack community does not attach the function to the secret: the check attaches it with the "
        "schedule's own RotationLambdaARN and RotationRules before the suite rotates; nothing is scheduled"
    ),
    "the functions as AWS runs them (arm64, Lambda's own python3.13 build and boto3, /var/task and /opt, "
    "memory and /tmp limits, IAM)": (
        "they run as x86_64 host processes from the deployed zip and layer, with the host's build of the same "
        "pydantic-core and .aws-sam/lambda-runtime's boto3; IAM is not enforced (make test checks every call "
        "against the role: docs/deploy-check.md)"
    ),
    "PointInTimeRecoverySpecification of the tables": "LocalStack community does not apply it",
    "RetentionInDays of the log groups": "LocalStack community does not apply it (the template tests check it)",
    "AWS::CloudWatch::Dashboard": "LocalStack community accepts it and does not store it",
    "LifecycleConfiguration of the archive bucket (ArchiveRetentionDays)": (
        "LocalStack community's S3 provider does not apply it (the template and local-stack tests check it)"
    ),
}

#: template.yaml's one family list.
FAMILIES = SamTemplate().families


@dataclass
class Result:
    name: str
    ok: bool
    detail: str = ""


class Emulator:
    """LocalStack on a free loopback port, in a temporary root, stopped by its process group."""

    def __init__(self, python: str) -> None:
        self.python = python
        self.root = Path(tempfile.mkdtemp(prefix="deploy-check-"))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "GATEWAY_LISTEN": f"127.0.0.1:{self.port}",
            "OVERRIDE_IN_DOCKER": "0",  # otherwise it writes under /var/lib/localstack
            "FILESYSTEM_ROOT": str(self.root),
            "PERSISTENCE": "0",
            "DISABLE_EVENTS": "1",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "CFN_IGNORE_UNSUPPORTED_RESOURCE_TYPES": "1",
            "PROVIDER_OVERRIDE_DYNAMODB": "moto",
            "PROVIDER_OVERRIDE_APIGATEWAYV2": "moto",
            "LAMBDA_RUNTIME_EXECUTOR": "host",  # tools/localstack_plugins/ntp_host_lambda.py: the functions run
        }
        log = (self.root / "localstack.log").open("wb")
        self.process = subprocess.Popen(
            [self.python, "-m", "localstack.runtime.main"], env=env, stdout=log, stderr=log, start_new_session=True
        )
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"LocalStack exited: see {self.root / 'localstack.log'}")
            try:
                with urllib.request.urlopen(f"{self.url}/_localstack/health", timeout=2) as response:  # noqa: S310
                    if json.loads(response.read()).get("services"):
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"LocalStack not healthy within {HEALTH_TIMEOUT_S} s: see {self.root / 'localstack.log'}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def environment(self, **more: str) -> dict[str, str]:
        """This process's environment, and what `sam` and boto3 need to talk to the emulator instead of AWS."""
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "SAM_CLI_TELEMETRY": "0",
            **more,
        }
        env.pop("AWS_PROFILE", None)
        return env

    def client(self, service: str) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="test",
            aws_secret_access_key="test",  # noqa: S106 - LocalStack's fake account
        )


def sam(emulator: Emulator, *args: str) -> subprocess.CompletedProcess[str]:
    env = emulator.environment()
    return subprocess.run([str(SAM), *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)


#: make build's output with the stand-in partner (tests/partner_0_1_0) in the PartnerLayer: the check never
#: deploys or runs the partner's own handlers; every artifact of ours is make build's, unchanged.
STAND_IN_BUILD = REPO_ROOT / ".aws-sam" / "deploy-check-build"


def with_stand_in_partner() -> Path:
    shutil.rmtree(STAND_IN_BUILD, ignore_errors=True)
    shutil.copytree(BUILT_TEMPLATE.parent, STAND_IN_BUILD, symlinks=True)
    layer = STAND_IN_BUILD / PARTNER_LAYER / "python"
    shutil.rmtree(layer)
    shutil.copytree(STAND_IN_PARTNER, layer)
    compileall.compile_dir(layer, quiet=1, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    return STAND_IN_BUILD


def deploy(emulator: Emulator, stack: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """`make deploy`'s module and flags (samconfig.toml's default environment), non-interactive."""
    env = emulator.environment()
    command = [sys.executable, "-m", "devtools.deploy", "--config-env", "default", "--expand-language-extensions"]
    command += ["--build-dir", str(STAND_IN_BUILD)]
    flags = ["--stack-name", stack, *extra]  # samconfig's default env: no changeset prompt, no fail when empty
    return subprocess.run([*command, "--", *flags], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)


def failure_events(client: Callable[[str], Any], stack: str) -> list[str]:
    try:
        events = client("cloudformation").describe_stack_events(StackName=stack)["StackEvents"]
    except Exception as exc:
        return [f"(no stack events: {exc})"]
    return [
        f"{e['LogicalResourceId']} {e['ResourceStatus']}: {e.get('ResourceStatusReason', '')}"
        for e in reversed(events)
        if "FAILED" in e["ResourceStatus"] or "ROLLBACK" in e["ResourceStatus"]
    ]


def stack_resources(client: Callable[[str], Any], stack: str) -> dict[str, dict[str, Any]]:
    resources = client("cloudformation").describe_stack_resources(StackName=stack)["StackResources"]
    return {r["LogicalResourceId"]: r for r in resources}


@dataclass
class Deployed:
    """A deployed stack: its resources by logical ID, and the template's declarations of them."""

    client: Callable[[str], Any]
    stack: str
    resources: dict[str, dict[str, Any]]
    declared: dict[str, dict[str, Any]]
    parameters: dict[str, str]

    @property
    def physical(self) -> dict[str, str]:
        return {lid: r["PhysicalResourceId"] for lid, r in self.resources.items()}

    def of_type(self, resource_type: str) -> list[str]:
        """Logical IDs by deployed type (SAM's transform turns AWS::Serverless::* into these)."""
        return [lid for lid, r in self.resources.items() if r["ResourceType"] == resource_type]

    def declared_of(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {lid: res for lid, res in self.declared.items() if res["Type"] == resource_type}


def deployed_stack(
    client: Callable[[str], Any], stack: str, template: dict[str, Any], overrides: dict[str, str] | None = None
) -> Deployed:
    resources = stack_resources(client, stack)
    # Resources whose Condition is false at these parameters are not in the stack.
    declared = {lid: res for lid, res in template["Resources"].items() if lid in resources}
    defaults = {name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()}
    return Deployed(client, stack, resources, declared, {**defaults, **(overrides or {})})


def verify(client: Callable[[str], Any], stack: str, template: dict[str, Any]) -> list[Result]:
    """What CloudFormation created, read back through the services' own APIs."""
    deployed = deployed_stack(client, stack, template)
    resources = deployed.resources
    incomplete = [lid for lid, r in resources.items() if not r["ResourceStatus"].endswith("_COMPLETE")]
    results = [Result("every resource reached *_COMPLETE", not incomplete, ", ".join(incomplete))]
    checks = (
        check_front_door,
        check_functions,
        check_enqueue_grants,
        check_queues,
        check_tables,
        check_secrets,
        check_alarms,
        check_log_groups,
        check_archive,
    )
    for check in checks:
        results += check(deployed)
    return results


def outputs_of(deployed: Deployed) -> dict[str, str]:
    stack = deployed.client("cloudformation").describe_stacks(StackName=deployed.stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def ingest_grants(deployed: Deployed) -> list[dict[str, Any]]:
    try:
        policy = deployed.client("lambda").get_policy(FunctionName=deployed.physical["IngestFunction"])["Policy"]
    except deployed.client("lambda").exceptions.ResourceNotFoundException:
        return []
    return list(json.loads(policy)["Statement"])


def check_front_door(deployed: Deployed) -> list[Result]:
    """Whichever door FrontDoor chose, and that the other one is absent."""
    if "WebhookApi" in deployed.resources:
        return check_http_api(deployed)
    return check_function_url(deployed)


def check_http_api(deployed: Deployed) -> list[Result]:
    """The default door: the HTTP API, its one route to the ingest function, and its stage settings."""
    v2, physical = deployed.client("apigatewayv2"), deployed.physical
    api_id = physical["WebhookApi"]
    ingest_arn = deployed.client("lambda").get_function(FunctionName=physical["IngestFunction"])["Configuration"][
        "FunctionArn"
    ]
    api = v2.get_api(ApiId=api_id)
    routes = v2.get_routes(ApiId=api_id)["Items"]
    integrations = {i["IntegrationId"]: i for i in v2.get_integrations(ApiId=api_id)["Items"]}
    stage = v2.get_stage(ApiId=api_id, StageName="$default")
    throttling = stage.get("DefaultRouteSettings", {})
    access_log = stage.get("AccessLogSettings", {})
    log_group = physical["WebhookApiAccessLogGroup"]
    route_target = routes[0]["Target"].removeprefix("integrations/") if len(routes) == 1 else ""
    integration = integrations.get(route_target, {})
    defaults = deployed.parameters
    grants = [g for g in ingest_grants(deployed) if g.get("Principal", {}).get("Service") == "apigateway.amazonaws.com"]
    source_arn = (grants[0].get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn", "")) if grants else ""
    url = outputs_of(deployed).get("WebhookUrl", "")
    return [
        Result("HTTP API exists, protocol HTTP", api.get("ProtocolType") == "HTTP", api.get("Name", "")),
        Result(
            "HTTP API has one route, POST /webhooks",
            [r["RouteKey"] for r in routes] == ["POST /webhooks"],
            str([r["RouteKey"] for r in routes]),
        ),
        Result(
            "the route's integration: AWS_PROXY to the ingest function, payload 2.0",
            (integration.get("IntegrationType"), integration.get("PayloadFormatVersion")) == ("AWS_PROXY", "2.0")
            and integration.get("IntegrationUri") == ingest_arn,
            json.dumps({k: integration.get(k) for k in ("IntegrationType", "IntegrationUri", "PayloadFormatVersion")}),
        ),
        Result(
            f"stage $default: auto-deploy, throttling {defaults['ApiThrottlingRateLimit']}/s, "
            f"burst {defaults['ApiThrottlingBurstLimit']}",
            stage.get("AutoDeploy") is True
            and float(throttling.get("ThrottlingRateLimit", -1)) == float(defaults["ApiThrottlingRateLimit"])
            and int(throttling.get("ThrottlingBurstLimit", -1)) == int(defaults["ApiThrottlingBurstLimit"]),
            json.dumps(throttling),
        ),
        Result(
            "stage access log: to the stack's log group, no header or body in its format",
            access_log.get("DestinationArn", "").removesuffix(":*").endswith(f":log-group:{log_group}")
            and "$context.requestId" in access_log.get("Format", "")
            and not any(v in access_log.get("Format", "") for v in ("$input", "$request.header", "$request.body")),
            access_log.get("DestinationArn", ""),
        ),
        Result(
            "the API may invoke the ingest function on POST /webhooks only",
            len(grants) == 1 and source_arn.endswith(f":{api_id}/*/POST/webhooks"),
            source_arn,
        ),
        Result("no function URL alongside the API", not function_url_exists(deployed)),
        Result(
            "WebhookUrl output is the API's /webhooks",
            # After `execute-api.` LocalStack writes its own host, AWS `<region>.amazonaws.com`.
            url.startswith(f"https://{api_id}.execute-api.") and url.endswith("/webhooks"),
            url,
        ),
    ]


def function_url_exists(deployed: Deployed) -> bool:
    lam = deployed.client("lambda")
    try:
        lam.get_function_url_config(FunctionName=deployed.physical["IngestFunction"])
    except lam.exceptions.ResourceNotFoundException:
        return False
    return True


def check_function_url(deployed: Deployed) -> list[Result]:
    """FrontDoor=FunctionUrl: a public function URL (the HMAC signature is the authentication)."""
    config = deployed.client("lambda").get_function_url_config(FunctionName=deployed.physical["IngestFunction"])
    url = outputs_of(deployed).get("WebhookUrl")
    actions = sorted(g.get("Action", "") for g in ingest_grants(deployed))
    return [
        Result("ingest function URL: AuthType NONE", config["AuthType"] == "NONE"),
        Result(
            "WebhookUrl output is the function URL's /webhooks",
            url == config["FunctionUrl"] + "webhooks",
            f"{url} vs {config['FunctionUrl']}",
        ),
        Result(
            "both public grants: lambda:InvokeFunctionUrl and lambda:InvokeFunction",
            actions == ["lambda:InvokeFunction", "lambda:InvokeFunctionUrl"],
            str(actions),
        ),
        Result(
            "no HTTP API alongside the function URL",
            not [r for r in deployed.resources.values() if r["ResourceType"].startswith("AWS::ApiGatewayV2::")]
            and not [
                a for a in deployed.client("apigatewayv2").get_apis()["Items"] if a["Name"].startswith(deployed.stack)
            ],
        ),
    ]


def check_functions(deployed: Deployed) -> list[Result]:
    lam, physical = deployed.client("lambda"), deployed.physical
    functions = deployed.of_type("AWS::Lambda::Function")
    expected = sorted(deployed.declared_of("AWS::Serverless::Function"))
    results = [Result(f"{len(expected)} functions created", sorted(functions) == expected, str(functions))]
    layer_arns = {physical[lid] for lid in deployed.of_type("AWS::Lambda::LayerVersion")}
    for lid in functions:
        config = lam.get_function_configuration(FunctionName=physical[lid])
        layers = {layer["Arn"] for layer in config.get("Layers", [])}
        ok = (
            config["State"] == "Active"
            and config["Runtime"] == "python3.13"
            and config["Architectures"] == ["arm64"]
            and bool(layers & layer_arns)
            and config.get("LoggingConfig", {}).get("LogFormat") == "JSON"
        )
        detail = f"{config['State']} {config['Runtime']} {config['Architectures']} layers={sorted(layers)}"
        results.append(Result(f"function {lid}: Active, python3.13, arm64, shared layer, JSON logs", ok, detail))
    mappings = deployed.of_type("AWS::Lambda::EventSourceMapping")
    for lid in mappings:
        mapping = lam.get_event_source_mapping(UUID=physical[lid])
        ok = "ReportBatchItemFailures" in mapping.get("FunctionResponseTypes", []) and bool(
            mapping.get("ScalingConfig", {}).get("MaximumConcurrency")
        )
        results.append(Result(f"event source mapping {lid}: ReportBatchItemFailures, MaximumConcurrency", ok))
    results.append(
        Result(
            f"one event source mapping per family ({len(FAMILIES)})", len(mappings) == len(FAMILIES), str(len(mappings))
        )
    )
    return results


def check_enqueue_grants(deployed: Deployed) -> list[Result]:
    """Each family's policy is on the ingest's role and lets it send to that family's queue only."""
    iam, sqs, physical = deployed.client("iam"), deployed.client("sqs"), deployed.physical
    role = physical["IngestFunctionRole"]
    attached = set(iam.list_role_policies(RoleName=role)["PolicyNames"])
    sends: dict[str, set[str]] = {}
    for name in attached:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        document = json.loads(document) if isinstance(document, str) else document
        for statement in document["Statement"]:
            if "sqs:SendMessage" in statement["Action"]:
                sends.setdefault(name, set()).update(as_list(statement["Resource"]))
    queues = {
        template_name(family): sqs.get_queue_attributes(
            QueueUrl=physical[f"{template_name(family)}EventsQueue"], AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        for family in FAMILIES
    }
    wanted = {f"enqueue-{family}-events": {arn} for family, arn in queues.items()}
    return [
        Result(
            f"the ingest role may send to each family queue ({len(queues)}), by its own policy",
            sends == wanted,
            str(sends),
        )
    ]


def check_queues(deployed: Deployed) -> list[Result]:
    sqs, physical, results = deployed.client("sqs"), deployed.physical, []
    for lid, res in deployed.declared_of("AWS::SQS::Queue").items():
        attributes = sqs.get_queue_attributes(QueueUrl=physical[lid], AttributeNames=["All"])["Attributes"]
        ok, name = attributes.get("SqsManagedSseEnabled") == "true", f"queue {lid}: SSE"
        if "RedrivePolicy" in res["Properties"]:
            policy = json.loads(attributes.get("RedrivePolicy", "{}"))
            dlq = res["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=physical[dlq], AttributeNames=["QueueArn"])["Attributes"]
            ok = ok and policy.get("maxReceiveCount") == 5 and policy.get("deadLetterTargetArn") == dlq_arn["QueueArn"]
            name += f", redrive to {dlq} after 5 receives"
        results.append(Result(name, ok))
    return results


def check_tables(deployed: Deployed) -> list[Result]:
    ddb, physical, results = deployed.client("dynamodb"), deployed.physical, []
    for lid, res in deployed.declared_of("AWS::DynamoDB::Table").items():
        table = ddb.describe_table(TableName=physical[lid])["Table"]
        ttl = ddb.describe_time_to_live(TableName=physical[lid])["TimeToLiveDescription"]
        wanted = res["Properties"]["TimeToLiveSpecification"]["AttributeName"]
        ok = table.get("SSEDescription", {}).get("Status") == "ENABLED" and (
            ttl.get("TimeToLiveStatus"),
            ttl.get("AttributeName"),
        ) == ("ENABLED", wanted)
        results.append(Result(f"table {lid}: SSE, TTL on {wanted}", ok, json.dumps(ttl)))
    return results


def check_secrets(deployed: Deployed) -> list[Result]:
    secrets = deployed.client("secretsmanager")
    return [
        Result(
            f"secret {lid} exists with a current version",
            bool(secrets.describe_secret(SecretId=deployed.physical[lid]).get("VersionIdsToStages")),
        )
        for lid in deployed.declared_of("AWS::SecretsManager::Secret")
    ]


def check_alarms(deployed: Deployed) -> list[Result]:
    cloudwatch, sns, physical, results = deployed.client("cloudwatch"), deployed.client("sns"), deployed.physical, []
    topics = deployed.declared_of("AWS::SNS::Topic")
    for lid in deployed.declared_of("AWS::CloudWatch::Alarm"):
        (alarm,) = cloudwatch.describe_alarms(AlarmNames=[physical[lid]])["MetricAlarms"]
        actions = set(alarm.get("AlarmActions", []))
        ok = bool(actions) and actions <= {physical[t] for t in topics}
        results.append(Result(f"alarm {lid}: notifies a topic of the stack", ok))
    for lid, res in topics.items():
        if "KmsMasterKeyId" in res["Properties"]:
            key = sns.get_topic_attributes(TopicArn=physical[lid])["Attributes"].get("KmsMasterKeyId", "")
            own = res["Properties"]["KmsMasterKeyId"] != "alias/aws/sns"
            results.append(Result(f"topic {lid}: encrypted ({'own' if own else 'AWS-managed'} key)", bool(key)))
    return results


def check_log_groups(deployed: Deployed) -> list[Result]:
    logs, results = deployed.client("logs"), []
    for lid in deployed.declared_of("AWS::Logs::LogGroup"):
        name = deployed.physical[lid]
        found = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
        results.append(Result(f"log group {lid} exists", any(g["logGroupName"] == name for g in found)))
    return results


def check_archive(deployed: Deployed) -> list[Result]:
    """The evidence archive: a private, encrypted, TLS-only bucket, and the Firehose stream that
    writes gzip objects into it (the lifecycle rule is listed as not verified here)."""
    s3, physical = deployed.client("s3"), deployed.physical
    bucket = physical["ArchiveBucket"]
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    blocked = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    stream = deployed.client("firehose").describe_delivery_stream(DeliveryStreamName=physical["ArchiveStream"])
    (destination,) = stream["DeliveryStreamDescription"]["Destinations"]
    s3_destination = destination.get("ExtendedS3DestinationDescription", {})
    return [
        Result(
            "archive bucket: encrypted, all public access blocked",
            bool(rules and rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]) and all(blocked.values()),
        ),
        Result(
            "archive bucket policy: TLS only",
            any(
                st["Effect"] == "Deny" and st.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
                for st in policy["Statement"]
            ),
        ),
        Result(
            "archive stream: to the bucket, under events/, gzip",
            s3_destination.get("BucketARN", "").endswith(f":::{bucket}")
            and s3_destination.get("Prefix") == "events/"
            and s3_destination.get("CompressionFormat") == "GZIP",
            json.dumps({k: s3_destination.get(k) for k in ("BucketARN", "Prefix", "CompressionFormat")}),
        ),
    ]


def attach_rotation(client: Callable[[str], Any], stack: str, template: dict[str, Any]) -> None:
    """What CloudFormation's RotationSchedule does and LocalStack's does not: the secret's rotation
    function and rules, from the template's schedule (NOT_VERIFIED); nothing rotates now."""
    schedule = template["Resources"]["SigningSecretRotationSchedule"]["Properties"]
    deployed = deployed_stack(client, stack, template)
    physical = deployed.physical
    function = client("lambda").get_function(FunctionName=physical["RotationFunction"])["Configuration"]
    days = int(deployed.parameters[schedule["RotationRules"]["AutomaticallyAfterDays"]["Ref"]])
    secrets = client("secretsmanager")
    try:
        secrets.rotate_secret(
            SecretId=physical["WebhookSigningSecret"],
            RotationLambdaARN=function["FunctionArn"],
            RotationRules={"AutomaticallyAfterDays": days},
            RotateImmediately=False,
        )
    except secrets.exceptions.ClientError as exc:  # LocalStack stores the rotation, then fails on its reply
        if "new_version_id" not in str(exc):
            raise
    described = secrets.describe_secret(SecretId=physical["WebhookSigningSecret"])
    if not described.get("RotationEnabled") or described.get("RotationLambdaARN") != function["FunctionArn"]:
        raise RuntimeError(f"the rotation function is not attached to the signing secret: {described}")


def end_to_end(emulator: Emulator, stack: str, marker: str = "") -> list[Result]:
    """tests/deployed against the running stack, as `make e2e STACK=...` runs it against AWS, with the
    two transport settings an offline LocalStack needs: function URL hosts resolved to its port, and
    the HTTP API's payload sent with lambda Invoke (LocalStack community does not serve HTTP APIs)."""
    env = emulator.environment(
        NTP_E2E_STACK=stack,
        NTP_E2E_RESOLVE=f"*.localhost.localstack.cloud=127.0.0.1:{emulator.port}",
        NTP_E2E_HTTP_API_TRANSPORT="invoke",
        COLUMNS="200",  # pytest's summary lines keep their reasons
    )
    env[PARTNER_DIR_VARIABLE] = str(STAND_IN_PARTNER)  # the handlers deployed here (with_stand_in_partner)
    command = [sys.executable, "-m", "pytest", "tests/deployed", "-p", "no:randomly", "-p", "no:cacheprovider"]
    command += ["-n", "0", "-q", "-rA", *(["-m", marker] if marker else [])]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
    prefix = f"e2e{f' ({marker})' if marker else ''}: "
    # pytest's short summary (-rA): `PASSED tests/deployed/x.py::test_y`, `FAILED ...::test_z - why`.
    # A skipped test (`SKIPPED [1] path:line: why`) is a failure here: a proof that did not run.
    outcomes = re.findall(
        r"^(PASSED|FAILED|ERROR|SKIPPED)\S* (?:\[\d+\] )?(\S+?)(?:(?: - |: )(.*))?$", done.stdout, re.M
    )
    results = [
        Result(prefix + test.rsplit("::", 1)[-1], outcome == "PASSED", why[:300]) for outcome, test, why in outcomes
    ]
    if done.returncode != 0 or not results:
        print(done.stdout[-6000:] + done.stderr[-3000:], file=sys.stderr)
    return results or [Result(f"{prefix}the deployed suite ran", False, done.stdout.strip()[-300:])]


def broken_variant(template: dict[str, Any]) -> dict[str, Any]:
    """The built template with a managed policy ARN that does not exist on one consumer role."""
    broken: dict[str, Any] = json.loads(json.dumps(template))
    role = broken["Resources"]["OrderConsumerRole"]["Properties"]
    role["ManagedPolicyArns"] = ["arn:aws:iam::aws:policy/service-role/NoSuchPolicyForDeployCheck"]
    return broken


class Run:
    """The results of one deploy-check, step by step."""

    def __init__(self, emulator: Emulator, template: dict[str, Any]) -> None:
        self.emulator, self.template = emulator, template
        self.client = emulator.client
        self.results: list[Result] = []

    def step(self, name: str, completed: subprocess.CompletedProcess[str], stack: str) -> bool:
        ok = completed.returncode == 0
        last_line = (completed.stderr.strip().splitlines() or [""])[-1]
        self.results.append(Result(name, ok, "" if ok else last_line))
        if not ok:
            print(f"--- {name} failed; stack events:", file=sys.stderr)
            for line in failure_events(self.client, stack):
                print(f"    {line}", file=sys.stderr)
            print(completed.stdout[-3000:] + completed.stderr[-3000:], file=sys.stderr)
        return ok

    def default_stack(self, stack: str) -> None:
        """Create at the defaults (the HTTP API in front), read back, update, delete."""
        if not self.step("make deploy (create)", deploy(self.emulator, stack), stack):
            return
        self.results += verify(self.client, stack, self.template)
        tags = {
            t["Key"]: t["Value"]
            for t in self.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0].get("Tags", [])
        }
        self.results.append(
            Result(
                f"the stack says its release: tag {VERSION_TAG}={__version__}",
                tags.get(VERSION_TAG) == __version__,
                str(tags),
            )
        )
        attach_rotation(self.client, stack, self.template)
        self.results += end_to_end(self.emulator, stack)
        updated = deploy(self.emulator, stack, "--parameter-overrides", "EnvironmentName=dev ConsumerMaxConcurrency=7")
        if self.step("make deploy (update: ConsumerMaxConcurrency=7)", updated, stack):
            lam = self.client("lambda")
            concurrency = {
                lam.get_event_source_mapping(UUID=r["PhysicalResourceId"])
                .get("ScalingConfig", {})
                .get("MaximumConcurrency")
                for r in stack_resources(self.client, stack).values()
                if r["ResourceType"] == "AWS::Lambda::EventSourceMapping"
            }
            self.results.append(Result("update applied: every mapping's MaximumConcurrency is 7", concurrency == {7}))
        deleted = sam(self.emulator, "delete", "--stack-name", stack, "--region", REGION, "--no-prompts")
        if self.step("sam delete", deleted, stack):
            remaining = [
                s["StackName"]
                for s in self.client("cloudformation").list_stacks()["StackSummaries"]
                if s["StackName"] == stack and s["StackStatus"] != "DELETE_COMPLETE"
            ]
            self.results.append(Result("stack gone after sam delete", not remaining, ", ".join(remaining)))

    def function_url_stack(self, stack: str) -> None:
        """The other door, FrontDoor=FunctionUrl, in a stack of its own (NOT_VERIFIED says why not an update)."""
        door = {"EnvironmentName": "dev", "FrontDoor": "FunctionUrl"}
        overrides = " ".join(f"{k}={v}" for k, v in door.items())
        created = deploy(self.emulator, stack, "--parameter-overrides", overrides)
        if self.step("make deploy (create, FrontDoor=FunctionUrl)", created, stack):
            self.results += [
                Result(f"FrontDoor=FunctionUrl: {r.name}", r.ok, r.detail)
                for r in check_front_door(deployed_stack(self.client, stack, self.template, door))
            ]
            self.results += end_to_end(self.emulator, stack, "door")
            sam(self.emulator, "delete", "--stack-name", stack, "--region", REGION, "--no-prompts")

    def broken_stack(self, stack: str) -> None:
        """The check itself must be able to fail: a template that AWS would refuse must fail here too."""
        # The packaged template as deployed above, made wrong; `sam delete` removed its artifacts, so
        # `make deploy`'s package step uploads them again (to the same content-addressed keys).
        self.step(
            "sam package (again, for the broken variant)",
            sam(self.emulator, *deploy_module.package_command(built=STAND_IN_BUILD / "template.yaml")[1:]),
            stack,
        )
        broken = DEPLOYED_TEMPLATE.with_name("packaged.broken.json")
        broken.write_text(json.dumps(broken_variant(json.loads(DEPLOYED_TEMPLATE.read_text()))))
        try:
            refused = sam(
                self.emulator,
                *deploy_module.deploy_command(broken, "default", "--stack-name", stack, "--no-confirm-changeset")[1:],
            )
            reasons = failure_events(self.client, stack)
            why = next((r for r in reasons if "OrderConsumerRole" in r), "")
            self.results.append(
                Result(
                    "a broken variant (nonexistent managed policy ARN) is refused, for that reason",
                    refused.returncode != 0 and bool(why),
                    why or (reasons[0] if reasons else refused.stderr.strip()[-200:]),
                )
            )
        finally:
            broken.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--localstack-python", required=True, help="python of the LocalStack venv")
    parser.add_argument("--stack", default=samconfig.stack_name(), help="stack name (default: samconfig.toml's)")
    args = parser.parse_args(argv)
    if not BUILT_TEMPLATE.exists():
        print("no build output: run `make build` first", file=sys.stderr)
        return 2
    template = SamTemplate(BUILT_TEMPLATE).doc
    with_stand_in_partner()
    started = time.monotonic()
    emulator = Emulator(args.localstack_python)
    try:
        emulator.start()
        print(f"LocalStack healthy on {emulator.url} after {time.monotonic() - started:.0f} s")
        run = Run(emulator, template)
        run.default_stack(args.stack)
        run.function_url_stack(f"{args.stack}-function-url")
        run.broken_stack(f"{args.stack}-broken")
    finally:
        emulator.stop()

    failed = [r for r in run.results if not r.ok]
    print()
    for result in run.results:
        detail = f"  ({result.detail})" if result.detail and (not result.ok or "refused" in result.name) else ""
        print(f"{'PASS' if result.ok else 'FAIL'}  {result.name}{detail}")
    for name, why in NOT_VERIFIED.items():
        print(f"NOT VERIFIED HERE  {name}: {why}")
    print(
        f"\n{len(run.results) - len(failed)} passed, {len(failed)} failed, {len(NOT_VERIFIED)} not verified here "
        f"in {time.monotonic() - started:.0f} s"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
