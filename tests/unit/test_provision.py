"""The provisioner knows exactly what template.yaml uses, and refuses the rest loudly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from devtools.pipeline import hooked, reused_client
from devtools.provision import Provisioner, Stack, UnsupportedResource
from devtools.sam_template import TEMPLATE_PATH, SamTemplate, TemplateError, read_template


def test_an_intrinsic_the_template_does_not_use_is_an_error_not_a_guess() -> None:
    stack = Stack(parameters={"A": "x"}, pseudo={"AWS::Region": "us-east-1"})
    assert stack.resolve({"Fn::Sub": "${A}-${AWS::Region}"}) == "x-us-east-1"
    with pytest.raises(TemplateError, match="Fn::Join"):
        stack.resolve({"Fn::Join": ["-", ["a", "b"]]})


TABLE = """\
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: {billing}
      AttributeDefinitions: [{{AttributeName: pk, AttributeType: S}}]
      KeySchema: [{{AttributeName: pk, KeyType: HASH}}]
{extra}"""


@pytest.mark.parametrize(
    ("billing", "extra", "message"),
    [
        ("PAY_PER_REQUEST", "      StreamSpecification: {StreamViewType: NEW_IMAGE}\n", "StreamSpecification"),
        ("PROVISIONED", "", "on-demand"),
    ],
)
def test_a_table_with_properties_it_would_ignore_is_refused(
    tmp_path: Path, billing: str, extra: str, message: str
) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(TABLE.format(billing=billing, extra=extra))
    with mock_aws(), pytest.raises(UnsupportedResource, match=message):
        Provisioner(SamTemplate(path), reused_client).provision()


EVERY_SHORT_FORM = """Resources:
  A:
    Type: X
    Properties:
      a: !Ref B
      b: !GetAtt B.Arn
      c: !GetAtt [B, Arn]
      d: !Sub '${B}-x'
      e: !Sub ['${x}', {x: !Ref B}]
      f: !If [C, !Join [',', [a, b]], !Ref AWS::NoValue]
      g: !Select [0, !Split [',', !ImportValue V]]
      h: !FindInMap [M, !Ref K, N]
      i: !Base64 x
      j: !GetAZs ''
      k: !Cidr [a, 1, 2]
      l: !Equals [a, b]
      m: !Not [!Condition C]
      n: !And [!Condition C, !Or [!Condition D]]
      o: !ToJsonString {a: 1}
      p: '2010-09-09'
      q: yes
"""


@pytest.mark.parametrize("written", ["template.yaml", "every short form"])
def test_a_template_reads_as_cfn_lint_reads_it(written: str, tmp_path: Path) -> None:
    """devtools' own YAML loader (cfn-lint's costs 0.6 s of imports in every process) gives cfn-lint's
    document: each short-form tag in its long form, GetAtt split, nothing else changed."""
    from cfnlint.decode import decode

    path = TEMPLATE_PATH
    if written != "template.yaml":
        path = tmp_path / "forms.yaml"
        path.write_text(EVERY_SHORT_FORM)
    expected, matches = decode(str(path))
    assert matches == []
    assert read_template(path) == expected


def test_provisioning_for_one_function_creates_what_it_references_and_nothing_else(aws: None) -> None:
    template = SamTemplate()
    stack = Provisioner(template, reused_client, operations=False, functions=["IngestFunction"]).provision()
    queues = {url.rsplit("/", 1)[1] for url in reused_client("sqs").list_queues().get("QueueUrls", [])}
    tables = set(reused_client("dynamodb").list_tables()["TableNames"])
    # Its queues, and their dead-letter queues through the redrive policies; its table and secret.
    assert queues == {
        stack.refs[q].rsplit("/", 1)[1] for q in stack.refs if q.endswith(("EventsQueue", "EventsDeadLetterQueue"))
    }
    assert len(queues) == 6 and tables == {stack.refs["DedupTable"]}
    assert "WebhookSigningSecret" in stack.refs
    assert not {"StateTable", "ArchiveBucket", "ArchiveStream", "RotationNoticesTopic"} & set(stack.refs)
    assert reused_client("s3").list_buckets()["Buckets"] == []


def test_the_arns_the_stack_holds_are_the_ones_the_services_report(aws: None) -> None:
    """The provisioner saves the calls that would ask for them (a queue's ARN from its URL, the
    delivery stream's from its creation, the bucket's ownership set by CreateBucket): what a service
    reports is still what the stack says."""
    template = SamTemplate()
    stack = Provisioner(template, reused_client, operations=False).provision()
    sqs = reused_client("sqs")
    queues = [lid for lid, res in template.resources.items() if res["Type"] == "AWS::SQS::Queue"]
    assert queues
    for queue in queues:
        reported = sqs.get_queue_attributes(QueueUrl=stack.refs[queue], AttributeNames=["QueueArn", "RedrivePolicy"])
        assert stack.attributes[(queue, "Arn")] == reported["Attributes"]["QueueArn"]
        redrive = template.resources[queue]["Properties"].get("RedrivePolicy")
        if redrive:  # the dead-letter queue named by the ARN the stack resolved
            target = json.loads(reported["Attributes"]["RedrivePolicy"])["deadLetterTargetArn"]
            assert target == stack.attributes[(redrive["deadLetterTargetArn"]["Fn::GetAtt"][0], "Arn")]
    description = reused_client("firehose").describe_delivery_stream(DeliveryStreamName=stack.refs["ArchiveStream"])
    assert stack.attributes[("ArchiveStream", "Arn")] == description["DeliveryStreamDescription"]["DeliveryStreamARN"]
    controls = reused_client("s3").get_bucket_ownership_controls(Bucket=stack.refs["ArchiveBucket"])
    assert controls["OwnershipControls"] == template.resources["ArchiveBucket"]["Properties"]["OwnershipControls"]


def test_record_only_settings_are_left_out_on_request_and_the_rest_is_the_same(aws: None) -> None:
    """`record_only=False` (the tests' stacks) skips a table's point-in-time recovery and the bucket's
    tags, which moto only records; the default (the local stack) applies them; the rest is the same."""
    template = SamTemplate()
    ddb, s3 = reused_client("dynamodb"), reused_client("s3")
    full = Provisioner(template, reused_client, operations=False).provision()
    lean = Provisioner(template, reused_client, name_prefix="lean", operations=False, record_only=False).provision()

    def recovery(stack: Stack) -> str:
        backups = ddb.describe_continuous_backups(TableName=stack.refs["StateTable"])["ContinuousBackupsDescription"]
        return str(backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"])

    assert (recovery(full), recovery(lean)) == ("ENABLED", "DISABLED")
    assert s3.get_bucket_tagging(Bucket=full.refs["ArchiveBucket"])["TagSet"]
    with pytest.raises(ClientError, match="NoSuchTagSet"):
        s3.get_bucket_tagging(Bucket=lean.refs["ArchiveBucket"])
    ttl, lifecycle = ddb.describe_time_to_live, s3.get_bucket_lifecycle_configuration
    for stack in (full, lean):  # what has behaviour in moto is applied either way
        assert ttl(TableName=stack.refs["StateTable"])["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"
        assert lifecycle(Bucket=stack.refs["ArchiveBucket"])["Rules"]


def test_a_reused_client_is_one_a_new_client_would_be(aws: None) -> None:
    """`reused_client` hands back a client made earlier only while the session holds the same hooks
    (a client copies them when made): under a test's hook a new one, which sees the hook."""
    seen: list[str] = []
    sqs = reused_client("sqs")
    assert reused_client("sqs") is sqs and reused_client("sqs", region_name="eu-west-1") is not sqs
    with hooked("before-call.sqs.*", lambda event_name, **_: seen.append(event_name)):
        hooked_sqs = reused_client("sqs")
        assert hooked_sqs is not sqs and reused_client("sqs") is hooked_sqs
        sqs.list_queues()
        assert seen == []
        hooked_sqs.list_queues()
        assert seen == ["before-call.sqs.ListQueues"]
    assert reused_client("sqs") is sqs  # the same hooks again
