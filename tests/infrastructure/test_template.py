"""template.yaml's invariants: settings that must agree with each other, with the code or with AWS's
limits, and properties that hold for every resource of a kind (least privilege, encryption, alarms).
What the template merely says (a runtime, a key schema, a policy's lines) is not restated here: the
tests that provision it, run the functions against it and check their calls against its roles
(tests/conftest.py `role_calls`) fail when it changes in a way that matters."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import MISSING, fields
from typing import Any

import pytest

from devtools.provision import Stack
from devtools.sam_template import TEMPLATE_PATH, SamTemplate
from ntp_webhooks import dedup, routing
from ntp_webhooks.observability import LIBRARY_LOG_LEVEL_VARIABLE
from ntp_webhooks.settings import MIN_RETENTION_MARGIN_HOURS, IngestSettings, env_name, queue_url_variable
from tools import template_families

#: SQS's default MessageRetentionPeriod (4 days), for a queue that does not set one.
SQS_DEFAULT_RETENTION = 4 * 24 * 3600


def props(template: SamTemplate, logical_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = template.resources[logical_id]["Properties"]
    return properties


def parameter(template: SamTemplate, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = template.doc["Parameters"][name]
    return spec


def families(template: SamTemplate) -> list[str]:
    """The families as template.yaml names them (`Quote`): its family loop's list."""
    return [routing.template_name(family) for family in template.families]


def deployed_at(template: SamTemplate, **overrides: str) -> tuple[set[str], Stack]:
    """The logical IDs CloudFormation creates at these parameters (the rest have a false Condition)."""
    stack = Stack(parameters={**template.parameter_defaults(), **overrides}, conditions=template.doc["Conditions"])
    created = {
        lid for lid, res in template.resources.items() if "Condition" not in res or stack.condition(res["Condition"])
    }
    return created, stack


def ingest_grants(template: SamTemplate, created: set[str]) -> list[dict[str, Any]]:
    return [
        props(template, lid)
        for lid in sorted(created)
        if template.resources[lid]["Type"] == "AWS::Lambda::Permission"
        and props(template, lid)["FunctionName"] == {"Ref": "IngestFunction"}
    ]


def identity_statements(template: SamTemplate) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, statement) for every statement of an identity policy: the roles' inline policies,
    AWS::IAM::Policy resources and the functions' own `Policies` (key and bucket policies are
    resource policies: their `Resource: "*"` is the resource itself)."""
    for logical_id, resource in template.resources.items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Policy":
            documents = [properties["PolicyDocument"]]
        elif resource["Type"] in ("AWS::IAM::Role", "AWS::Serverless::Function"):
            documents = [policy.get("PolicyDocument", policy) for policy in properties.get("Policies", [])]
        else:
            continue
        for document in documents:
            assert isinstance(document, dict), f"{logical_id}: a managed policy name is not scoped: {document}"
            for listed in document.get("Statement", []):
                # A statement under a condition (Tracing's): the one it grants when the condition holds.
                yield logical_id, listed["Fn::If"][1] if "Fn::If" in listed else listed


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- parameters: no allowed value breaks a promise --------------------------------------------------


def test_parameters_have_descriptions_and_safe_defaults(template: SamTemplate) -> None:
    for name, spec in template.doc["Parameters"].items():
        assert spec.get("Description"), name
        assert "Default" in spec, name
        assert spec.get("NoEcho") is None, f"{name}: secrets never travel as parameters"


def test_dedup_retention_always_outlives_the_acceptance_window(template: SamTemplate) -> None:
    """Receiver pitfall 8 by construction: no allowed pair of values lets a replay outlive its dedup record."""
    shortest_retention_hours = parameter(template, "DedupRetentionDays")["MinValue"] * 24
    longest_max_age = parameter(template, "EventMaxAgeHours")["MaxValue"]
    assert shortest_retention_hours >= longest_max_age + MIN_RETENTION_MARGIN_HOURS


def test_the_largest_accepted_body_fits_the_state_item(template: SamTemplate) -> None:
    """The state item stores the newest body as sent: MaxBodyBytes must leave room, within DynamoDB's
    400 KB item limit, for the history and the other attributes (about 1 KB), even if
    the history were full of the longest names and IDs."""
    largest = parameter(template, "MaxBodyBytes")["MaxValue"]
    history = parameter(template, "StateHistoryLength")["MaxValue"]
    entry = 20 + 128 + 128  # seq, event name, event ID at their longest
    assert largest + history * entry + 1024 <= 400 * 1024


def test_extra_consumer_policies_are_managed_policy_arns_and_optional(template: SamTemplate) -> None:
    pattern = re.compile(parameter(template, "ConsumerExtraPolicyArns")["AllowedPattern"])
    assert pattern.fullmatch("arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess,arn:aws:iam::123456789012:policy/erp")
    assert not pattern.fullmatch("AmazonS3ReadOnlyAccess")
    _, stack = deployed_at(template)
    assert not stack.condition("HasConsumerExtraPolicies")  # the default adds none
    _, stack = deployed_at(template, ConsumerExtraPolicyArns="arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess")
    assert stack.condition("HasConsumerExtraPolicies")


# --- the front door ---------------------------------------------------------------------------------


def test_a_default_deploy_routes_only_the_webhook_path_through_the_http_api(template: SamTemplate) -> None:
    from ntp_webhooks.ingest import WEBHOOK_PATH

    created, stack = deployed_at(template)
    assert not [lid for lid in created if template.resources[lid]["Type"] == "AWS::Lambda::Url"]
    routes = [props(template, lid) for lid in created if template.resources[lid]["Type"] == "AWS::ApiGatewayV2::Route"]
    assert [route["RouteKey"] for route in routes] == [f"POST {WEBHOOK_PATH}"]  # API Gateway answers 404 to the rest
    (grant,) = ingest_grants(template, created)
    assert grant["Principal"] == "apigateway.amazonaws.com"
    assert grant["SourceArn"]["Fn::Sub"].endswith(f"/*/POST{WEBHOOK_PATH}")  # this route only
    stack.refs["WebhookApi"], stack.pseudo = "a1b2c3", {"AWS::Region": "eu-west-1", "AWS::URLSuffix": "amazonaws.com"}
    url = stack.resolve(template.doc["Outputs"]["WebhookUrl"]["Value"])
    assert url == f"https://a1b2c3.execute-api.eu-west-1.amazonaws.com{WEBHOOK_PATH}"


def test_the_function_url_door_has_both_grants_a_url_needs_and_no_api(template: SamTemplate) -> None:
    from ntp_webhooks.ingest import WEBHOOK_PATH

    created, stack = deployed_at(template, FrontDoor="FunctionUrl")
    assert not [lid for lid in created if template.resources[lid]["Type"].startswith("AWS::ApiGatewayV2::")]
    grants = {grant["Action"]: grant for grant in ingest_grants(template, created)}
    assert set(grants) == {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}
    assert grants["lambda:InvokeFunction"]["InvokedViaFunctionUrl"] is True  # required since October 2025
    stack.attributes[("IngestFunctionUrl", "FunctionUrl")] = "https://abc.lambda-url.eu-west-1.on.aws/"  # ends in /
    assert (
        stack.resolve(template.doc["Outputs"]["WebhookUrl"]["Value"])
        == f"https://abc.lambda-url.eu-west-1.on.aws{WEBHOOK_PATH}"
    )


def test_the_api_access_log_has_context_fields_and_no_header_or_body(template: SamTemplate) -> None:
    settings = props(template, "WebhookApiStage")["AccessLogSettings"]
    logged = json.loads(settings["Format"])
    assert all(value.startswith("$context.") for value in logged.values())
    assert not any("header" in value or "body" in value.lower() for value in logged.values())
    for needed in ("requestId", "requestTime", "identity.sourceIp", "routeKey", "status", "responseLatency"):
        assert f"$context.{needed}" in logged.values()
    assert any("integrationErrorMessage" in value for value in logged.values())


# --- the ingest: its environment is the code's settings, its calls end inside its timeout -----------


def test_ingest_environment_provides_every_setting_and_nothing_else(template: SamTemplate) -> None:
    env = template.function("IngestFunction").environment
    queues = {queue_url_variable(family) for family in families(template)}
    required = {env_name(f.name) for f in fields(IngestSettings) if f.default is MISSING} - {"QUEUE_URLS"} | queues
    assert required <= env.keys()
    known = (
        {env_name(f.name) for f in fields(IngestSettings)}
        | queues
        | {name for name in env if name.startswith("POWERTOOLS_")}
        | {LIBRARY_LOG_LEVEL_VARIABLE, routing.FAMILIES_VARIABLE}
    )
    assert env.keys() <= known, "template sets a variable the code does not read"


def test_retry_after_matches_the_function_timeout(template: SamTemplate) -> None:
    spec = template.function("IngestFunction")
    assert int(spec.environment["RETRY_AFTER_SECONDS"]) == spec.timeout


def test_aws_calls_give_up_inside_the_function_timeout(template: SamTemplate) -> None:
    """A hanging AWS endpoint must end in our JSON 503, not a Lambda timeout (a bare 500)."""
    from ntp_webhooks.aws_clients import ATTEMPTS, CONNECT_TIMEOUT_S, READ_TIMEOUT_S

    worst_call = ATTEMPTS * (CONNECT_TIMEOUT_S + READ_TIMEOUT_S)
    assert worst_call < template.function("IngestFunction").timeout


def test_the_dedup_ttl_is_on_the_attribute_the_code_writes(template: SamTemplate) -> None:
    """Receiver pitfall 6."""
    assert props(template, "DedupTable")["TimeToLiveSpecification"] == {
        "AttributeName": dedup.TTL_ATTRIBUTE,
        "Enabled": True,
    }


# --- the queues and their consumers -----------------------------------------------------------------


def consumer_sources(template: SamTemplate) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(queue, the consumer's timeout, its SQS event source's properties) for every consumer."""
    for spec in template.functions().values():
        for source in spec.events.values():
            if source["Type"] == "SQS":
                queue = source["Properties"]["Queue"]["Fn::GetAtt"][0]
                yield queue, spec.timeout, source["Properties"]


def test_every_family_queue_has_a_consumer(template: SamTemplate) -> None:
    consumed = sorted(queue for queue, _, _ in consumer_sources(template))
    assert consumed == sorted(f"{family}EventsQueue" for family in families(template))


def test_each_queues_visibility_outlasts_six_consumer_timeouts_and_the_longest_window(template: SamTemplate) -> None:
    """AWS: a queue's visibility timeout should be six times its consumer's timeout plus the batching window."""
    longest_window = parameter(template, "ConsumerBatchingWindowSeconds")["MaxValue"]
    for queue, timeout, _ in consumer_sources(template):
        assert props(template, queue)["VisibilityTimeout"] >= 6 * timeout + longest_window, queue


def test_the_largest_batch_fits_the_consumers_timeout(template: SamTemplate) -> None:
    """The README's budget: about 2 s per event."""
    largest_batch = parameter(template, "ConsumerBatchSize")["MaxValue"]
    for queue, timeout, _ in consumer_sources(template):
        assert largest_batch * 2 <= timeout, queue


def test_consumer_concurrency_cannot_be_set_below_the_sqs_minimum(template: SamTemplate) -> None:
    for queue, _, source in consumer_sources(template):
        limit = source["ScalingConfig"]["MaximumConcurrency"]
        minimum = parameter(template, limit["Ref"])["MinValue"] if isinstance(limit, dict) else limit
        assert minimum >= 2, queue  # Lambda refuses a MaximumConcurrency below 2


def test_each_dead_letter_queue_keeps_a_message_longer_than_its_source_queue(template: SamTemplate) -> None:
    """A standard queue's message keeps its enqueue time in the DLQ: the DLQ must keep it longer."""
    sources = {lid: p for lid, p in ((lid, props(template, lid)) for lid in template.of_type("AWS::SQS::Queue"))}
    redriven = {
        lid: p["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for lid, p in sources.items()
        if "RedrivePolicy" in p
    }
    assert set(redriven) >= {f"{family}EventsQueue" for family in families(template)}
    for queue, dlq in redriven.items():
        source_retention = sources[queue].get("MessageRetentionPeriod", SQS_DEFAULT_RETENTION)
        assert sources[dlq].get("MessageRetentionPeriod", SQS_DEFAULT_RETENTION) > source_retention, queue


def test_every_dead_letter_queue_alarms_on_its_first_message(template: SamTemplate) -> None:
    queues = [props(template, lid) for lid in template.of_type("AWS::SQS::Queue")]
    dlqs = {q["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0] for q in queues if "RedrivePolicy" in q}
    watched = {
        alarm["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for alarm in template.of_type("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
        and (alarm["Properties"]["ComparisonOperator"], alarm["Properties"]["Threshold"]) == ("GreaterThanThreshold", 0)
    }
    assert dlqs and dlqs <= watched


# --- least privilege, secrets, encryption: for every resource of a kind -----------------------------


#: Actions AWS authorizes on no narrower resource than "*" (X-Ray's, granted only with Tracing=true).
UNSCOPED_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def test_no_identity_policy_grants_every_resource_or_every_action(template: SamTemplate) -> None:
    statements = list(identity_statements(template))
    assert statements
    for where, statement in statements:
        if set(as_list(statement["Action"])) <= UNSCOPED_ACTIONS:
            continue
        for resource in as_list(statement["Resource"]):
            # A wildcard only as the last path step under a named resource: a bucket's objects, the
            # stack's own parameters.
            text = resource["Fn::Sub"] if isinstance(resource, dict) and "Fn::Sub" in resource else json.dumps(resource)
            assert "*" not in text.removesuffix("}/*"), f"{where}: {resource}"
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"{where}: {action}"


def test_no_function_role_carries_a_managed_policy_besides_basic_execution_and_the_operators(
    template: SamTemplate,
) -> None:
    """SAM adds AWSLambdaSQSQueueExecutionRole (every queue) to a generated role with an SQS event: each
    function with an event source has an explicit role, and no role carries other AWS managed policies."""
    basic = {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"}
    for logical_id, spec in template.functions().items():
        role = props(template, logical_id).get("Role")
        if spec.events:
            assert role, f"{logical_id}: SAM would generate a role with a managed policy on every queue"
        if not role:
            continue
        managed = props(template, role["Fn::GetAtt"][0]).get("ManagedPolicyArns", [])
        for arns in managed["Fn::If"][1:] if isinstance(managed, dict) else [managed]:
            if isinstance(arns, dict):  # BasicExecution and ${ConsumerExtraPolicyArns}, split at the commas
                separator, joined = arns["Fn::Split"]
                assert joined["Fn::Sub"] == basic["Fn::Sub"] + separator + "${ConsumerExtraPolicyArns}", logical_id
            else:
                assert arns == [basic], logical_id


def test_the_rotation_function_is_invoked_only_by_secrets_manager_for_the_signing_secret(
    template: SamTemplate,
) -> None:
    (permission,) = [
        p["Properties"]
        for p in template.of_type("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Ref": "RotationFunction"}
        or p["Properties"]["FunctionName"] == {"Fn::GetAtt": ["RotationFunction", "Arn"]}
    ]
    assert permission["Principal"] == "secretsmanager.amazonaws.com"
    assert permission["SourceArn"] == {"Ref": "WebhookSigningSecret"}


def test_no_secret_in_environment_or_outputs(template: SamTemplate) -> None:
    for spec in template.functions().values():
        for name, value in spec.environment.items():
            assert "resolve:secretsmanager" not in json.dumps(value), name
            assert not re.search(r"SECRET(?!_ARN)", name), f"{name}: pass the secret ARN, never the secret"
    for name, output in template.doc["Outputs"].items():
        assert "resolve:secretsmanager" not in json.dumps(output), name
        assert "SecretString" not in json.dumps(output), name


def test_the_signing_secret_is_generated_as_the_plain_string_the_keyring_reads(template: SamTemplate) -> None:
    secret = props(template, "WebhookSigningSecret")
    assert "SecretString" not in secret  # never in the template
    generated = secret["GenerateSecretString"]
    assert "SecretStringTemplate" not in generated and "GenerateStringKey" not in generated  # not JSON
    assert generated["PasswordLength"] >= 32


ENCRYPTED = {
    "AWS::SQS::Queue": lambda p: p.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in p,
    "AWS::DynamoDB::Table": lambda p: p["SSESpecification"]["SSEEnabled"] is True,
    "AWS::SNS::Topic": lambda p: "KmsMasterKeyId" in p,
    "AWS::S3::Bucket": lambda p: bool(p["BucketEncryption"]["ServerSideEncryptionConfiguration"]),
    "AWS::KinesisFirehose::DeliveryStream": lambda p: "DeliveryStreamEncryptionConfigurationInput" in p,
}


@pytest.mark.parametrize("resource_type", ENCRYPTED)
def test_everything_that_stores_events_or_keys_is_encrypted_at_rest(template: SamTemplate, resource_type: str) -> None:
    resources = template.of_type(resource_type)
    assert resources
    for logical_id, resource in resources.items():
        assert ENCRYPTED[resource_type](resource["Properties"]), logical_id


def test_the_tables_and_the_archive_survive_a_stack_delete_and_the_tables_can_be_restored(
    template: SamTemplate,
) -> None:
    kept = {**template.of_type("AWS::DynamoDB::Table"), **template.of_type("AWS::S3::Bucket")}
    for logical_id, resource in kept.items():
        assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Retain", "Retain"), logical_id
    for logical_id, table in template.of_type("AWS::DynamoDB::Table").items():
        assert table["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], logical_id


def test_the_archive_bucket_is_private_and_tls_only(template: SamTemplate) -> None:
    block = props(template, "ArchiveBucket")["PublicAccessBlockConfiguration"]
    assert len(block) == 4 and set(block.values()) == {True}
    (statement,) = props(template, "ArchiveBucketPolicy")["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_archive_stream_writes_where_and_how_the_reader_reads(template: SamTemplate) -> None:
    from ntp_webhooks.archive import PREFIX

    destination = props(template, "ArchiveStream")["ExtendedS3DestinationConfiguration"]
    assert destination["Prefix"] == PREFIX  # Firehose adds YYYY/MM/DD/HH/: the reader's hour prefixes
    assert destination["CompressionFormat"] == "GZIP"  # records_in decompresses


# --- logs and alarms --------------------------------------------------------------------------------


def test_every_function_logs_to_its_own_log_group_with_the_retention_parameter(template: SamTemplate) -> None:
    for logical_id in template.functions():
        group = props(template, logical_id)["LoggingConfig"]["LogGroup"]["Ref"]
        assert template.resources[group]["Type"] == "AWS::Logs::LogGroup", logical_id
        assert props(template, group)["RetentionInDays"] == {"Ref": "LogRetentionDays"}, logical_id


ALARM_TOPIC = {"Fn::If": ["CreateAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}


def test_every_alarm_notifies_the_alarm_topic_and_says_what_to_do(template: SamTemplate) -> None:
    alarms = template.of_type("AWS::CloudWatch::Alarm")
    assert alarms
    for logical_id, alarm in alarms.items():
        properties = alarm["Properties"]
        assert properties["AlarmActions"] == [ALARM_TOPIC], logical_id
        description = properties["AlarmDescription"]
        description = description["Fn::Sub"][0] if isinstance(description, dict) else description
        assert len(description) > 80 and "." in description, f"{logical_id}: say what to do"


def test_cloudwatch_can_publish_to_the_alarm_topic_it_creates(template: SamTemplate) -> None:
    """An alarm cannot publish to a topic encrypted with alias/aws/sns: the topic's key lets CloudWatch use it."""
    key_id = props(template, "AlarmTopic")["KmsMasterKeyId"]["Ref"]
    key = props(template, key_id)
    cloudwatch = [
        s for s in key["KeyPolicy"]["Statement"] if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert cloudwatch and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(cloudwatch[0]["Action"])


def alarm_metrics(alarm: dict[str, Any]) -> set[tuple[str, str]]:
    properties = alarm["Properties"]
    if "MetricName" in properties:
        return {(properties["Namespace"], properties["MetricName"])}
    metrics = [m for entry in properties["Metrics"] for m in (entry["Fn::If"][1:] if "Fn::If" in entry else [entry])]
    return {
        (m["MetricStat"]["Metric"]["Namespace"], m["MetricStat"]["Metric"]["MetricName"])
        for m in metrics
        if "MetricStat" in m
    }


def test_the_alarms_the_runbook_needs_watch_their_metrics(template: SamTemplate) -> None:
    watched = set().union(*map(alarm_metrics, template.of_type("AWS::CloudWatch::Alarm").values()))
    assert ("NowToPrintWebhooks", "Rejected") in watched  # the signing secret looks wrong
    assert ("AWS/ApiGateway", "5xx") in watched and ("AWS/Lambda", "Url5xxCount") in watched  # either door
    assert ("AWS/Lambda", "Throttles") in watched
    assert ("NowToPrintWebhooks", "RecordFailed") in watched
    assert ("AWS/SQS", "ApproximateAgeOfOldestMessage") in watched
    assert ("AWS/Firehose", "DeliveryToS3.DataFreshness") in watched


#: The same count behind either door: API Gateway's metric and the function URL's.
SAME_COUNT = {"Count": "UrlRequestCount", "4xx": "Url4xxCount", "5xx": "Url5xxCount"}


def test_the_answered_count_is_the_same_metric_math_behind_either_door(template: SamTemplate) -> None:
    """The normal path writes no metric of its own: deliveries answered 2xx are counted by the front door,
    each door's metric with the same id and period, chosen by the door's condition."""
    for alarm in ("SigningSecretMismatchAlarm", "NoAcceptedEventsAlarm"):
        metrics = props(template, alarm)["Metrics"]
        doors = [m["Fn::If"] for m in metrics if "Fn::If" in m]
        assert doors and {condition for condition, *_ in doors} == {"UseHttpApi"}, alarm
        for _, api, url in doors:
            assert api["Id"] == url["Id"] and api["MetricStat"]["Period"] == url["MetricStat"]["Period"], alarm
            assert SAME_COUNT[api["MetricStat"]["Metric"]["MetricName"]] == url["MetricStat"]["Metric"]["MetricName"]
        (answered,) = [m for m in metrics if m.get("Id") == "answered"]
        assert set(re.findall(r"FILL\((\w+), 0\)", answered["Expression"])) == {api["Id"] for _, api, _ in doors}


def test_the_secret_mismatch_alarm_counts_the_rejections_the_code_reports_for_a_bad_signature(
    template: SamTemplate,
) -> None:
    from ntp_webhooks.responses import unauthorized

    (rejected,) = [m for m in props(template, "SigningSecretMismatchAlarm")["Metrics"] if m.get("Id") == "rejected"]
    dimensions = rejected["MetricStat"]["Metric"]["Dimensions"]
    assert {"Name": "reason", "Value": unauthorized().code} in dimensions


def test_a_failing_archive_delivery_is_alarmed_after_the_buffer_and_its_retries(template: SamTemplate) -> None:
    alarm = props(template, "ArchiveDeliveryAlarm")
    buffer = props(template, "ArchiveStream")["ExtendedS3DestinationConfiguration"]["BufferingHints"]
    assert alarm["Statistic"] == "Maximum" and alarm["Threshold"] > buffer["IntervalInSeconds"]


def test_the_dashboard_body_is_json_with_every_widget_the_runbook_names(template: SamTemplate) -> None:
    stack = Stack(
        parameters=template.parameter_defaults(),
        pseudo={"AWS::Region": "eu-west-1"},
        refs={lid: f"stack-{lid}" for lid in template.resources},
        attributes={(lid, "QueueName"): f"stack-{lid}" for lid in template.of_type("AWS::SQS::Queue")},
    )
    body = json.loads(stack.resolve(props(template, "OperationsDashboard")["DashboardBody"]))
    titles = " | ".join(widget["properties"]["title"] for widget in body["widgets"])
    for topic in ("outcome", "Key stage", "Ingest duration", "queues", "Dead-letter", "failures", "duration"):
        assert topic in titles
    metrics = json.dumps(body)
    for reason in ("invalid_signature", "invalid_envelope", "handler_failed"):
        assert reason in metrics


# --- the outputs and the family list ----------------------------------------------------------------


def test_the_outputs_ntp_reads_exist(template: SamTemplate) -> None:
    queues = {f"{family}{kind}QueueUrl" for family in families(template) for kind in ("", "DeadLetter")}
    needed = {"WebhookUrl", "SigningSecretArn", "StateTableName", "ArchiveBucketName"} | queues
    assert needed <= set(template.doc["Outputs"])


@pytest.mark.families
def test_the_family_list_is_written_everywhere_from_the_first_loop(template: SamTemplate) -> None:
    """One list: the family loop's in template.yaml. Every Fn::ForEach iterates it as a literal list
    (`sam package` needs one), and every function's EVENT_FAMILIES, from which the library reads the
    families, and the lines that name each family are current."""
    listed = families(template)
    assert all(family.isalpha() for family in listed)
    for spec in template.functions().values():
        assert routing.families(spec.environment) == template.families
    loops = [
        value[1]
        for section in ("Resources", "Outputs")
        for key, value in template.source[section].items()
        if key.startswith("Fn::ForEach::")
    ]
    assert len(loops) == 3 and all(loop == listed for loop in loops)
    assert "EventFamilies" not in template.source["Parameters"]  # not a deploy setting: `sam deploy --guided` asked it
    text = TEMPLATE_PATH.read_text()
    assert template_families.render(text, listed) == text, "run `make template`"
