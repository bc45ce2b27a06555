"""template.yaml itself: scoped policies, encryption, TTL names, parameters, outputs."""

from __future__ import annotations

import json
import re
from dataclasses import MISSING, fields
from typing import Any

import boto3
import pytest

from devtools.provision import Stack
from devtools.sam_template import TEMPLATE_PATH, SamTemplate
from ntp_webhooks import dedup, routing
from ntp_webhooks.observability import LIBRARY_LOG_LEVEL_VARIABLE
from ntp_webhooks.settings import (
    MIN_RETENTION_MARGIN_HOURS,
    IngestSettings,
    env_name,
    load_consumer_settings,
    queue_url_variable,
)
from tools import template_families

QUEUES = tuple(f"{routing.template_name(family)}EventsQueue" for family in routing.FAMILIES)


def props(template: SamTemplate, logical_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = template.resources[logical_id]["Properties"]
    return properties


def policy_statements(template: SamTemplate, function: str) -> list[dict[str, Any]]:
    """The function's role's statements: SAM `Policies`, or its explicit role's inline policies, plus
    every AWS::IAM::Policy attached to that role."""
    statements: list[dict[str, Any]] = []
    role = props(template, function).get("Role")
    role_id = role["Fn::GetAtt"][0] if role else f"{function}Role"
    policies = props(template, role_id)["Policies"] if role else props(template, function).get("Policies", [])
    for policy in policies:
        assert isinstance(policy, dict), f"{function}: managed policy names are not scoped: {policy}"
        statements += policy.get("PolicyDocument", policy).get("Statement", [])
    for resource in template.resources.values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in resource["Properties"]["Roles"]:
            statements += resource["Properties"]["PolicyDocument"]["Statement"]
    return statements


def test_runtime_and_architecture(template: SamTemplate) -> None:
    function_globals = template.doc["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]
    for spec in template.functions().values():
        assert spec.runtime == "python3.13"
        assert {"Ref": "SharedLayer"} in spec.layers


def test_parameters_have_descriptions_and_safe_defaults(template: SamTemplate) -> None:
    parameters = template.doc["Parameters"]
    for name, spec in parameters.items():
        assert spec.get("Description"), name
        assert "Default" in spec, name
        assert spec.get("NoEcho") is None, f"{name}: secrets never travel as parameters"


def test_dedup_retention_always_outlives_the_acceptance_window(template: SamTemplate) -> None:
    """Pitfall 8 by construction: no allowed pair of values lets a replay outlive its dedup record."""
    parameters = template.doc["Parameters"]
    shortest_retention_hours = parameters["DedupRetentionDays"]["MinValue"] * 24
    longest_max_age = parameters["EventMaxAgeHours"]["MaxValue"]
    assert shortest_retention_hours >= longest_max_age + MIN_RETENTION_MARGIN_HOURS


def ingest_grants(template: SamTemplate, created: set[str]) -> list[dict[str, Any]]:
    return [
        props(template, lid)
        for lid in sorted(created)
        if template.resources[lid]["Type"] == "AWS::Lambda::Permission"
        and props(template, lid)["FunctionName"] == {"Ref": "IngestFunction"}
    ]


def deployed_at(template: SamTemplate, **overrides: str) -> tuple[set[str], Stack]:
    """The logical IDs CloudFormation creates at these parameters (the rest have a false Condition)."""
    stack = Stack(parameters={**template.parameter_defaults(), **overrides}, conditions=template.doc["Conditions"])
    created = {
        lid for lid, res in template.resources.items() if "Condition" not in res or stack.condition(res["Condition"])
    }
    return created, stack


def test_a_default_deploy_puts_the_http_api_in_front_and_no_function_url(template: SamTemplate) -> None:
    from ntp_webhooks.ingest import WEBHOOK_PATH

    assert template.doc["Parameters"]["FrontDoor"]["Default"] == "HttpApi"
    created, stack = deployed_at(template)
    assert {lid for lid in created if template.resources[lid]["Type"] == "AWS::Lambda::Url"} == set()
    route = props(template, "WebhookApiRoute")
    assert {"WebhookApi", "WebhookApiRoute", "WebhookApiIntegration", "WebhookApiStage"} <= created
    assert route["RouteKey"] == f"POST {WEBHOOK_PATH}"  # the only route: API Gateway answers 404 to the rest
    assert route["Target"] == {"Fn::Sub": "integrations/${WebhookApiIntegration}"}
    integration = props(template, "WebhookApiIntegration")
    assert integration["IntegrationUri"] == {"Fn::GetAtt": ["IngestFunction", "Arn"]}
    assert (integration["IntegrationType"], integration["PayloadFormatVersion"]) == ("AWS_PROXY", "2.0")
    stage = props(template, "WebhookApiStage")
    assert stage["StageName"] == "$default" and stage["AutoDeploy"] is True
    assert stage["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"},
    }
    assert stage["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": ["WebhookApiAccessLogGroup", "Arn"]}
    grants = ingest_grants(template, created)
    assert len(grants) == 1 and grants[0]["Principal"] == "apigateway.amazonaws.com"
    assert grants[0]["SourceArn"]["Fn::Sub"].endswith(f"/*/POST{WEBHOOK_PATH}")  # this route only
    stack.refs["WebhookApi"], stack.pseudo = "a1b2c3", {"AWS::Region": "eu-west-1", "AWS::URLSuffix": "amazonaws.com"}
    url = stack.resolve(template.doc["Outputs"]["WebhookUrl"]["Value"])
    assert url == f"https://a1b2c3.execute-api.eu-west-1.amazonaws.com{WEBHOOK_PATH}"
    assert template.function("IngestFunction").events == {}  # no SAM event: see the comment in template.yaml


def test_front_door_function_url_creates_the_url_with_both_grants_and_no_api(template: SamTemplate) -> None:
    created, _ = deployed_at(template, FrontDoor="FunctionUrl")
    assert not [lid for lid in created if template.resources[lid]["Type"].startswith("AWS::ApiGatewayV2::")]
    assert "WebhookApiAccessLogGroup" not in created
    assert props(template, "IngestFunctionUrl")["AuthType"] == "NONE"  # the HMAC signature is the authentication
    grants = {grant["Action"]: grant for grant in ingest_grants(template, created)}
    assert set(grants) == {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}
    assert grants["lambda:InvokeFunctionUrl"]["FunctionUrlAuthType"] == "NONE"
    assert grants["lambda:InvokeFunction"]["InvokedViaFunctionUrl"] is True  # required since October 2025
    webhook_url = template.doc["Outputs"]["WebhookUrl"]["Value"]["Fn::If"]
    assert webhook_url[0] == "UseHttpApi" and webhook_url[2] == {"Fn::Sub": "${IngestFunctionUrl.FunctionUrl}webhooks"}
    # Reserved concurrency is the URL's only limit: the parameter reaches the function.
    assert props(template, "IngestFunction")["ReservedConcurrentExecutions"]["Fn::If"][1] == {
        "Ref": "IngestReservedConcurrency"
    }


def test_ingest_environment_provides_every_setting(template: SamTemplate) -> None:
    env = template.function("IngestFunction").environment
    queues = {queue_url_variable(family) for family in routing.FAMILIES}
    required = {env_name(f.name) for f in fields(IngestSettings) if f.default is MISSING} - {"QUEUE_URLS"} | queues
    assert required <= env.keys()
    known = (
        {env_name(f.name) for f in fields(IngestSettings)}
        | queues
        | {name for name in env if name.startswith("POWERTOOLS_")}
        | {LIBRARY_LOG_LEVEL_VARIABLE}
    )
    assert env.keys() <= known, "template sets a variable the code does not read"


def test_retry_after_matches_the_function_timeout(template: SamTemplate) -> None:
    spec = template.function("IngestFunction")
    assert int(spec.environment["RETRY_AFTER_SECONDS"]) == spec.timeout


def test_no_secret_in_environment_or_outputs(template: SamTemplate) -> None:
    for spec in template.functions().values():
        for name, value in spec.environment.items():
            text = json.dumps(value)
            assert "resolve:secretsmanager" not in text, name
            assert not re.search(r"SECRET(?!_ARN)", name), f"{name}: pass the secret ARN, never the secret"
    for name, output in template.doc["Outputs"].items():
        assert "resolve:secretsmanager" not in json.dumps(output), name
        assert output["Value"] != {"Fn::GetAtt": ["WebhookSigningSecret", "SecretString"]}


def test_signing_secret_is_a_generated_plain_string(template: SamTemplate) -> None:
    secret = props(template, "WebhookSigningSecret")
    assert "SecretString" not in secret
    generated = secret["GenerateSecretString"]
    assert "SecretStringTemplate" not in generated and "GenerateStringKey" not in generated
    assert generated["PasswordLength"] >= 32


def test_dedup_table(template: SamTemplate) -> None:
    table = props(template, "DedupTable")
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": dedup.KEY_ATTRIBUTE, "KeyType": "HASH"}]
    # Receiver pitfall 6: TTL on the attribute the code writes.
    assert table["TimeToLiveSpecification"] == {"AttributeName": dedup.TTL_ATTRIBUTE, "Enabled": True}
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["SSESpecification"]["SSEEnabled"] is True


def test_aws_calls_give_up_inside_the_function_timeout(template: SamTemplate) -> None:
    """A hanging AWS endpoint must end in our JSON 503, not a Lambda timeout (a bare 500)."""
    from ntp_webhooks.aws_clients import ATTEMPTS, CONNECT_TIMEOUT_S, READ_TIMEOUT_S

    worst_call = ATTEMPTS * (CONNECT_TIMEOUT_S + READ_TIMEOUT_S)
    assert worst_call < template.function("IngestFunction").timeout


@pytest.mark.parametrize("queue", QUEUES)
def test_family_queue_has_encrypted_dlq(template: SamTemplate, queue: str) -> None:
    main = props(template, queue)
    dlq_id = queue.replace("Queue", "DeadLetterQueue")
    dlq = props(template, dlq_id)
    assert main["SqsManagedSseEnabled"] is True
    assert dlq["SqsManagedSseEnabled"] is True
    assert main["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}, "maxReceiveCount": 5}
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    # A standard queue's message keeps its enqueue time in the DLQ: the DLQ must keep it longer.
    assert dlq["MessageRetentionPeriod"] > main.get("MessageRetentionPeriod", 4 * 24 * 3600)


def test_ingest_policies_are_scoped_to_exactly_what_it_uses(template: SamTemplate) -> None:
    statements = policy_statements(template, "IngestFunction")
    granted: dict[str, set[str]] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for resource in resources:
            assert resource != "*" and "*" not in json.dumps(resource)
            granted.setdefault(json.dumps(resource, sort_keys=True), set()).update(statement["Action"])
    assert granted == {
        json.dumps({"Fn::GetAtt": ["DedupTable", "Arn"]}): {
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:GetItem",
        },
        json.dumps({"Ref": "WebhookSigningSecret"}): {"secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"},
        **{json.dumps({"Fn::GetAtt": [queue, "Arn"]}): {"sqs:SendMessage"} for queue in QUEUES},
    }


def test_rotation_is_invoked_only_by_secrets_manager_and_scoped_to_the_secret_and_notices(
    template: SamTemplate,
) -> None:
    permission = props(template, "RotationFunctionInvokePermission")
    assert permission["Principal"] == "secretsmanager.amazonaws.com"
    assert permission["SourceArn"] == {"Ref": "WebhookSigningSecret"}
    (policy,) = props(template, "RotationFunction")["Policies"]
    granted = {json.dumps(s["Resource"]): set(s["Action"]) for s in policy["Statement"]}
    assert granted == {
        json.dumps({"Ref": "WebhookSigningSecret"}): {
            "secretsmanager:DescribeSecret",
            "secretsmanager:GetSecretValue",
            "secretsmanager:PutSecretValue",
            "secretsmanager:UpdateSecretVersionStage",
        },
        json.dumps({"Ref": "RotationNoticesTopic"}): {"sns:Publish"},
    }


def test_outputs(template: SamTemplate) -> None:
    outputs = template.doc["Outputs"]
    families = {
        f"{routing.template_name(family)}{kind}QueueUrl" for family in routing.FAMILIES for kind in ("", "DeadLetter")
    }
    assert {"WebhookUrl", "SigningSecretArn", "StateTableName", "ArchiveBucketName"} | families <= set(
        outputs
    )  # ntp reads them
    _, via_api, via_url = outputs["WebhookUrl"]["Value"]["Fn::If"]
    assert via_api["Fn::Sub"].endswith("/webhooks") and via_url["Fn::Sub"].endswith("}webhooks")  # URLs end in /
    assert outputs["SigningSecretArn"]["Value"] == {"Ref": "WebhookSigningSecret"}


FAMILIES = tuple(routing.template_name(family) for family in routing.FAMILIES)


def test_the_templates_families_are_the_librarys() -> None:
    """One list each: the family loop's in template.yaml (every Fn::ForEach iterates the same literal
    list, which `sam package` needs, and the lines that name each family are current) and FAMILIES in
    ntp_webhooks/routing.py."""
    text = TEMPLATE_PATH.read_text()
    source = SamTemplate().source
    assert template_families.families_of(text) == list(FAMILIES)
    assert all(routing.template_name(family).lower() == family and family.isalpha() for family in routing.FAMILIES)
    loops = [
        value[1]
        for section in ("Resources", "Outputs")
        for key, value in source[section].items()
        if key.startswith("Fn::ForEach::")
    ]
    assert len(loops) == 3 and all(loop == list(FAMILIES) for loop in loops)
    assert "EventFamilies" not in source["Parameters"]  # not a deploy setting: `sam deploy --guided` asked it
    assert template_families.render(text) == text, "run `make template`"


@pytest.mark.parametrize("family", FAMILIES)
def test_each_consumer_reads_its_own_family_within_the_queues_visibility(template: SamTemplate, family: str) -> None:
    spec = template.function(f"{family}ConsumerFunction")
    assert spec.environment["EVENT_FAMILY"] == family  # as the template names it; the library reads it
    named = {
        "EVENT_FAMILY": family,
        "STATE_TABLE_NAME": "s",
        "ARCHIVE_STREAM_NAME": "a",
        "HANDLED_RETENTION_DAYS": "15",
    }
    assert load_consumer_settings(named).event_family == family.lower()
    (source,) = spec.events.values()
    assert source["Properties"]["Queue"] == {"Fn::GetAtt": [f"{family}EventsQueue", "Arn"]}
    # The README's budget: about 2 s per event, so the largest batch fits the consumers' timeout.
    assert template.doc["Parameters"]["ConsumerBatchSize"]["MaxValue"] * 2 <= spec.timeout
    # AWS: the queue's visibility timeout should be six times the consumer's timeout plus the window.
    longest_window = template.doc["Parameters"]["ConsumerBatchingWindowSeconds"]["MaxValue"]
    assert props(template, f"{family}EventsQueue")["VisibilityTimeout"] >= 6 * spec.timeout + longest_window


BASIC_EXECUTION = {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"}


@pytest.mark.parametrize("family", FAMILIES)
def test_consumer_role_is_scoped_to_its_queue_the_state_table_and_its_config(
    template: SamTemplate, family: str
) -> None:
    function = props(template, f"{family}ConsumerFunction")
    assert function["Role"] == {"Fn::GetAtt": [f"{family}ConsumerRole", "Arn"]}
    assert "Policies" not in function  # with an explicit role SAM adds no managed SQS policy
    role = props(template, f"{family}ConsumerRole")
    condition, with_extra, without = role["ManagedPolicyArns"]["Fn::If"]
    assert condition == "HasConsumerExtraPolicies"
    assert without == [BASIC_EXECUTION]
    separator, joined = with_extra["Fn::Split"]
    assert joined["Fn::Sub"] == BASIC_EXECUTION["Fn::Sub"] + separator + "${ConsumerExtraPolicyArns}"
    granted = {
        json.dumps(statement["Resource"], sort_keys=True): set(statement["Action"])
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    }
    assert granted == {
        json.dumps({"Fn::GetAtt": [f"{family}EventsQueue", "Arn"]}): {
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
        },
        json.dumps({"Fn::GetAtt": ["StateTable", "Arn"]}): {"dynamodb:UpdateItem", "dynamodb:GetItem"},
        json.dumps({"Fn::GetAtt": ["ArchiveStream", "Arn"]}): {"firehose:PutRecord"},
        json.dumps(
            {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/${AWS::StackName}/*"}
        ): {"ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"},
    }
    environment = function["Environment"]["Variables"]
    assert environment["PARTNER_PARAMETER_PATH"] == {"Fn::Sub": "/${AWS::StackName}/"}


def test_extra_consumer_policies_are_optional_managed_policy_arns(template: SamTemplate) -> None:
    parameter = template.doc["Parameters"]["ConsumerExtraPolicyArns"]
    assert parameter["Default"] == ""
    pattern = re.compile(parameter["AllowedPattern"])
    assert pattern.fullmatch("")
    assert pattern.fullmatch("arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess,arn:aws:iam::123456789012:policy/erp")
    assert not pattern.fullmatch("AmazonS3ReadOnlyAccess")
    assert template.doc["Conditions"]["HasConsumerExtraPolicies"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ConsumerExtraPolicyArns"}, ""]}]
    }


def test_state_table(template: SamTemplate) -> None:
    table = props(template, "StateTable")
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert template.doc["Outputs"]["StateTableName"]["Value"] == {"Ref": "StateTable"}


ALARM_TOPIC = {"Fn::If": ["CreateAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}


@pytest.mark.parametrize("family", FAMILIES)
def test_each_dlq_has_an_alarm_on_any_visible_message(template: SamTemplate, family: str) -> None:
    alarm = props(template, f"{family}DeadLetterAlarm")
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [f"{family}EventsDeadLetterQueue", "QueueName"]}}
    ]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)


def test_every_alarm_notifies_the_alarm_topic_and_says_what_to_do(template: SamTemplate) -> None:
    alarms = template.of_type("AWS::CloudWatch::Alarm")
    assert len(alarms) >= 10
    for logical_id, alarm in alarms.items():
        properties = alarm["Properties"]
        assert properties["AlarmActions"] == [ALARM_TOPIC], logical_id
        description = properties["AlarmDescription"]
        description = description["Fn::Sub"][0] if isinstance(description, dict) else description
        assert len(description) > 80 and "." in description, f"{logical_id}: say what to do"


def test_the_alarms_the_operator_needs_exist(template: SamTemplate) -> None:
    alarms = template.of_type("AWS::CloudWatch::Alarm")

    def metrics_of(alarm: dict[str, Any]) -> set[tuple[str, str]]:
        properties = alarm["Properties"]
        if "MetricName" in properties:
            return {(properties["Namespace"], properties["MetricName"])}
        metrics = [
            m for entry in properties["Metrics"] for m in (entry["Fn::If"][1:] if "Fn::If" in entry else [entry])
        ]
        return {
            (m["MetricStat"]["Metric"]["Namespace"], m["MetricStat"]["Metric"]["MetricName"])
            for m in metrics
            if "MetricStat" in m
        }

    watched = set().union(*(metrics_of(alarm) for alarm in alarms.values()))
    assert ("NowToPrintWebhooks", "Rejected") in watched  # the signing secret looks wrong
    assert ("AWS/ApiGateway", "5xx") in watched and ("AWS/Lambda", "Url5xxCount") in watched  # either door
    assert ("AWS/Lambda", "Throttles") in watched
    assert ("NowToPrintWebhooks", "RecordFailed") in watched
    assert ("AWS/SQS", "ApproximateAgeOfOldestMessage") in watched
    assert alarms["NoAcceptedEventsAlarm"]["Condition"] == "HasNoEventAlarm"
    assert template.doc["Parameters"]["NoEventAlarmHours"]["Default"] == 0
    rotation = alarms["RotationFailedAlarm"]["Properties"]
    assert rotation["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "RotationFunction"}}]
    mismatch = alarms["SigningSecretMismatchAlarm"]["Properties"]["Metrics"]
    (expression,) = [m["Expression"] for m in mismatch if "Expression" in m and m.get("ReturnData", True)]
    assert "rejected" in expression and "answered" in expression and "AND" in expression
    # Deliveries answered 2xx are counted by the front door: the normal path writes no metric of its own.
    for alarm, period in (("SigningSecretMismatchAlarm", 300), ("NoAcceptedEventsAlarm", 3600)):
        metrics = alarms[alarm]["Properties"]["Metrics"]
        (answered,) = [m for m in metrics if m.get("Id") == "answered"]
        assert answered["Expression"] == "FILL(requests, 0) - FILL(answered4xx, 0) - FILL(answered5xx, 0)"
        doors = [m["Fn::If"] for m in metrics if "Fn::If" in m]
        assert {condition for condition, *_ in doors} == {"UseHttpApi"}
        for names, (_, api, url) in zip(
            (("Count", "UrlRequestCount"), ("4xx", "Url4xxCount"), ("5xx", "Url5xxCount")), doors, strict=True
        ):
            assert api["Id"] == url["Id"] and api["MetricStat"]["Period"] == url["MetricStat"]["Period"] == period
            assert (api["MetricStat"]["Metric"]["MetricName"], url["MetricStat"]["Metric"]["MetricName"]) == names
    (rejected,) = [m for m in mismatch if m.get("Id") == "rejected"]
    assert {"Name": "reason", "Value": "invalid_signature"} in rejected["MetricStat"]["Metric"]["Dimensions"]


def test_alarm_topic_is_created_unless_given_and_cloudwatch_can_use_its_key(template: SamTemplate) -> None:
    assert template.doc["Parameters"]["AlarmTopicArn"]["Default"] == ""
    assert template.doc["Conditions"]["CreateAlarmTopic"] == {"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}
    topic = template.resources["AlarmTopic"]
    assert topic["Condition"] == "CreateAlarmTopic"
    assert topic["Properties"]["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}  # not alias/aws/sns
    key = props(template, "AlarmTopicKey")
    assert key["EnableKeyRotation"] is True
    cloudwatch = [
        s for s in key["KeyPolicy"]["Statement"] if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert cloudwatch and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(cloudwatch[0]["Action"])
    email = template.resources["AlarmEmailSubscription"]
    assert email["Condition"] == "HasAlarmEmail"
    assert email["Properties"]["TopicArn"] == ALARM_TOPIC


def test_every_function_logs_json_to_its_own_log_group_with_retention(template: SamTemplate) -> None:
    logging = template.doc["Globals"]["Function"]["LoggingConfig"]
    assert logging["LogFormat"] == "JSON"
    assert logging["ApplicationLogLevel"] == {"Ref": "LogLevel"}
    assert template.doc["Parameters"]["LogRetentionDays"]["Default"] == 30
    for logical_id in template.functions():
        group = props(template, logical_id)["LoggingConfig"]["LogGroup"]["Ref"]
        assert template.resources[group]["Type"] == "AWS::Logs::LogGroup", logical_id
        assert props(template, group)["RetentionInDays"] == {"Ref": "LogRetentionDays"}, logical_id


def test_the_api_access_log_has_context_fields_and_no_header_or_body(template: SamTemplate) -> None:
    settings = props(template, "WebhookApiStage")["AccessLogSettings"]
    group = settings["DestinationArn"]["Fn::GetAtt"][0]
    assert props(template, group)["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    fields = json.loads(settings["Format"])
    assert all(value.startswith("$context.") for value in fields.values())
    assert not any("header" in value or "body" in value.lower() for value in fields.values())
    for needed in ("requestId", "requestTime", "identity.sourceIp", "routeKey", "status", "responseLatency"):
        assert f"$context.{needed}" in fields.values()
    assert any("integrationErrorMessage" in value for value in fields.values())


def test_concurrency_limits(template: SamTemplate) -> None:
    ingest = props(template, "IngestFunction")
    assert ingest["ReservedConcurrentExecutions"] == {
        "Fn::If": ["HasIngestReservedConcurrency", {"Ref": "IngestReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    for family in FAMILIES:
        (event,) = props(template, f"{family}ConsumerFunction")["Events"].values()
        assert event["Properties"]["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "ConsumerMaxConcurrency"}}
    assert template.doc["Parameters"]["ConsumerMaxConcurrency"]["MinValue"] == 2  # the SQS minimum


def test_the_dashboard_body_is_json_with_every_widget_the_runbook_names(full_stack: Stack) -> None:
    dashboard = boto3.client("cloudwatch").get_dashboard(DashboardName=full_stack.refs["OperationsDashboard"])
    body = json.loads(dashboard["DashboardBody"])
    titles = " | ".join(widget["properties"]["title"] for widget in body["widgets"])
    for topic in ("outcome", "Key stage", "Ingest duration", "queues", "Dead-letter", "failures", "duration"):
        assert topic in titles
    metrics = json.dumps(body)
    for reason in ("invalid_signature", "invalid_envelope", "handler_failed"):
        assert reason in metrics


def test_the_largest_accepted_body_fits_the_state_item() -> None:
    """The state item stores the newest body as sent: MaxBodyBytes must leave room, within DynamoDB's
    400 KB item limit, for the history and the other attributes (about 1 KB), even if
    the history were full of the longest names and IDs."""
    template = SamTemplate()
    largest = template.doc["Parameters"]["MaxBodyBytes"]["MaxValue"]
    history = template.doc["Parameters"]["StateHistoryLength"]["MaxValue"]
    entry = 20 + 128 + 128  # seq, event name, event ID at their longest
    assert largest + history * entry + 1024 <= 400 * 1024


# --- the evidence archive ---------------------------------------------------------------------------


def test_the_archive_bucket_is_private_encrypted_tls_only_retained_and_expires_on_retention(
    template: SamTemplate,
) -> None:
    bucket = template.resources["ArchiveBucket"]
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")
    props_ = bucket["Properties"]
    (sse,) = props_["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert set(props_["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(props_["PublicAccessBlockConfiguration"]) == 4
    (rule,) = props_["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == {"Ref": "ArchiveRetentionDays"}
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": {"Ref": "ArchiveRetentionDays"}}
    assert template.doc["Parameters"]["ArchiveRetentionDays"]["Default"] == 90
    assert props_["VersioningConfiguration"]["Status"] == {"Fn::If": ["ArchiveVersioned", "Enabled", "Suspended"]}
    (statement,) = props(template, "ArchiveBucketPolicy")["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_archive_stream_writes_gzip_objects_under_dated_prefixes_with_a_role_scoped_to_the_bucket(
    template: SamTemplate,
) -> None:
    from ntp_webhooks.archive import PREFIX

    stream = props(template, "ArchiveStream")
    destination = stream["ExtendedS3DestinationConfiguration"]
    assert destination["Prefix"] == PREFIX  # Firehose adds YYYY/MM/DD/HH/: the reader's hour prefixes
    assert destination["CompressionFormat"] == "GZIP"
    assert destination["BucketARN"] == {"Fn::GetAtt": ["ArchiveBucket", "Arn"]}
    assert stream["DeliveryStreamEncryptionConfigurationInput"]["KeyType"] in ("AWS_OWNED_CMK", "CUSTOMER_MANAGED_CMK")
    statements = props(template, "ArchiveStreamRole")["Policies"][0]["PolicyDocument"]["Statement"]
    resources = {json.dumps(s["Resource"]) for s in statements}
    assert resources == {
        json.dumps({"Fn::Sub": "${ArchiveBucket.Arn}/*"}),
        json.dumps({"Fn::GetAtt": ["ArchiveBucket", "Arn"]}),
    }
    assert not any("*" in a for s in statements for a in s["Action"])


def test_each_consumer_is_given_the_archive_stream(template: SamTemplate) -> None:
    for family in FAMILIES:
        environment = template.function(f"{family}ConsumerFunction").environment
        assert environment["ARCHIVE_STREAM_NAME"] == {"Ref": "ArchiveStream"}


def test_a_failing_archive_delivery_is_alarmed_after_the_buffer_and_its_retries(template: SamTemplate) -> None:
    alarm = props(template, "ArchiveDeliveryAlarm")
    buffer = props(template, "ArchiveStream")["ExtendedS3DestinationConfiguration"]["BufferingHints"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Firehose", "DeliveryToS3.DataFreshness")
    assert alarm["Dimensions"] == [{"Name": "DeliveryStreamName", "Value": {"Ref": "ArchiveStream"}}]
    assert alarm["Statistic"] == "Maximum" and alarm["Threshold"] > buffer["IntervalInSeconds"]
