"""Tracing without the X-Ray SDK (issue 29, item 1): the `Tracing` parameter turns Lambda's active tracing
on for every function and grants what it needs; each webhook's summary lines carry its trace ID, the
consumer's the one SQS kept (`AWSTraceHeader`), whether tracing is on or not."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from devtools.event_source import lambda_sqs_record
from devtools.lambda_events import LambdaContext, signed_event
from devtools.pipeline import Pipeline, environment, reused_client
from devtools.provision import Stack, resources_at
from devtools.sam_template import SamTemplate
from ntp.deliveries import envelope
from ntp_webhooks.observability import TRACE_HEADER_VARIABLE, trace_id
from tests.conftest import JsonLogs

XRAY = "xray:PutTraceSegments"


def statements(resources: dict[str, dict[str, Any]], function: dict[str, Any]) -> list[dict[str, Any]]:
    """What the function's role may do: its own role's inline policies, or SAM's role from `Policies`."""
    props = function["Properties"]
    role = props.get("Role", {}).get("Fn::GetAtt", [None])[0]
    policies = resources[role]["Properties"]["Policies"] if role else props.get("Policies", [])
    return [s for p in policies for s in p.get("PolicyDocument", p)["Statement"]]


@pytest.mark.parametrize(("value", "mode"), [("true", "Active"), ("false", "PassThrough")])
def test_the_parameter_traces_every_function_and_grants_only_then(template: SamTemplate, value: str, mode: str) -> None:
    resources = resources_at(template, {"Tracing": value})
    functions = {lid: r for lid, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    assert len(functions) == len(template.families) + 2  # ingest, a consumer per family, rotation
    assert Stack.of(template, {"Tracing": value}).resolve(template.doc["Globals"]["Function"]["Tracing"]) == mode
    for lid, function in functions.items():
        assert "Tracing" not in function["Properties"], lid  # none opts out of the Globals setting
        granted = [s for s in statements(resources, function) if XRAY in s["Action"]]
        assert len(granted) == (value == "true"), lid
        assert all(s["Action"] == [XRAY, "xray:PutTelemetryRecords"] for s in granted)


def test_the_trace_id_is_the_headers_root() -> None:
    assert trace_id("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0") == (
        "1-5759e988-bd862e3fe1be46a994272793"
    )
    assert trace_id("Parent=53995c3f42cd8ad8") is None and trace_id("") is None


def test_one_webhooks_summary_lines_carry_the_same_trace_id(pipeline: Pipeline, json_logs: JsonLogs) -> None:
    header = "Root=1-6759e988-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=0"
    payload = envelope("order.confirmed")
    with environment({TRACE_HEADER_VARIABLE: header}):  # Lambda sets it for each invocation
        assert pipeline.deliver(signed_event(payload))["statusCode"] == 202
    sqs: Any = reused_client("sqs")
    queue = "OrderEventsQueue"
    (message,) = sqs.receive_message(QueueUrl=pipeline.stack.refs[queue], AttributeNames=["All"])["Messages"]
    record = lambda_sqs_record(message, pipeline.stack.attributes[(queue, "Arn")], "us-east-1")
    record["attributes"]["AWSTraceHeader"] = header  # what SQS keeps from the SendMessage's trace header
    pipeline.consumers["order"].lambda_handler({"Records": [record]}, LambdaContext(function_name="consumer"))

    lines = [r for r in json_logs.records() if r.get("event_id") == payload["id"]]
    summary = {
        r["message"]: r.get("trace_id") for r in lines if r["message"] in ("delivery accepted", "event processed")
    }
    assert summary == {"delivery accepted": trace_id(header), "event processed": trace_id(header)}
    others = [r for r in lines if r["message"] not in summary]
    assert others and not any("trace_id" in r for r in others)  # log bytes: only the summary lines


@pytest.mark.parametrize("value", ["true", "false"])
def test_sam_attaches_no_managed_policy_of_its_own_at_either_setting(template: SamTemplate, value: str) -> None:
    """SAM reads an `!If` in Globals' Tracing as "on" and attaches AWSXrayWriteOnlyAccess to any role it
    generates: every function has its own role, so X-Ray is granted by the statements above only, and
    the pipeline's execution role (which attaches nothing else) can deploy the stack."""
    import json
    import re

    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    from devtools.sam_template import expand_language_extensions

    values = {**template.parameter_defaults(), "Tracing": value}
    # As `sam package` leaves it: every artifact in S3.
    text = re.sub(r'"(CodeUri|ContentUri)": "[^"]*"', r'"\1": "s3://artifacts/code.zip"', json.dumps(template.source))
    translator = Translator(None, Parser(), plugins=[], boto_session=boto3.session.Session(region_name="us-east-1"))
    translated = translator.translate(
        sam_template=expand_language_extensions(json.loads(text)),
        parameter_values=values,
        get_managed_policy_map=dict,
    )
    roles = {lid: r for lid, r in translated["Resources"].items() if r["Type"] == "AWS::IAM::Role"}
    assert {f"{name}Role" for name in ("IngestFunction", "RotationFunction")} <= set(roles)
    managed = json.dumps([r["Properties"].get("ManagedPolicyArns", []) for r in roles.values()])
    assert "xray" not in managed.lower() and "SQSQueueExecutionRole" not in managed, managed
