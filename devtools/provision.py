"""Creates what template.yaml declares in an AWS emulation (moto), and resolves the template's
intrinsic functions against it, so tests and the local stack use the template, not a second list.
Resources run in-process are left to the caller; any other type it cannot create stops provisioning.
"""

from __future__ import annotations

import functools
import json
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from devtools.lambda_events import DEFAULT_ROUTE, FrontDoor
from devtools.sam_template import SamTemplate, TemplateError

ACCOUNT_ID = "123456789012"
#: Types that have no AWS-side state to create: the caller runs them in-process (the local stack serves
#: the function URL itself).
IN_PROCESS_TYPES = frozenset(
    {
        "AWS::Serverless::Function",
        "AWS::Serverless::LayerVersion",
        "AWS::Serverless::HttpApi",
        "AWS::Lambda::Permission",
        "AWS::Lambda::Url",
        "AWS::ApiGatewayV2::Api",
        "AWS::ApiGatewayV2::Integration",
        "AWS::ApiGatewayV2::Route",
        "AWS::ApiGatewayV2::Stage",
    }
)
_NO_IAM = "IAM is not enforced locally (the e2e tests check each call against its role)"
#: Types recognised and deliberately not emulated, with the reason the local stack prints.
NOT_EMULATED = {
    "AWS::IAM::Role": _NO_IAM,
    "AWS::IAM::Policy": _NO_IAM,
    "AWS::SecretsManager::RotationSchedule": "no schedule locally: `ntp rotate --local` runs the four steps",
    "AWS::S3::BucketPolicy": "TLS-only: the local endpoint is plain HTTP (the template tests check the policy)",
}
#: The table and bucket properties template.yaml uses; anything else stops provisioning instead of being ignored.
_TABLE_PROPERTIES = frozenset(
    {
        "TableName",
        "BillingMode",
        "AttributeDefinitions",
        "KeySchema",
        "TimeToLiveSpecification",
        "PointInTimeRecoverySpecification",
        "SSESpecification",
    }
)
_BUCKET_PROPERTIES = frozenset(
    {
        "BucketName",
        "BucketEncryption",
        "PublicAccessBlockConfiguration",
        "OwnershipControls",
        "VersioningConfiguration",
        "LifecycleConfiguration",
        "Tags",
    }
)
#: Resources that only operators read: no function calls them (the rotation function publishes to the
#: topic, so the topic is not one of them).
OPERATIONS_TYPES = frozenset(
    {"AWS::SNS::Subscription", "AWS::CloudWatch::Alarm", "AWS::CloudWatch::Dashboard", "AWS::Logs::LogGroup"}
)
#: What `AWS::NoValue` resolves to: the key or list item holding it is dropped.
NO_VALUE = object()


class UnsupportedResource(TemplateError):
    pass


@dataclass
class Stack:
    """Physical values of a provisioned template: what `Ref` and `Fn::GetAtt` resolve to."""

    parameters: dict[str, str]
    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)
    pseudo: dict[str, str] = field(default_factory=dict)
    conditions: dict[str, Any] = field(default_factory=dict)
    mappings: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        template: SamTemplate,
        overrides: Mapping[str, str] | None = None,
        region: str = "us-east-1",
        name: str = "local",
    ) -> Stack:
        """The template at these parameters (its defaults otherwise), nothing created yet."""
        return cls(
            parameters={**template.parameter_defaults(), **(overrides or {})},
            pseudo={
                "AWS::Region": region,
                "AWS::AccountId": ACCOUNT_ID,
                "AWS::StackName": name,
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
            },
            conditions=dict(template.doc.get("Conditions", {})),
            mappings=dict(template.doc.get("Mappings", {})),
        )

    def resolve(self, value: Any) -> Any:
        """Evaluate the intrinsic functions template.yaml uses (Ref, Fn::GetAtt, Fn::Sub, Fn::If,
        Fn::FindInMap and the conditions' Fn::Equals and Fn::Not) in `value`, recursively. Any other one
        is an error, not a guess."""
        if isinstance(value, list):
            return [v for v in (self.resolve(v) for v in value) if v is not NO_VALUE]
        if not isinstance(value, Mapping):
            return value
        if len(value) == 1:
            (key, arg), *_ = value.items()
            if key == "Ref":
                return NO_VALUE if arg == "AWS::NoValue" else self._ref(arg)
            if key == "Fn::If":
                condition, if_true, if_false = arg
                return self.resolve(if_true if self.condition(condition) else if_false)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Equals":
                left, right = (self.resolve(a) for a in arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self._get_att(logical_id, attribute)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::FindInMap":
                mapping, top, second = (self.resolve(a) for a in arg)
                return self.mappings[mapping][top][second]
            if key.startswith("Fn::"):
                raise TemplateError(f"{key} is not supported by the provisioner: add it to Stack.resolve")
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.conditions[name]))

    def _ref(self, name: str) -> str:
        for table in (self.pseudo, self.parameters, self.refs):
            if name in table:
                return table[name]
        raise TemplateError(f"cannot resolve Ref {name}")

    def _get_att(self, logical_id: str, attribute: str) -> str:
        try:
            return self.attributes[(logical_id, attribute)]
        except KeyError:
            raise TemplateError(f"cannot resolve Fn::GetAtt {logical_id}.{attribute}") from None

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                return self._get_att(*name.split(".", 1))
            return self._ref(name)

        return re.sub(r"\$\{([^}!]+)\}", replace, text)

    def function_environment(self, template: SamTemplate, logical_id: str) -> dict[str, str]:
        """The environment variables the function gets when deployed (Globals applied)."""
        spec = template.function(logical_id)
        return {name: str(self.resolve(value)) for name, value in spec.environment.items()}


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the S3 API's shape."""
    converted: dict[str, Any] = {"ID": rule.get("Id", "rule"), "Status": rule["Status"], "Filter": {"Prefix": ""}}
    if "ExpirationInDays" in rule:
        converted["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        converted["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        }
    if "AbortIncompleteMultipartUpload" in rule:
        converted["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        }
    return converted


def resources_at(template: SamTemplate, overrides: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """The resources CloudFormation creates at these parameters (the template's defaults otherwise),
    with every `Fn::If` decided and `AWS::NoValue` dropped; other intrinsic functions are kept."""
    stack = Stack.of(template, overrides)

    def decide(value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in map(decide, value) if v is not NO_VALUE]
        if not isinstance(value, Mapping):
            return value
        if value == {"Ref": "AWS::NoValue"}:
            return NO_VALUE
        if len(value) == 1 and "Fn::If" in value:
            condition, if_true, if_false = value["Fn::If"]
            return decide(if_true if stack.condition(condition) else if_false)
        decided = {k: decide(v) for k, v in value.items()}
        return {k: v for k, v in decided.items() if v is not NO_VALUE}

    return {
        lid: decide(res)
        for lid, res in template.resources.items()
        if "Condition" not in res or stack.condition(res["Condition"])
    }


def front_door(
    template: SamTemplate, overrides: Mapping[str, str] | None = None, function: str = "IngestFunction"
) -> FrontDoor:
    """What invokes `function` at these parameters (the template's defaults otherwise): its HTTP API
    integration's PayloadFormatVersion and the routes to it, or its function URL. Run in-process, so
    read here: the local stack's front door and the tests' API events follow the template."""
    stack = Stack.of(template, overrides)
    created = resources_at(template, overrides)
    arn = {"Fn::GetAtt": [function, "Arn"]}
    urls = [
        lid
        for lid, res in created.items()
        if res["Type"] == "AWS::Lambda::Url" and res["Properties"].get("TargetFunctionArn") == arn
    ]
    integrations = [
        lid
        for lid, res in created.items()
        if res["Type"] == "AWS::ApiGatewayV2::Integration" and res["Properties"].get("IntegrationUri") == arn
    ]
    if len(urls) + len(integrations) != 1:
        raise TemplateError(f"{function}: one front door is emulated, found {urls + integrations or 'none'}")
    if urls:
        return FrontDoor("FunctionUrl", "2.0", (DEFAULT_ROUTE,))
    (integration,) = integrations
    version = str(stack.resolve(created[integration]["Properties"].get("PayloadFormatVersion", "")))
    if version not in ("1.0", "2.0"):
        raise TemplateError(f"{integration}: PayloadFormatVersion {version!r} (a Lambda proxy sends 1.0 or 2.0)")
    target = f"integrations/${{{integration}}}"
    routes = tuple(
        str(stack.resolve(res["Properties"]["RouteKey"]))
        for res in created.values()
        if res["Type"] == "AWS::ApiGatewayV2::Route"
        and res["Properties"].get("Target") in ({"Fn::Sub": target}, target)
    )
    if not routes or any("{" in key for key in routes):
        raise TemplateError(f"{integration}: routes {list(routes)} (fixed paths, or $default, are emulated)")
    return FrontDoor("HttpApi", version, routes)


def _dependencies(value: Any) -> set[str]:
    """The logical IDs (and parameters) `value` names through Ref, Fn::GetAtt and Fn::Sub."""
    if isinstance(value, list):
        return set().union(*map(_dependencies, value))
    found: set[str] = set()
    if isinstance(value, Mapping):
        for key, v in value.items():
            if key == "Ref" and isinstance(v, str):
                found.add(v)
            elif key == "Fn::GetAtt":
                found.add(v[0] if isinstance(v, list) else v.split(".", 1)[0])
            elif key == "Fn::Sub":
                text = v if isinstance(v, str) else v[0]
                found |= {name.split(".", 1)[0] for name in re.findall(r"\$\{([^}!]+)\}", text)}
                if not isinstance(v, str):
                    found |= _dependencies(v[1])
            else:
                found |= _dependencies(v)
    return found


class Provisioner:
    """Provisions a template's stateful resources with boto3 clients (pointed at moto)."""

    def __init__(
        self,
        template: SamTemplate,
        client: Callable[..., Any],
        *,
        region: str = "us-east-1",
        name_prefix: str = "local",
        parameter_overrides: Mapping[str, str] | None = None,
        secret_values: Mapping[str, str] | None = None,
        operations: bool = True,
        functions: Iterable[str] | None = None,
        record_only: bool = True,
    ) -> None:
        """`operations=False` leaves out what no function calls (`OPERATIONS_TYPES`: alarms, dashboard,
        log groups, the e-mail subscription): tests of the functions provision in half the time.
        `functions` leaves out, besides, what those functions do not reference (directly or through
        what they reference), for tests of one function. `record_only=False` leaves out the settings that
        moto only records and nothing local reads back, a call each per stack: a table's point-in-time
        recovery (restores nothing locally) and a bucket's tags (change no call's outcome)."""
        self.template = template
        self.client = functools.cache(client)  # one client per service: creating one costs ~5 ms
        self.name_prefix = name_prefix
        self.secret_values = dict(secret_values or {})
        self.stack = Stack.of(template, parameter_overrides, region, name_prefix)
        self._creators: dict[str, Callable[[str, dict[str, Any]], None]] = {
            "AWS::DynamoDB::Table": self._table,
            "AWS::SQS::Queue": self._queue,
            "AWS::SecretsManager::Secret": self._secret,
            "AWS::SNS::Topic": self._topic,
            "AWS::SNS::Subscription": self._subscription,
            "AWS::CloudWatch::Alarm": self._alarm,
            "AWS::CloudWatch::Dashboard": self._dashboard,
            "AWS::Logs::LogGroup": self._log_group,
            "AWS::KMS::Key": self._kms_key,
            "AWS::S3::Bucket": self._bucket,
            "AWS::KinesisFirehose::DeliveryStream": self._delivery_stream,
        }
        self._left_out = set() if operations else OPERATIONS_TYPES
        self._only = None if functions is None else self._referenced_by(functions)
        self._record_only = record_only

    def unsupported(self) -> list[str]:
        """`LogicalId (Type)` for every resource this provisioner cannot create."""
        return [
            f"{lid} ({res['Type']})"
            for lid, res in self.template.resources.items()
            if res["Type"] not in self._creators
            and res["Type"] not in IN_PROCESS_TYPES
            and res["Type"] not in NOT_EMULATED
        ]

    def skipped(self) -> dict[str, str]:
        """Resources deliberately not emulated, with why."""
        return {
            f"{lid} ({res['Type']})": NOT_EMULATED[res["Type"]]
            for lid, res in self.template.resources.items()
            if res["Type"] in NOT_EMULATED
        }

    def provision(self) -> Stack:
        missing = self.unsupported()
        if missing:
            raise UnsupportedResource("the local stack cannot emulate: " + ", ".join(missing))
        for logical_id, resource in self.template.resources.items():
            if resource["Type"] in IN_PROCESS_TYPES:
                # Run by the caller under this name (alarms and the dashboard refer to functions and the API).
                self.stack.refs[logical_id] = self._name(logical_id)
            if resource["Type"] == "AWS::IAM::Role":  # not created, but its ARN is handed to services
                self.stack.refs[logical_id] = self._name(logical_id)
                self.stack.attributes[(logical_id, "Arn")] = f"arn:aws:iam::{ACCOUNT_ID}:role/{self._name(logical_id)}"
        for logical_id in self._creation_order():
            resource = self.template.resources[logical_id]
            creator = self._creators.get(resource["Type"])
            if "Condition" in resource and not self.stack.condition(resource["Condition"]):
                continue
            if self._only is not None and logical_id not in self._only:
                continue
            if creator is not None and resource["Type"] not in self._left_out:
                creator(logical_id, self.stack.resolve(resource.get("Properties", {})))
        return self.stack

    def _referenced_by(self, functions: Iterable[str]) -> set[str]:
        resources = self.template.resources
        found: set[str] = set()
        pending = [dep for f in functions for dep in _dependencies(resources[f].get("Properties", {}))]
        while pending:
            logical_id = pending.pop()
            if logical_id in found or logical_id not in resources:  # a parameter or a pseudo parameter
                continue
            found.add(logical_id)
            pending += _dependencies(resources[logical_id].get("Properties", {}))
        return found

    def _creation_order(self) -> list[str]:
        resources = {
            lid: res
            for lid, res in self.template.resources.items()
            if res["Type"] not in IN_PROCESS_TYPES and res["Type"] not in NOT_EMULATED
        }
        pending = {lid: _dependencies(res.get("Properties", {})) & set(resources) for lid, res in resources.items()}
        order: list[str] = []
        while pending:
            ready = sorted(lid for lid, deps in pending.items() if not (deps - set(order)))
            if not ready:
                raise TemplateError(f"circular or in-process dependencies among {sorted(pending)}")
            order += ready
            for lid in ready:
                del pending[lid]
        return order

    def _name(self, logical_id: str) -> str:
        return f"{self.name_prefix}-{logical_id}"

    def _table(self, logical_id: str, props: dict[str, Any]) -> None:
        ddb = self.client("dynamodb")
        name = props.get("TableName") or self._name(logical_id)
        unsupported = set(props) - _TABLE_PROPERTIES
        if unsupported or props.get("BillingMode") != "PAY_PER_REQUEST":
            raise UnsupportedResource(f"{logical_id}: only on-demand tables without {sorted(unsupported)}")
        kwargs: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": "PAY_PER_REQUEST",
        }
        if props.get("SSESpecification", {}).get("SSEEnabled"):
            kwargs["SSESpecification"] = {"Enabled": True}
        description = ddb.create_table(**kwargs)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            ddb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
            )
        # Only recorded by moto and never read back locally: left out with record_only=False.
        if props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") and self._record_only:
            ddb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
        self.stack.refs[logical_id] = name
        self.stack.attributes[(logical_id, "Arn")] = description["TableArn"]

    def _queue(self, logical_id: str, props: dict[str, Any]) -> None:
        sqs = self.client("sqs")
        name = props.get("QueueName") or self._name(logical_id)
        attributes = {
            key: json.dumps(value)
            if isinstance(value, dict)
            else str(value).lower()
            if isinstance(value, bool)
            else str(value)
            for key, value in props.items()
            if key not in ("QueueName", "Tags")
        }
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        # The URL names the queue's account and name, the client its region: the ARN SQS reports
        # (GetQueueAttributes' QueueArn: tests/unit/test_provision.py) without a call to ask for it.
        account, queue_name = url.rstrip("/").rsplit("/", 2)[-2:]
        arn = f"arn:{self.stack.pseudo['AWS::Partition']}:sqs:{sqs.meta.region_name}:{account}:{queue_name}"
        self.stack.refs[logical_id] = url
        self.stack.attributes[(logical_id, "Arn")] = arn
        self.stack.attributes[(logical_id, "QueueName")] = name
        self.stack.attributes[(logical_id, "QueueUrl")] = url

    def _topic(self, logical_id: str, props: dict[str, Any]) -> None:
        sns = self.client("sns")
        attributes = {"KmsMasterKeyId": props["KmsMasterKeyId"]} if "KmsMasterKeyId" in props else {}
        arn = sns.create_topic(Name=props.get("TopicName") or self._name(logical_id), Attributes=attributes)["TopicArn"]
        self.stack.refs[logical_id] = arn
        self.stack.attributes[(logical_id, "TopicArn")] = arn
        self.stack.attributes[(logical_id, "TopicName")] = arn.rsplit(":", 1)[1]

    def _subscription(self, logical_id: str, props: dict[str, Any]) -> None:
        response = self.client("sns").subscribe(
            TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props["Endpoint"]
        )
        self.stack.refs[logical_id] = response["SubscriptionArn"]

    def _alarm(self, logical_id: str, props: dict[str, Any]) -> None:
        name = props.get("AlarmName") or self._name(logical_id)
        # Parameters resolve to strings; CloudFormation converts them, boto3 does not.
        numbers = {"EvaluationPeriods": int, "Period": int, "DatapointsToAlarm": int, "Threshold": float}
        arguments = {k: numbers[k](v) if k in numbers else v for k, v in props.items() if k != "AlarmName"}
        self.client("cloudwatch").put_metric_alarm(AlarmName=name, **arguments)
        self.stack.refs[logical_id] = name

    def _dashboard(self, logical_id: str, props: dict[str, Any]) -> None:
        name = props.get("DashboardName") or self._name(logical_id)
        self.client("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=props["DashboardBody"])
        self.stack.refs[logical_id] = name

    def _log_group(self, logical_id: str, props: dict[str, Any]) -> None:
        logs = self.client("logs")
        name = props.get("LogGroupName") or self._name(logical_id)
        logs.create_log_group(logGroupName=name)
        if "RetentionInDays" in props:
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
        self.stack.refs[logical_id] = name
        self.stack.attributes[(logical_id, "Arn")] = (
            f"arn:aws:logs:{self.stack.pseudo['AWS::Region']}:{ACCOUNT_ID}:log-group:{name}:*"
        )

    def _kms_key(self, logical_id: str, props: dict[str, Any]) -> None:
        key = self.client("kms").create_key(
            Description=props.get("Description", ""), Policy=json.dumps(props["KeyPolicy"])
        )["KeyMetadata"]
        self.stack.refs[logical_id] = key["KeyId"]
        self.stack.attributes[(logical_id, "Arn")] = key["Arn"]

    def _bucket(self, logical_id: str, props: dict[str, Any]) -> None:
        s3 = self.client("s3")
        name = (props.get("BucketName") or self._name(logical_id)).lower()
        unsupported = set(props) - _BUCKET_PROPERTIES
        if unsupported:
            raise UnsupportedResource(f"{logical_id}: bucket properties {sorted(unsupported)}")
        owner_rules = props.get("OwnershipControls", {}).get("Rules", [])
        # The one rule CreateBucket sets itself (its ObjectOwnership): no PutBucketOwnershipControls.
        ownership = (
            owner_rules[0]["ObjectOwnership"]
            if len(owner_rules) == 1 and set(owner_rules[0]) == {"ObjectOwnership"}
            else None
        )
        s3.create_bucket(Bucket=name, **({"ObjectOwnership": ownership} if ownership else {}))
        if "BucketEncryption" in props:
            rules = [  # CloudFormation's names for the S3 API's
                {
                    "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                    "BucketKeyEnabled": bool(rule.get("BucketKeyEnabled", False)),
                }
                for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
            )
        if "OwnershipControls" in props and not ownership:
            s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=props["OwnershipControls"])
        if "VersioningConfiguration" in props:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=props["VersioningConfiguration"])
        lifecycle = props.get("LifecycleConfiguration", {}).get("Rules", [])
        if lifecycle:
            s3.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration={"Rules": [_lifecycle_rule(rule) for rule in lifecycle]}
            )
        if props.get("Tags") and self._record_only:  # only recorded: left out with record_only=False
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": props["Tags"]})
        self.stack.refs[logical_id] = name
        self.stack.attributes[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"

    def _delivery_stream(self, logical_id: str, props: dict[str, Any]) -> None:
        firehose = self.client("firehose")
        name = props.get("DeliveryStreamName") or self._name(logical_id)
        destination = dict(props["ExtendedS3DestinationConfiguration"])
        hints = destination.get("BufferingHints", {})
        destination["BufferingHints"] = {k: int(v) for k, v in hints.items()}  # parameters resolve to strings
        arn = firehose.create_delivery_stream(
            DeliveryStreamName=name,
            DeliveryStreamType=props.get("DeliveryStreamType", "DirectPut"),
            ExtendedS3DestinationConfiguration=destination,
        )["DeliveryStreamARN"]
        self.stack.refs[logical_id] = name
        self.stack.attributes[(logical_id, "Arn")] = arn

    def _secret(self, logical_id: str, props: dict[str, Any]) -> None:
        sm = self.client("secretsmanager")
        name = props.get("Name") or self._name(logical_id)
        value = self.secret_values.get(logical_id) or props.get("SecretString")
        if value is None:
            length = int(props.get("GenerateSecretString", {}).get("PasswordLength", 32))
            value = secrets.token_hex(length)[:length]
        arn = sm.create_secret(Name=name, SecretString=value)["ARN"]
        self.stack.refs[logical_id] = arn
        self.stack.attributes[(logical_id, "Id")] = arn
